//! What happened in the run, for `Watch`.

use dmtl_core::metrics::EvalMetrics;
use dmtl_core::train::LossValues;

use super::RunState;
use crate::scheduler::Task;

/// What happened, for `Watch`.
#[derive(Debug, Clone)]
pub enum EventKind {
    RoundMerged { round: u64, step: u64, samples: u64, losses: LossValues, workers: u32, weights_version: u64 },
    Evaluated { round: u64, step: u64, metrics: EvalMetrics },
    WorkerJoined { worker: String, task: Task, host: String },
    WorkerLost { worker: String, task: Task, host: String, reason: String },
    WorkerRejoined { worker: String, task: Task, host: String, previous: String },
    CheckpointWritten { path: String, round: u64, step: u64 },
    RunFinished { state: RunState, metrics: Option<EvalMetrics>, rounds: u64, error: Option<String> },
}

/// An event with its sequence number and time.
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub seq: u64,
    pub unix_ms: u64,
    pub kind: EventKind,
}
