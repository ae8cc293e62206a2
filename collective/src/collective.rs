//! The one operation the data plane needs from a communication backend.

use tch::Tensor;

/// A member of a group of `world_size` processes (or threads) that sum
/// tensors together. Every member calls [`Collective::all_reduce_sum`] the
/// same number of times, in the same order, with tensors of the same length;
/// a member that stops calling makes the others fail (NCCL: hang until the
/// communicator is aborted; the in-process backend: time out).
pub trait Collective {
    /// This member's rank, `0 .. world_size`.
    fn rank(&self) -> usize;
    /// Members of the group.
    fn world_size(&self) -> usize;
    /// Replaces `buf` (contiguous float32, on the backend's device) by the sum
    /// of every member's `buf`. Returns when the sum is in `buf`.
    fn all_reduce_sum(&self, buf: &mut Tensor) -> Result<(), CollectiveError>;
}

/// Why an all-reduce failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectiveError {
    #[error("all-reduce on rank {rank}: the group was aborted (a member failed or a newer group replaced it)")]
    Aborted { rank: usize },
    #[error(
        "all-reduce on rank {rank}: {missing} of {world} members did not join within {waited_ms} ms; group aborted"
    )]
    Timeout { rank: usize, missing: usize, world: usize, waited_ms: u128 },
    #[error("all-reduce buffer: {0}")]
    Buffer(String),
    #[error("all-reduce of {got} values on rank {rank}, but the group's first member sent {expected}")]
    LengthMismatch { rank: usize, got: usize, expected: usize },
    #[error("nccl: {0}")]
    Nccl(String),
    #[error(transparent)]
    Plane(#[from] crate::plane::PlaneError),
}
