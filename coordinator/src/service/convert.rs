//! Domain types ↔ `dmtl.v1` messages, and hub errors → gRPC status codes.
//! The only place (with the adapters beside it) that sees generated types.

use dmtl_core::method::{Losses, Pool};
use dmtl_core::metrics::EvalMetrics;
use dmtl_core::train::LossValues;
use dmtl_proto::v1;
use tonic::{Code, Status};

use crate::hub::{
    Admission, EventKind, HubError, NcclRound, RunEvent, RunState, RunView, SnapshotKind, StatusView, UpdateKind,
    WorkerActivity, WorkerInfo, WorkerRound,
};
use crate::scheduler::Task;

/// The status code of each hub error.
pub fn status(err: HubError) -> Status {
    let code = match &err {
        HubError::UnknownWorker(_) | HubError::NotFound(_) => Code::NotFound,
        HubError::Superseded(_) => Code::Aborted,
        HubError::InvalidArgument(_) => Code::InvalidArgument,
        HubError::FailedPrecondition(_) => Code::FailedPrecondition,
        HubError::Unavailable(_) => Code::Unavailable,
        HubError::Internal(_) => Code::Internal,
    };
    Status::new(code, err.to_string())
}

pub fn task_from(value: i32, field: &str) -> Result<Task, Status> {
    match v1::Task::try_from(value) {
        Ok(v1::Task::Seg) => Ok(Task::Seg),
        Ok(v1::Task::Depth) => Ok(Task::Depth),
        Ok(v1::Task::Both) => Ok(Task::Both),
        _ => Err(Status::invalid_argument(format!("`{field}`: must be seg, depth or both (got {value})"))),
    }
}

pub fn task_to(task: Task) -> v1::Task {
    match task {
        Task::Seg => v1::Task::Seg,
        Task::Depth => v1::Task::Depth,
        Task::Both => v1::Task::Both,
    }
}

pub fn pool_to(pool: Pool) -> v1::Pool {
    match pool {
        Pool::Seg => v1::Pool::Seg,
        Pool::Depth => v1::Pool::Depth,
        Pool::All => v1::Pool::All,
    }
}

pub fn pool_from(value: i32) -> Option<Pool> {
    match v1::Pool::try_from(value) {
        Ok(v1::Pool::Seg) => Some(Pool::Seg),
        Ok(v1::Pool::Depth) => Some(Pool::Depth),
        Ok(v1::Pool::All) => Some(Pool::All),
        _ => None,
    }
}

pub fn activity_from(value: i32) -> WorkerActivity {
    match v1::WorkerState::try_from(value) {
        Ok(v1::WorkerState::Waiting) => WorkerActivity::Waiting,
        Ok(v1::WorkerState::Pulling) => WorkerActivity::Pulling,
        Ok(v1::WorkerState::Training) => WorkerActivity::Training,
        Ok(v1::WorkerState::Pushing) => WorkerActivity::Pushing,
        _ => WorkerActivity::Starting,
    }
}

pub fn activity_to(a: WorkerActivity) -> v1::WorkerState {
    match a {
        WorkerActivity::Starting => v1::WorkerState::Starting,
        WorkerActivity::Waiting => v1::WorkerState::Waiting,
        WorkerActivity::Pulling => v1::WorkerState::Pulling,
        WorkerActivity::Training => v1::WorkerState::Training,
        WorkerActivity::Pushing => v1::WorkerState::Pushing,
        WorkerActivity::Lost => v1::WorkerState::Lost,
        WorkerActivity::Left => v1::WorkerState::Left,
    }
}

pub fn snapshot_kind_from(value: i32) -> Result<SnapshotKind, Status> {
    match v1::SnapshotKind::try_from(value) {
        Ok(v1::SnapshotKind::Weights) => Ok(SnapshotKind::Weights),
        Ok(v1::SnapshotKind::Teacher) => Ok(SnapshotKind::Teacher),
        _ => Err(Status::invalid_argument(format!("`kind`: must be WEIGHTS or TEACHER (got {value})"))),
    }
}

pub fn snapshot_kind_to(kind: SnapshotKind) -> v1::SnapshotKind {
    match kind {
        SnapshotKind::Weights => v1::SnapshotKind::Weights,
        SnapshotKind::Teacher => v1::SnapshotKind::Teacher,
    }
}

