//! Errors of the data subsystem. Every variant names the file or folder.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data root {path} does not exist")]
    MissingRoot { path: PathBuf },
    #[error("no images found for split `{split}` under {path}")]
    NoImages { split: String, path: PathBuf },
    #[error("{path} is missing (needed for image {id})")]
    MissingFile { path: PathBuf, id: String },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot decode: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: size {got_width}x{got_height} differs from its image's {width}x{height}")]
    SizeMismatch { path: PathBuf, got_width: u32, got_height: u32, width: u32, height: u32 },
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }

    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Invalid { path: path.into(), message: message.into() }
    }
}
