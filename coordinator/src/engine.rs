//! The round loop: one thread that owns the coordinator's model (the
//! [`Merger`]) and drives the rounds of a run. It publishes snapshots,
//! opens rounds in the scheduler, validates pushed updates, merges each round
//! with the trainer's own functions, evaluates, checkpoints and finishes the
//! run directory exactly as `dmtl train` does. It never runs on the async
//! runtime: the RPC handlers reach it through [`EngineMsg`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dmtl_core::checkpoint;
use dmtl_core::config::{Config, MethodKind};
use dmtl_core::data::Sample;
use dmtl_core::method::{PartPlan, StepPlan};
use dmtl_core::metrics::EvalMetrics;
use dmtl_core::optim::learning_rate;
use dmtl_core::run_dir::{FinalReport, MetricsLine, RunDir};
use dmtl_core::train::{evaluate, TrainError, Update};

use crate::hub::{
    EngineMsg, EventKind, Hub, HubError, HubState, OpenRound, PushHeader, PushVerdict, RunState, Snapshot, UpdateKind,
    WorkerActivity, WorkerRound,
};
use crate::merger::{MergeMode, Merger};
use crate::scheduler::{RoundStatus, Task, UpdateVerdict, WorkerId};

/// How often the loop looks at heartbeats and deadlines when nothing happens.
const TICK: Duration = Duration::from_millis(100);

/// Everything the round loop needs.
pub struct Engine {
    pub hub: Arc<Hub>,
    pub rx: Receiver<EngineMsg>,
    pub config: Config,
    pub merger: Merger,
    pub val: Vec<Sample>,
    pub dir: RunDir,
    /// `round_timeout_s` in ms.
    pub heartbeat_timeout_ms: u64,
}

/// How the loop ended.
#[derive(Debug)]
pub enum EngineEnd {
    Finished(FinalReport),
    /// Stopped on request, with a checkpoint at this step.
    Stopped {
        step: usize,
        checkpoint: std::path::PathBuf,
    },
}

/// The images per step of each of `n` workers sharing `count` (at least one each).
pub fn split_count(count: usize, n: usize) -> Vec<usize> {
    (0..n).map(|i| (count / n + usize::from(i < count % n)).max(1)).collect()
}

/// The steps of the round starting at `step`: at most `local_steps`, never
/// past the end, and never across a phase boundary (where the plan changes
/// or the teacher refreshes).
pub fn round_steps(config: &Config, step: usize, local_steps: usize) -> usize {
    let mut n = local_steps.min(config.train.steps - step).max(1);
    if !matches!(config.method.kind, MethodKind::Full | MethodKind::Half) {
        let every = config.method.switch_every;
        n = n.min(every - step % every);
    }
    n
}

fn verdict_reason(v: UpdateVerdict, round: u64, open: Option<u64>) -> String {
    match v {
        UpdateVerdict::Accept => String::new(),
        UpdateVerdict::UnknownWorker => "unknown worker".into(),
        UpdateVerdict::Stale => match open {
            Some(o) => format!("round {round} is closed (round {o} is open)"),
            None => format!("round {round} is closed"),
        },
        UpdateVerdict::NotParticipant => format!("the worker is not a participant of round {round}"),
        UpdateVerdict::Duplicate => format!("the worker already pushed an update for round {round}"),
        UpdateVerdict::Dropped => format!("the worker was dropped from round {round} (missed heartbeats or left)"),
    }
}

impl Engine {
    fn expire(&self, st: &mut HubState) {
        let now = self.hub.now_ms();
        for id in st.scheduler.expire(now, self.heartbeat_timeout_ms) {
            if let Some(w) = st.workers.get_mut(&id) {
                w.activity = WorkerActivity::Lost;
                let (worker, task, host) = (w.name.clone(), w.task, w.host.clone());
                tracing::warn!(worker = %worker, "worker lost (no heartbeat)");
                self.hub.emit(
                    st,
                    EventKind::WorkerLost {
                        worker,
                        task,
                        host,
                        reason: format!("no heartbeat for {} ms", self.heartbeat_timeout_ms),
                    },
                );
            }
        }
    }

    fn publish_weights(&self, round: u64) -> Result<(), TrainError> {
        let bytes = self.merger.weights().map_err(|e| TrainError::Other(format!("encoding the weights: {e}")))?;
        let snap = Snapshot { version: self.merger.version(), round, bytes: Bytes::from(bytes) };
        self.hub.lock().weights = Some(snap);
        Ok(())
    }