pub fn update_kind_from(value: i32) -> Result<UpdateKind, Status> {
    match v1::UpdateKind::try_from(value) {
        Ok(v1::UpdateKind::Gradients) => Ok(UpdateKind::Gradients),
        Ok(v1::UpdateKind::WeightDelta) => Ok(UpdateKind::WeightDelta),
        Ok(v1::UpdateKind::Receipt) => Ok(UpdateKind::Receipt),
        Ok(v1::UpdateKind::State) => Ok(UpdateKind::State),
        Ok(v1::UpdateKind::Failed) => Ok(UpdateKind::Failed),
        _ => Err(Status::invalid_argument(format!(
            "`header.kind`: must be GRADIENTS, WEIGHT_DELTA, RECEIPT, STATE or FAILED (got {value})"
        ))),
    }
}

pub fn update_kind_to(kind: UpdateKind) -> v1::UpdateKind {
    match kind {
        UpdateKind::Gradients => v1::UpdateKind::Gradients,
        UpdateKind::WeightDelta => v1::UpdateKind::WeightDelta,
        UpdateKind::Receipt => v1::UpdateKind::Receipt,
        UpdateKind::State => v1::UpdateKind::State,
        UpdateKind::Failed => v1::UpdateKind::Failed,
    }
}

pub fn losses_to(l: &LossValues) -> v1::TrainLosses {
    v1::TrainLosses {
        total: l.total,
        seg: l.seg,
        depth: l.depth,
        distill_seg: l.distill_seg,
        distill_depth: l.distill_depth,
    }
}

pub fn losses_from(l: &v1::TrainLosses) -> LossValues {
    LossValues {
        total: l.total,
        seg: l.seg,
        depth: l.depth,
        distill_seg: l.distill_seg,
        distill_depth: l.distill_depth,
    }
}

pub fn loss_set_to(l: &Losses) -> v1::LossSet {
    v1::LossSet { seg: l.seg, depth: l.depth, distill_seg: l.distill_seg, distill_depth: l.distill_depth }
}

pub fn loss_set_from(l: &v1::LossSet) -> Losses {
    Losses { seg: l.seg, depth: l.depth, distill_seg: l.distill_seg, distill_depth: l.distill_depth }
}

pub fn metrics_to(step: u64, m: &EvalMetrics) -> v1::ValMetrics {
    v1::ValMetrics {
        step,
        miou: m.seg.miou,
        pixel_acc: m.seg.pixel_acc,
        abs_err: m.depth.abs_err,
        rel_err: m.depth.rel_err,
        delta1: m.depth.delta1,
    }
}

pub fn run_state_to(s: RunState) -> v1::RunState {
    match s {
        RunState::WaitingForWorkers => v1::RunState::WaitingForWorkers,
        RunState::Running => v1::RunState::Running,
        RunState::Stopping => v1::RunState::Stopping,
        RunState::Finished => v1::RunState::Finished,
        RunState::Failed => v1::RunState::Failed,
    }
}

/// What a joining worker is told: its name and task, and the run's facts.
pub fn admission_to(a: Admission) -> v1::RegisterResponse {
    let Admission { worker, task, facts: f } = a;
    v1::RegisterResponse {
        worker_id: worker,
        assignment: Some(v1::Assignment {
            run_id: f.run_id,
            task: task_to(task) as i32,
            shards: None,
            config_toml: f.config_toml,
            data_plane: Some(v1::DataPlane {
                kind: if f.nccl { v1::DataPlaneKind::Nccl } else { v1::DataPlaneKind::Grpc } as i32,
                local_steps: f.local_steps,
                chunk_bytes: f.chunk_bytes,
            }),
            dataset_size: f.dataset_size,
        }),
        heartbeat_interval_ms: f.heartbeat_interval_ms,
        heartbeat_timeout_ms: f.heartbeat_timeout_ms,
    }
}

pub fn round_plan_to(r: &WorkerRound) -> v1::RoundPlan {
    v1::RoundPlan {
        method: r.method.clone(),
        phase: r.phase,
        first_step: r.first_step,
        steps: r.steps,
        parts: vec![v1::BatchPart {
            pool: pool_to(r.pool) as i32,
            count: r.count,
            losses: Some(loss_set_to(&r.losses)),
            first_draw: r.first_draw,
        }],
        update_kind: update_kind_to(r.update_kind) as i32,
    }
}

pub fn nccl_group_to(n: &NcclRound) -> v1::NcclGroup {
    let m = &n.membership;
    v1::NcclGroup {
        unique_id: m.unique_id.0.to_vec(),
        rank: m.rank,
        world_size: m.world_size,
        generation: m.generation,
        source_rank: n.source_rank,
        load_state: n.load_state,
    }
}

