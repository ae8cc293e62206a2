//! The run's progress and the status snapshot `GetStatus` reports.

use dmtl_core::metrics::EvalMetrics;
use dmtl_core::train::LossValues;

use super::{Hub, WorkerInfo};

/// The state of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    WaitingForWorkers,
    Running,
    Stopping,
    Finished,
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::WaitingForWorkers => "waiting-for-workers",
            RunState::Running => "running",
            RunState::Stopping => "stopping",
            RunState::Finished => "finished",
            RunState::Failed => "failed",
        }
    }
}

/// The run's progress, as `GetStatus` reports it.
#[derive(Debug, Clone)]
pub struct RunView {
    pub state: RunState,
    pub round: u64,
    pub step: u64,
    pub total_steps: u64,
    pub phase: u64,
    pub latest_losses: Option<LossValues>,
    pub latest_metrics: Option<EvalMetrics>,
    /// The step `latest_metrics` were measured at.
    pub metrics_step: u64,
    pub last_checkpoint: Option<String>,
    pub error: Option<String>,
    /// Rounds merged by this coordinator process.
    pub rounds_merged: u64,
    /// Timings of the merged rounds.
    pub timing: RoundTiming,
    pub images_seen: u64,
    /// The nccl plane's group generation of the last round opened (0: none, or the grpc plane).
    pub nccl_generation: u64,
}

/// How long rounds take, over the rounds merged by this process.
#[derive(Debug, Clone, Default)]
pub struct RoundTiming {
    /// Round opened → next weights published, seconds (last round).
    pub last_round_s: f64,
    /// Last accepted push → merged → next weights published, seconds (last round).
    pub last_merge_s: f64,
    /// Sums and maxima over all merged rounds (means: divide by `rounds_merged`).
    pub sum_round_s: f64,
    pub sum_merge_s: f64,
    pub max_merge_s: f64,
}

/// A status snapshot.
#[derive(Debug, Clone)]
pub struct StatusView {
    pub run_id: String,
    pub method: String,
    pub data_plane: String,
    pub started_unix_ms: u64,
    pub run: RunView,
    pub workers: Vec<WorkerInfo>,
}

impl Hub {
    /// The run's progress and every worker known to this process.
    pub fn status(&self) -> StatusView {
        let st = self.lock();
        StatusView {
            run_id: self.facts.run_id.clone(),
            method: self.facts.method.clone(),
            data_plane: if self.facts.nccl { "nccl".into() } else { "grpc".into() },
            started_unix_ms: self.started_unix_ms,
            run: st.run.clone(),
            workers: st.workers.values().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{hub, registration};
    use super::RunState;
    use crate::scheduler::Task;

    #[test]
    fn status_lists_the_registered_workers_and_the_run() {
        let (hub, _rx) = hub();
        let seg = hub.register(registration(Task::Seg, "host-a")).unwrap();
        let depth = hub.register(registration(Task::Depth, "host-b")).unwrap();
        hub.leave(&depth.worker, "done").unwrap();
        let s = hub.status();
        assert_eq!((s.run_id.as_str(), s.method.as_str(), s.data_plane.as_str()), ("toy-run", "alternate", "grpc"));
        assert_eq!(s.run.state, RunState::WaitingForWorkers);
        let workers: Vec<_> = s.workers.iter().map(|w| (w.name.clone(), w.task, w.host.as_str())).collect();
        assert_eq!(workers, [(seg.worker, Task::Seg, "host-a"), (depth.worker, Task::Depth, "host-b")]);
    }
}
