//! The round loop's one error type.

use dmtl_core::checkpoint::CheckpointError;
use dmtl_core::run_dir::RunDirError;
use dmtl_core::tensor_io::TensorIoError;
use dmtl_core::train::{StateError, TrainError};

use crate::nccl_plane::GroupError;
use crate::scheduler::SchedulerError;

/// Why the round loop stopped with an error (or, for [`EngineError::State`]
/// and [`EngineError::StateMissing`], why rank 0's training state was not
/// loaded after a round: the loop asks again and goes on).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The scheduler refused an event of the loop (a bug: the loop keeps its
    /// order of events).
    #[error("scheduler: {0}")]
    Scheduler(#[from] SchedulerError),
    /// A weight or teacher snapshot could not be encoded.
    #[error("encoding the {what}: {source}")]
    Snapshot {
        /// `"weights"` or `"teacher"`.
        what: &'static str,
        #[source]
        source: TensorIoError,
    },
    /// nccl plane: the round's group could not be named.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// nccl plane: rank 0's training state did not load.
    #[error(transparent)]
    State(#[from] StateError),
    /// nccl plane: rank 0 pushed a receipt where its training state was asked for.
    #[error("rank 0 did not push it")]
    StateMissing,
    /// Writing the metrics or the final report of the run directory.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// Writing a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Training itself failed (a diverged merge, a malformed update).
    #[error(transparent)]
    Train(#[from] TrainError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_error_names_what_was_being_encoded() {
        let e = EngineError::Snapshot { what: "teacher", source: TensorIoError::Format("bad header".into()) };
        assert_eq!(e.to_string(), "encoding the teacher: not a valid safetensors buffer: bad header");
    }

    #[test]
    fn a_scheduler_error_says_it_came_from_the_scheduler() {
        assert_eq!(EngineError::from(SchedulerError::NoOpenRound).to_string(), "scheduler: no round is open");
    }
}
