//! Errors of reading and validating a config. Each names the file or the key.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: config key `version` is missing (this dmtl reads version = {expected})")]
    MissingVersion { path: PathBuf, expected: u32 },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.to_string(), message: message.into() }
    }
}
