//! Why a hub call fails.

/// Why an RPC fails. The service adapters map these to gRPC status codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    #[error("unknown worker `{0}` (was the coordinator restarted?); register again")]
    UnknownWorker(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    NotFound(String),
    /// A newer version replaced the one asked for: wait for the next round.
    #[error("{0}")]
    Superseded(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}
