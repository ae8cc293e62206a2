//! The scheduler's one error type.

use super::{RoundStatus, Task, WorkerId};

/// Why a scheduler event was refused. The state is unchanged when one is
/// returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// `min_workers_per_task` is 0: a round could complete with no update.
    #[error("min_workers_per_task must be at least 1")]
    ZeroMinWorkers,
    /// The run has no image pool for this task (a worker of a task the method
    /// does not train, or an active task without images).
    #[error("no image pool for task {0}")]
    NoPool(Task),
    /// Two batch parts of one task draw from different pools.
    #[error("task {0} is given two different pools")]
    ConflictingPools(Task),
    /// A round was planned with no active task.
    #[error("a round needs at least one active task")]
    NoActiveTask,
    /// The worker never registered.
    #[error("unknown worker {0}")]
    UnknownWorker(WorkerId),
    /// The worker was declared lost; it must register again.
    #[error("worker {0} was lost and must register again")]
    WorkerLost(WorkerId),
    /// The worker has left; it must register again.
    #[error("worker {0} has left and must register again")]
    WorkerLeft(WorkerId),
    /// Round numbers must increase: a retried round gets a new number.
    #[error("round {round} does not come after round {last}")]
    RoundNotAfter {
        /// The number asked for.
        round: u64,
        /// The last round begun.
        last: u64,
    },
    /// A round is still open: finish or abandon it first.
    #[error("round {0} is still open")]
    RoundOpen(u64),
    /// No round is open.
    #[error("no round is open")]
    NoOpenRound,
    /// The open round is not over yet (waiting or stalled).
    #[error("round {round} is not over: {status:?}")]
    NotOver {
        /// The open round.
        round: u64,
        /// Where it stands.
        status: RoundStatus,
    },
}