    fn publish_teacher(&self, round: u64) -> Result<(), TrainError> {
        if let Some(bytes) = self.merger.teacher_weights() {
            let bytes = bytes.map_err(|e| TrainError::Other(format!("encoding the teacher: {e}")))?;
            let snap = Snapshot { version: self.merger.teacher_version(), round, bytes: Bytes::from(bytes) };
            self.hub.lock().teacher = Some(snap);
        }
        Ok(())
    }

    /// Answers one pushed update: checks it against the scheduler and the
    /// model, records it when accepted.
    fn on_push(
        &self,
        id: WorkerId,
        header: &PushHeader,
        update: Update,
        expected: UpdateKind,
        weights_version: u64,
        updates: &mut BTreeMap<WorkerId, Update>,
    ) -> Result<PushVerdict, HubError> {
        let open = self.hub.lock().scheduler.open_round().map(|p| p.round);
        let verdict = self.hub.lock().scheduler.classify_update(id, header.round);
        if verdict == UpdateVerdict::UnknownWorker {
            return Err(HubError::UnknownWorker(header.worker.clone()));
        }
        if !verdict.is_accepted() {
            return Ok(PushVerdict::Refused(verdict_reason(verdict, header.round, open)));
        }
        if header.kind != expected {
            return Err(HubError::InvalidArgument(format!(
                "round {} expects {:?} updates, got {:?}",
                header.round, expected, header.kind
            )));
        }
        if header.weights_version != weights_version {
            return Ok(PushVerdict::Refused(format!(
                "the update starts from weights version {}, round {} from version {weights_version}",
                header.weights_version, header.round
            )));
        }
        let mut st = self.hub.lock();
        let verdict = st.scheduler.push(id, header.round);
        if !verdict.is_accepted() {
            return Ok(PushVerdict::Refused(verdict_reason(verdict, header.round, open)));
        }
        if let Some(w) = st.workers.get_mut(&id) {
            w.last_round = w.last_round.max(header.round);
        }
        updates.insert(id, update);
        Ok(PushVerdict::Accepted)
    }

    /// Assigns each participant its share of the step's plan.
    fn assignments(
        &self,
        round: u64,
        plan: &StepPlan,
        steps: usize,
        rp: &crate::scheduler::RoundPlan,
    ) -> BTreeMap<WorkerId, WorkerRound> {
        let mut out = BTreeMap::new();
        let teacher_version = self.merger.teacher_version();
        let local = steps > 1 || self.config.distributed.local_steps > 1;
        for part in &plan.parts {
            let task = Task::of_part(part);
            let Some(tp) = rp.tasks.get(&task) else { continue };
            let workers: Vec<WorkerId> = tp.shards.keys().copied().filter(|w| !tp.shards[w].is_empty()).collect();
            let counts = split_count(part.count, workers.len());
            let first_draw = self.merger.state().state.draws.get(part.pool);
            for (w, count) in workers.iter().zip(counts) {
                out.insert(
                    *w,
                    WorkerRound {
                        round,
                        weights_version: self.merger.version(),
                        teacher_version: if part.losses.needs_teacher() { teacher_version } else { 0 },
                        method: self.config.method.kind.to_string(),
                        phase: plan.phase as u64,
                        first_step: plan.step as u64,
                        steps: steps as u32,
                        pool: part.pool,
                        count: count as u32,
                        losses: part.losses,
                        first_draw,
                        update_kind: if local { UpdateKind::WeightDelta } else { UpdateKind::Gradients },
                        shard: Arc::new(tp.shards[w].clone()),
                    },
                );
            }
        }
        out
    }

