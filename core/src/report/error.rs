//! Why a report cannot be made.

use std::path::PathBuf;

/// Why a report cannot be made. Messages name the run directory or file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {message}")]
    Run { path: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: drawing the figure failed: {message}")]
    Plot { path: PathBuf, message: String },
}
