//! Why a worker stops: one error for the session, the nccl round and the
//! training thread, each variant naming what failed.

use dmtl_collective::{CollectiveError, PlaneError};
use dmtl_core::config::ConfigError;
use dmtl_core::data::DataError;
use dmtl_core::tensor_io::TensorIoError;
use dmtl_core::train::wire::WeightsError;
use dmtl_core::train::{StateError, StepError};
use dmtl_proto::connect::ConnectError;

/// Everything that ends a worker (and what the training thread replies).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The connection cannot be set up: a bad URL, CA certificate or token.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// An RPC failed. A session never returns it: it registers again,
    /// retries, or gives up with [`WorkerError::Refused`].
    #[error("rpc failed: {0}")]
    Rpc(#[from] tonic::Status),
    /// The coordinator answered with an error that retrying does not cure.
    #[error("the coordinator at {url} refused: {status}")]
    Refused { url: String, status: String },
    #[error("the coordinator at {url} was unreachable for {seconds} s: {last}")]
    Unreachable { url: String, seconds: u64, last: String },
    /// The `--task` argument.
    #[error("must be seg, depth or both (got `{0}`)")]
    UnknownTask(String),
    /// The run's config with this worker's overrides.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("config key `train.device`: {0}")]
    Device(String),
    /// The nccl data plane cannot run in this process.
    #[error(transparent)]
    Plane(#[from] PlaneError),
    /// A blocking start-up task (`what`) panicked or was cancelled.
    #[error("{what}: {source}")]
    Blocking {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("spawning the training thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The training thread is gone (`when`: starting, or running a job).
    #[error("the training thread stopped {when}")]
    TrainerGone { when: &'static str },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(
        "{root}: {found} training images here, the coordinator's dataset has {expected} \
         (the workers must see the same images: check --data-root)"
    )]
    DatasetMismatch { root: String, found: usize, expected: u64 },
    #[error("shard image index {index} is out of range ({images} training images)")]
    ShardIndex { index: usize, images: usize },
    #[error("no shard assigned")]
    NoShard,
    #[error("this method has no teacher")]
    NoTeacher,
    /// A round the coordinator published that this worker cannot run.
    #[error("round {round}: {problem}")]
    BadRound { round: u64, problem: String },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("training failed: {0}")]
    Step(#[from] StepError),
    #[error("training diverged in round {round}: {source}")]
    Diverged {
        round: u64,
        #[source]
        source: StepError,
    },
    /// Encoding `what` (the update, the training state) for the push.
    #[error("encoding the {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: TensorIoError,
    },
    /// An nccl collective failed. The training thread reports it to the
    /// coordinator as a failed round (`NcclOutcome::Failed`), not as an error.
    #[error(transparent)]
    Collective(#[from] CollectiveError),
    /// The nccl step did not return after the coordinator moved on; the
    /// process should exit and be restarted (it rejoins as a new worker).
    #[error(
        "stuck: round {round}: the training thread is still in the nccl step {grace_s} s after the coordinator \
         moved on ({}); exiting so that this worker can be restarted into the next group",
        stuck_reason(*.aborted)
    )]
    Stuck { round: u64, grace_s: u64, aborted: bool },
}

fn stuck_reason(aborted: bool) -> &'static str {
    if aborted {
        "its collective was aborted"
    } else {
        "it never joined the group"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_worker_says_whether_its_collective_was_aborted() {
        let aborted = WorkerError::Stuck { round: 4, grace_s: 60, aborted: true }.to_string();
        assert!(aborted.starts_with("stuck: round 4: the training thread is still in the nccl step 60 s"), "{aborted}");
        assert!(aborted.contains("(its collective was aborted)"), "{aborted}");
        let never = WorkerError::Stuck { round: 4, grace_s: 60, aborted: false }.to_string();
        assert!(never.contains("(it never joined the group)"), "{never}");
    }
}