    /// Runs the rounds to the end of training (or a stop request).
    pub fn run(mut self) -> Result<EngineEnd, TrainError> {
        let total = self.config.train.steps;
        let session = Instant::now();
        let wall_before = self.merger.state().state.wall_s;
        let mut round = self.merger.step() as u64;
        let mut last_metrics: Option<EvalMetrics> = None;
        let mut teacher_published = u64::MAX;
        let mut weights_published = u64::MAX;
        let mut stop = false;
        {
            let mut st = self.hub.lock();
            st.run.step = self.merger.step() as u64;
            st.run.round = round;
        }

        while self.merger.step() < total && !stop {
            let step = self.merger.step();
            self.merger.begin_step();
            let plan = self.merger.plan();
            let steps = round_steps(&self.config, step, self.config.distributed.local_steps);
            if self.merger.version() != weights_published {
                self.publish_weights(round)?;
                weights_published = self.merger.version();
            }
            if self.merger.teacher_version() != teacher_published && plan.parts.iter().any(|p| p.losses.needs_teacher())
            {
                self.publish_teacher(round)?;
                teacher_published = self.merger.teacher_version();
            }
            let active = Task::active_in(&plan);

            // Open the round as soon as every active task has its workers.
            let opened = loop {
                round += 1;
                let now = self.hub.now_ms();
                let mut st = self.hub.lock();
                self.expire(&mut st);
                match st.scheduler.begin_round(round, &active, now) {
                    Ok(rp) if rp.is_ready() => {
                        let assignments = self.assignments(round, &plan, steps, &rp);
                        st.open = Some(OpenRound { round, assignments });
                        st.run.state = RunState::Running;
                        st.run.round = round;
                        st.run.phase = plan.phase as u64;
                        break Some(rp);
                    }
                    Ok(_) => {
                        round -= 1; // not opened: the number is free again
                        st.run.state = RunState::WaitingForWorkers;
                    }
                    Err(e) => return Err(TrainError::Other(format!("scheduler: {e}"))),
                }
                drop(st);
                match self.rx.recv_timeout(TICK) {
                    Ok(EngineMsg::Stop) => break None,
                    Ok(EngineMsg::Push { header, reply, .. }) => {
                        let _ = reply.send(Ok(PushVerdict::Refused(format!(
                            "round {} is closed (no round is open)",
                            header.round
                        ))));
                    }
                    Ok(EngineMsg::Wake) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break None,
                }
            };
            if opened.is_none() {
                break; // stop requested while waiting for workers
            }
            self.hub.notify_round();
            let opened_at = Instant::now();
            let mut last_push_at = opened_at;
            let expected = if steps > 1 || self.config.distributed.local_steps > 1 {
                UpdateKind::WeightDelta
            } else {
                UpdateKind::Gradients
            };
            let weights_version = self.merger.version();

            // Collect updates until the barrier says the round is over.
            let mut updates: BTreeMap<WorkerId, Update> = BTreeMap::new();
            let finished = loop {
                match self.rx.recv_timeout(TICK) {
                    Ok(EngineMsg::Push { id, header, update, reply }) => {
                        let verdict = self.on_push(id, &header, update, expected, weights_version, &mut updates);
                        if matches!(verdict, Ok(PushVerdict::Accepted)) {
                            last_push_at = Instant::now();
                        }
                        if let Ok(PushVerdict::Refused(reason)) = &verdict {
                            tracing::debug!(worker = %header.worker, reason, "update refused");
                        }
                        let _ = reply.send(verdict);
                    }
                    Ok(EngineMsg::Stop) => {
                        stop = true;
                    }
                    Ok(EngineMsg::Wake) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => stop = true,
                }
                let now = self.hub.now_ms();
                let mut st = self.hub.lock();
                self.expire(&mut st);
                if stop {
                    st.scheduler.abandon_round().ok();
                    st.open = None;
                    break None;
                }
                match st.scheduler.round_status(now) {
                    Some(status @ (RoundStatus::Complete | RoundStatus::TimedOut { .. })) => {
                        if !matches!(status, RoundStatus::Complete) {
                            tracing::warn!(round, "round timed out; merging without its stragglers");
                        }
                        let f = st.scheduler.finish_round(now).map_err(|e| TrainError::Other(e.to_string()))?;
                        st.open = None;
                        break Some(f);
                    }
                    Some(RoundStatus::Stalled { .. }) => {
                        tracing::warn!(round, "round stalled (too few workers left); retrying it");
                        st.scheduler.abandon_round().map_err(|e| TrainError::Other(e.to_string()))?;
                        st.open = None;
                        break None;
                    }
                    _ => {}
                }
            };
            let Some(finished) = finished else {
                continue; // stalled or stopping: plan the step again (or leave the loop)
            };

            // Merge in the plan's part order, then by worker id: with one worker per
            // part this is exactly the single-process order.
            let mut ordered = Vec::new();
            let mut per_part: Vec<(PartPlan, Vec<WorkerId>)> = Vec::new();
            for part in &plan.parts {
                let task = Task::of_part(part);
                let ids: Vec<WorkerId> = finished
                    .merged
                    .iter()
                    .copied()
                    .filter(|id| self.hub.lock().workers.get(id).map(|w| w.task) == Some(task))
                    .collect();
                per_part.push((*part, ids.clone()));
                ordered.extend(ids.into_iter().filter_map(|id| updates.remove(&id)));
            }
            let mode = match expected {
                UpdateKind::Gradients => MergeMode::Gradients,
                UpdateKind::WeightDelta => MergeMode::WeightDelta { steps },
            };
            let (losses, samples) = self.merger.apply_merged(&ordered, mode)?;
            if !losses.total.is_finite() {
                let err = TrainError::Diverged {
                    step: self.merger.step(),
                    loss: losses.total,
                    losses: serde_json::to_string(&losses).unwrap_or_default(),
                };
                return Err(err);
            }
            // Draws continue after what this round's workers took from each pool.
            for (part, ids) in &per_part {
                let counts = split_count(part.count, ids.len().max(1));
                let per_step = counts.into_iter().max().unwrap_or(part.count) as u64;
                let d = &mut self.merger.state_mut().state.draws;
                let before = d.get(part.pool);
                d.0.insert(part.pool, before + per_step * steps as u64);
            }
            let done = self.merger.step();
            self.merger.state_mut().state.wall_s = wall_before + session.elapsed().as_secs_f64();
            if done < total {
                self.publish_weights(round)?;
                weights_published = self.merger.version();
            }
            {
                let mut st = self.hub.lock();
                let t = &mut st.run.timing;
                t.last_round_s = opened_at.elapsed().as_secs_f64();
                t.last_merge_s = last_push_at.elapsed().as_secs_f64();
                t.sum_round_s += t.last_round_s;
                t.sum_merge_s += t.last_merge_s;
                t.max_merge_s = t.max_merge_s.max(t.last_merge_s);
                st.run.step = done as u64;
                st.run.latest_losses = Some(losses.clone());
                st.run.rounds_merged += 1;
                st.run.images_seen = self.merger.state().state.images_seen;
                let kind = EventKind::RoundMerged {
                    round,
                    step: done as u64,
                    samples: samples as u64,
                    losses: losses.clone(),
                    workers: ordered.len() as u32,
                    weights_version: self.merger.version(),
                };
                self.hub.emit(&mut st, kind);
            }

            let crossed = |every: usize| (done / every) != (step / every) || done == total;
            if crossed(self.config.train.eval_every) {
                let metrics = evaluate(&self.merger.state().model, &self.val, self.config.eval.batch_size);
                let line = MetricsLine {
                    step: done,
                    wall_s: self.merger.state().state.wall_s,
                    images_seen: self.merger.state().state.images_seen,
                    lr: learning_rate(&self.config.train, done - 1),
                    train: self.merger.state_mut().state.loss_sums.take(),
                    val: metrics.clone(),
                };
                self.dir.append_metrics(&line)?;
                tracing::info!(step = done, miou = metrics.seg.miou, abs_err = metrics.depth.abs_err, "evaluated");
                let mut st = self.hub.lock();
                st.run.latest_metrics = Some(metrics.clone());
                st.run.metrics_step = done as u64;
                self.hub.emit(&mut st, EventKind::Evaluated { round, step: done as u64, metrics: metrics.clone() });
                last_metrics = Some(metrics);
            }
            if crossed(self.config.train.checkpoint_every) {
                self.checkpoint(round)?;
            }
        }

        if self.merger.step() < total {
            // Stopped: save where we are.
            let step = self.merger.step();
            self.merger.state_mut().state.wall_s = wall_before + session.elapsed().as_secs_f64();
            let path = self.checkpoint(round)?;
            return Ok(EngineEnd::Stopped { step, checkpoint: path });
        }
        let metrics = match last_metrics {
            Some(m) => m,
            None => evaluate(&self.merger.state().model, &self.val, self.config.eval.batch_size),
        };
        let s = &self.merger.state().state;
        let report = FinalReport {
            method: self.config.method.kind.to_string(),
            seed: self.config.seed,
            steps: s.step,
            wall_s: s.wall_s,
            seg: metrics.seg.clone(),
            depth: metrics.depth.clone(),
            images_seen: s.images_seen,
            loader: None,
        };
        self.dir.write_final(&report)?;
        Ok(EngineEnd::Finished(report))
    }

    fn checkpoint(&self, round: u64) -> Result<std::path::PathBuf, TrainError> {
        let step = self.merger.step();
        let path = checkpoint::checkpoint_path(&self.dir.checkpoints(), step);
        self.merger.checkpoint().save(&path)?;
        checkpoint::prune(&self.dir.checkpoints(), self.config.train.keep_checkpoints);
        let mut st = self.hub.lock();
        st.run.last_checkpoint = Some(path.display().to_string());
        self.hub
            .emit(&mut st, EventKind::CheckpointWritten { path: path.display().to_string(), round, step: step as u64 });
        Ok(path)
    }
}

/// The tasks that a run's method trains, for registration checks and docs.
pub fn tasks_of(config: &Config) -> BTreeSet<Task> {
    let s = dmtl_core::method::Schedule::new(&config.method, &config.distill, config.train.batch_size);
    let mut tasks = Task::active_in(&s.plan(0));
    tasks.extend(Task::active_in(&s.plan(config.method.switch_every)));
    tasks
}
