//! A hub over a toy run for the unit tests: a seg pool of four images, a
//! depth pool of two, and the round loop's receiving end.

use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use dmtl_core::config::ModelConfig;
use dmtl_core::model::Model;
use dmtl_core::train::wire::UpdateSpec;

use super::{EngineMsg, Hub, Registration, RunFacts, RunState, RunView};
use crate::scheduler::{Scheduler, SchedulerConfig, Task, TaskPools};

/// The facts of the toy run.
pub fn facts() -> RunFacts {
    let model = Model::new(&ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 }, 3, tch::Device::Cpu, 0);
    RunFacts {
        run_id: "toy-run".into(),
        method: "alternate".into(),
        config_toml: "seed = 7\n".into(),
        dataset_size: 6,
        local_steps: 2,
        chunk_bytes: 4096,
        nccl: false,
        heartbeat_interval_ms: 500,
        heartbeat_timeout_ms: 3000,
        max_update_bytes: 1 << 20,
        spec: Arc::new(UpdateSpec::of(&model)),
    }
}

/// A run waiting for its first workers.
pub fn run_view() -> RunView {
    RunView {
        state: RunState::WaitingForWorkers,
        round: 0,
        step: 0,
        total_steps: 10,
        phase: 0,
        latest_losses: None,
        latest_metrics: None,
        metrics_step: 0,
        last_checkpoint: None,
        error: None,
        rounds_merged: 0,
        timing: Default::default(),
        images_seen: 0,
        nccl_generation: 0,
    }
}

/// The toy hub and what it sends to the round loop (keep it: a dropped
/// receiver makes the round loop look stopped).
pub fn hub() -> (Arc<Hub>, Receiver<EngineMsg>) {
    let pools = TaskPools::new().with(Task::Seg, vec![0, 1, 2, 3]).with(Task::Depth, vec![4, 5]);
    let scheduler = Scheduler::new(SchedulerConfig::default(), pools).expect("a valid scheduler");
    let (tx, rx) = channel();
    (Hub::new(facts(), scheduler, run_view(), tx), rx)
}

/// A registration of this build's version.
pub fn registration(task: Task, host: &str) -> Registration {
    Registration {
        task,
        device: "cpu".into(),
        host: host.into(),
        threads: 2,
        version: env!("CARGO_PKG_VERSION").into(),
        previous: None,
    }
}
