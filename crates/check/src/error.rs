use std::path::PathBuf;

/// What can go wrong checking a volume for a face.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Rendering the volume failed (names the volume's file).
    #[error(transparent)]
    Render(#[from] defacer_render::Error),
    /// The embedded detector model is unusable (a build problem, not a user one).
    #[error("face detector model {name}: {problem}")]
    Model { name: String, problem: String },
    /// A render could not be written to the requested folder.
    #[error("{}: {problem}", path.display())]
    Output { path: PathBuf, problem: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