pub fn shard_set_to(version: u64, pool: Pool, indices: &[usize]) -> v1::ShardSet {
    v1::ShardSet {
        version,
        shards: vec![v1::Shard { pool: pool_to(pool) as i32, indices: indices.iter().map(|&i| i as u32).collect() }],
    }
}

fn worker_to(w: &WorkerInfo) -> v1::WorkerStatus {
    v1::WorkerStatus {
        worker_id: w.name.clone(),
        task: task_to(w.task) as i32,
        state: activity_to(w.activity) as i32,
        host: w.host.clone(),
        device: w.device.clone(),
        last_heartbeat_unix_ms: w.last_heartbeat_unix_ms,
        images_per_s: w.images_per_s,
        shard_size: w.shard_size as u64,
        last_round: w.last_round,
    }
}

pub fn status_to(s: &StatusView, total_rounds: u64) -> v1::RunStatus {
    let RunView { state, round, step, phase, latest_losses, latest_metrics, last_checkpoint, error, .. } = &s.run;
    v1::RunStatus {
        run_id: s.run_id.clone(),
        method: s.method.clone(),
        state: run_state_to(*state) as i32,
        round: *round,
        total_rounds,
        phase: *phase,
        workers: s.workers.iter().map(worker_to).collect(),
        latest_losses: latest_losses.as_ref().map(losses_to),
        latest_metrics: latest_metrics.as_ref().map(|m| metrics_to(s.run.metrics_step, m)),
        last_checkpoint: last_checkpoint.clone().unwrap_or_default(),
        step: *step,
        data_plane: s.data_plane.clone(),
        started_unix_ms: s.started_unix_ms,
        error: error.clone().unwrap_or_default(),
    }
}

fn change(worker: &str, task: Task, host: &str, reason: &str) -> v1::WorkerChange {
    v1::WorkerChange {
        worker_id: worker.to_string(),
        task: task_to(task) as i32,
        host: host.to_string(),
        reason: reason.to_string(),
    }
}

pub fn event_to(e: &RunEvent) -> v1::Event {
    use v1::event::Kind;
    let kind = match &e.kind {
        EventKind::RoundMerged { round, samples, losses, workers, weights_version, .. } => {
            Kind::RoundMerged(v1::RoundMerged {
                round: *round,
                samples: *samples,
                losses: Some(losses_to(losses)),
                workers: *workers,
                weights_version: *weights_version,
            })
        }
        EventKind::Evaluated { round, step, metrics } => {
            Kind::Evaluated(v1::Evaluated { round: *round, metrics: Some(metrics_to(*step, metrics)) })
        }
        EventKind::WorkerJoined { worker, task, host } => Kind::WorkerJoined(change(worker, *task, host, "joined")),
        EventKind::WorkerLost { worker, task, host, reason } => Kind::WorkerLost(change(worker, *task, host, reason)),
        EventKind::WorkerRejoined { worker, task, host, previous } => {
            Kind::WorkerRejoined(change(worker, *task, host, &format!("was {previous}")))
        }
        EventKind::CheckpointWritten { path, round, .. } => {
            Kind::CheckpointWritten(v1::CheckpointWritten { path: path.clone(), round: *round })
        }
        EventKind::RunFinished { state, metrics, rounds, error } => Kind::RunFinished(v1::RunFinished {
            state: run_state_to(*state) as i32,
            final_metrics: metrics.as_ref().map(|m| metrics_to(0, m)),
            rounds: *rounds,
            error: error.clone().unwrap_or_default(),
        }),
    };
    v1::Event { unix_ms: e.unix_ms, seq: e.seq, kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::testing::facts;

    #[test]
    fn admission_to_puts_the_name_task_and_run_facts_into_the_register_response() {
        let admission = Admission { worker: "depth-3.ab".into(), task: Task::Depth, facts: facts() };
        let r = admission_to(admission);
        assert_eq!(r.worker_id, "depth-3.ab");
        assert_eq!((r.heartbeat_interval_ms, r.heartbeat_timeout_ms), (500, 3000));
        let a = r.assignment.expect("an assignment");
        assert_eq!((a.run_id.as_str(), a.config_toml.as_str(), a.dataset_size), ("toy-run", "seed = 7\n", 6));
        assert_eq!((a.task, a.shards), (v1::Task::Depth as i32, None));
        let plane = a.data_plane.expect("a data plane");
        assert_eq!((plane.kind, plane.local_steps, plane.chunk_bytes), (v1::DataPlaneKind::Grpc as i32, 2, 4096));
    }
}
