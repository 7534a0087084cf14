use std::path::{Path, PathBuf};

/// Everything that can go wrong loading or saving a volume. Every variant names the file, so the
/// CLI can print one line that says which file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written at all.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is readable but its content is not a valid volume (bad magic, truncated data,
    /// inconsistent dimensions, singular affine, ...).
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    /// The file is valid but uses something this crate refuses to handle (a transfer syntax we
    /// cannot decode, gantry tilt we cannot represent, ...).
    #[error("{}: unsupported: {problem}", path.display())]
    Unsupported { path: PathBuf, problem: String },
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn invalid(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }
    pub fn unsupported(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }
    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::Invalid { path, .. }
            | Error::Unsupported { path, .. } => path,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
