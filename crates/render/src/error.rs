use std::path::{Path, PathBuf};

/// What can go wrong rendering a volume. Every variant names the file it is about, so a caller
/// can print one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The volume cannot be placed in space (singular or non-finite affine, no voxels).
    #[error("{}: {problem}", path.display())]
    Geometry { path: PathBuf, problem: String },
    /// No surface can be found: the volume is constant, empty, or nothing exceeds the skin level.
    #[error("{}: no skin surface: {problem}", path.display())]
    NoSkin { path: PathBuf, problem: String },
    /// Two volumes that should share a picture do not fit together (e.g. mask of other size).
    #[error("{}: {problem}", path.display())]
    Mismatch { path: PathBuf, problem: String },
    /// Writing a picture failed.
    #[error("{}: cannot write PNG: {source}", path.display())]
    Png {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

impl Error {
    pub(crate) fn geometry(path: &Path, problem: impl Into<String>) -> Self {
        Error::Geometry {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
    pub(crate) fn no_skin(path: &Path, problem: impl Into<String>) -> Self {
        Error::NoSkin {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
    pub(crate) fn mismatch(path: &Path, problem: impl Into<String>) -> Self {
        Error::Mismatch {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
