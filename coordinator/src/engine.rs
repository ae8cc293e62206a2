//! The round loop: one thread that owns the coordinator's model (the
//! [`Merger`]) and drives the rounds of a run. It publishes snapshots,
//! opens rounds in the scheduler, validates pushed updates, merges each round
//! with the trainer's own functions, evaluates, checkpoints and finishes the
//! run directory exactly as `dmtl train` does. It never runs on the async
//! runtime: the RPC handlers reach it through [`EngineMsg`]s.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dmtl_core::checkpoint;
use dmtl_core::config::Config;
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
use crate::nccl_plane::{GroupOutcome, NcclPlane};
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
    /// The `nccl` data plane (None: `grpc`).
    pub nccl: Option<NcclPlane>,
}

/// How trying to open a round ended.
enum Opening {
    Opened,
    /// Plan the step again (the nccl plane rolled back to the coordinator's state).
    Replan,
    Stop,
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
        // The nccl plane's members load the whole training state, not only the weights.
        let bytes = if self.nccl.is_some() { self.merger.training_state() } else { self.merger.weights() };
        let bytes = bytes.map_err(|e| TrainError::Other(format!("encoding the weights: {e}")))?;
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
        let nccl = self.nccl.is_some();
        if (nccl && !header.kind.is_nccl()) || (!nccl && header.kind != expected) {
            return Err(HubError::InvalidArgument(format!(
                "round {} expects {:?} updates, got {:?}",
                header.round,
                if nccl { UpdateKind::Receipt } else { expected },
                header.kind
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
        // nccl plane: the workers keep their own teachers.
        let teacher_version = if self.nccl.is_some() { 0 } else { self.merger.teacher_version() };
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
                        nccl: None,
                    },
                );
            }
        }
        if self.nccl.is_some() {
            // Every live worker takes part in the all-reduce and the optimizer
            // step, also when the plan has no images for its task (alternate phases).
            for (task, tp) in &rp.tasks {
                for (w, shard) in tp.shards.iter().filter(|(_, s)| !s.is_empty()) {
                    out.entry(*w).or_insert_with(|| WorkerRound {
                        round,
                        weights_version: self.merger.version(),
                        teacher_version: 0,
                        method: self.config.method.kind.to_string(),
                        phase: plan.phase as u64,
                        first_step: plan.step as u64,
                        steps: steps as u32,
                        pool: task.idle_pool(),
                        count: 0,
                        losses: Default::default(),
                        first_draw: 0,
                        update_kind: UpdateKind::Receipt,
                        shard: Arc::new(shard.clone()),
                        nccl: None,
                    });
                }
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
        // nccl plane: an evaluation and a checkpoint that wait for rank 0's training state.
        let mut missed = (false, false);
        {
            let mut st = self.hub.lock();
            st.run.step = self.merger.step() as u64;
            st.run.round = round;
        }

        while self.merger.step() < total && !stop {
            let step = self.merger.step();
            if self.nccl.is_none() {
                self.merger.begin_step(); // nccl plane: each worker refreshes its own teacher
            }
            let plan = self.merger.plan();
            let steps = self.merger.schedule().round_steps(step, self.config.distributed.local_steps, total);
            if self.merger.version() != weights_published {
                self.publish_weights(round)?;
                weights_published = self.merger.version();
            }
            if self.nccl.is_none()
                && self.merger.teacher_version() != teacher_published
                && plan.parts.iter().any(|p| p.losses.needs_teacher())
            {
                self.publish_teacher(round)?;
                teacher_published = self.merger.teacher_version();
            }
            // nccl plane: every task's workers are in every round (one group, one optimizer step).
            let active = if self.nccl.is_some() { Task::trained_by(self.merger.schedule()) } else { Task::active_in(&plan) };
            let crossed_at = |done: usize, every: usize| (done / every) != (step / every) || done == total;
            let want_state = self.nccl.as_ref().is_some_and(|p| p.pending_state)
                || crossed_at(step + steps, self.config.train.eval_every)
                || crossed_at(step + steps, self.config.train.checkpoint_every);
            let mut participants = 0;
            let mut planned_workers: BTreeMap<dmtl_core::method::Pool, usize> = BTreeMap::new();

            // Open the round as soon as every active task has its workers.
            let opened = loop {
                round += 1;
                let now = self.hub.now_ms();
                let mut st = self.hub.lock();
                self.expire(&mut st);
                match st.scheduler.begin_round(round, &active, now) {
                    Ok(rp) if rp.is_ready() => {
                        let mut assignments = self.assignments(round, &plan, steps, &rp);
                        if let Some(plane) = self.nccl.as_mut() {
                            let names = st.workers.iter().map(|(id, w)| (*id, w.name.clone())).collect();
                            let current = plane.synced().step == self.merger.step();
                            if plane.assign(&names, &mut assignments, want_state, current)? == GroupOutcome::RollBack {
                                st.scheduler.abandon_round().map_err(|e| TrainError::Other(e.to_string()))?;
                                let synced = plane.synced().clone();
                                tracing::warn!(
                                    from = self.merger.step(),
                                    to = synced.step,
                                    "no live worker holds the run's state: rolling back to the coordinator's copy"
                                );
                                self.merger.state_mut().state = synced;
                                st.run.step = self.merger.step() as u64;
                                break Opening::Replan;
                            }
                        }
                        participants = assignments.len();
                        st.run.nccl_generation = self.nccl.as_ref().and_then(NcclPlane::generation).unwrap_or(0);
                        for a in assignments.values().filter(|a| a.count > 0) {
                            *planned_workers.entry(a.pool).or_default() += 1;
                        }
                        st.open = Some(OpenRound { round, assignments });
                        st.run.state = RunState::Running;
                        st.run.round = round;
                        st.run.phase = plan.phase as u64;
                        break Opening::Opened;
                    }
                    Ok(_) => {
                        round -= 1; // not opened: the number is free again
                        st.run.state = RunState::WaitingForWorkers;
                    }
                    Err(e) => return Err(TrainError::Other(format!("scheduler: {e}"))),
                }
                drop(st);
                match self.rx.recv_timeout(TICK) {
                    Ok(EngineMsg::Stop) => break Opening::Stop,
                    Ok(EngineMsg::Push { header, reply, .. }) => {
                        let _ = reply.send(Ok(PushVerdict::Refused(format!(
                            "round {} is closed (no round is open)",
                            header.round
                        ))));
                    }
                    Ok(EngineMsg::Wake) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break Opening::Stop,
                }
            };
            match opened {
                Opening::Opened => {}
                Opening::Replan => continue,
                Opening::Stop => break, // stop requested while waiting for workers
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
            let mut state_bytes: Option<Bytes> = None;
            let mut collective_failed = false;
            let finished = loop {
                match self.rx.recv_timeout(TICK) {
                    Ok(EngineMsg::Push { id, header, update, state, reply }) => {
                        let kind = header.kind;
                        let verdict = self.on_push(id, &header, update, expected, weights_version, &mut updates);
                        if matches!(verdict, Ok(PushVerdict::Accepted)) {
                            last_push_at = Instant::now();
                            match kind {
                                UpdateKind::State => state_bytes = state,
                                UpdateKind::Failed => {
                                    tracing::warn!(worker = %header.worker, round, "the round's collective failed");
                                    collective_failed = true;
                                }
                                _ => {}
                            }
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
                if collective_failed {
                    // The members kept their state; the next round names a new generation.
                    st.scheduler.abandon_round().map_err(|e| TrainError::Other(e.to_string()))?;
                    st.open = None;
                    if let Some(plane) = self.nccl.as_mut() {
                        plane.retire();
                    }
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
                        if let Some(plane) = self.nccl.as_mut() {
                            plane.retire(); // its members may be stuck in the collective
                        }
                        break None;
                    }
                    _ => {}
                }
            };
            let Some(finished) = finished else {
                continue; // stalled or stopping: plan the step again (or leave the loop)
            };
            if finished.merged.is_empty() {
                if let Some(plane) = self.nccl.as_mut() {
                    // Timed out without a receipt: nobody is known to have taken the step.
                    tracing::warn!(round, "round timed out without a receipt; planning the step again");
                    plane.retire();
                    continue;
                }
            }

            // Merge in the plan's part order, then by worker id: with one worker per
            // part this is exactly the single-process order.
            let mut per_part: Vec<(PartPlan, usize)> = Vec::new();
            let (losses, samples, workers) = if let Some(plane) = self.nccl.as_mut() {
                // The members merged and applied the step themselves: count it. Every
                // planned worker drew its images, whoever's receipt arrived.
                for part in &plan.parts {
                    per_part.push((*part, planned_workers.get(&part.pool).copied().unwrap_or(1)));
                }
                let receipts: Vec<&Update> = updates.values().filter(|u| u.samples > 0).collect();
                let merged = if receipts.is_empty() { None } else { Some(dmtl_core::train::merge(&receipts)?) };
                let (losses, samples) = merged.map_or_else(Default::default, |m| (m.losses, m.samples));
                self.merger.advance(steps, samples, &losses);
                plane.finished(&finished.merged, participants);
                (losses, samples, finished.merged.len())
            } else {
                let mut ordered = Vec::new();
                for part in &plan.parts {
                    let task = Task::of_part(part);
                    let ids: Vec<WorkerId> = finished
                        .merged
                        .iter()
                        .copied()
                        .filter(|id| self.hub.lock().workers.get(id).map(|w| w.task) == Some(task))
                        .collect();
                    per_part.push((*part, ids.len()));
                    ordered.extend(ids.into_iter().filter_map(|id| updates.remove(&id)));
                }
                let mode = match expected {
                    UpdateKind::WeightDelta => MergeMode::WeightDelta { steps },
                    _ => MergeMode::Gradients,
                };
                let (losses, samples) = self
                    .merger
                    .apply_merged(&ordered, mode)
                    .map_err(|e| TrainError::at_step(step + steps, e))?;
                (losses, samples, ordered.len())
            };
            // Draws continue after what this round's workers took from each pool.
            for (part, n) in &per_part {
                let counts = split_count(part.count, (*n).max(1));
                let per_step = counts.into_iter().max().unwrap_or(part.count) as u64;
                let d = &mut self.merger.state_mut().state.draws;
                let before = d.get(part.pool);
                d.0.insert(part.pool, before + per_step * steps as u64);
            }
            let done = self.merger.step();
            self.merger.state_mut().state.wall_s = wall_before + session.elapsed().as_secs_f64();
            // nccl plane: the coordinator's model is current only after rank 0's state arrived.
            let mut current = self.nccl.is_none();
            if let Some(plane) = self.nccl.as_mut() {
                if want_state {
                    let loaded = match state_bytes.take() {
                        Some(bytes) => self.merger.load_training_state(&bytes).map_err(|e| e.to_string()),
                        None => Err("rank 0 did not push it".to_string()),
                    };
                    match loaded {
                        Ok(()) => {
                            current = true;
                            plane.pending_state = false;
                            plane.set_synced(self.merger.state().state.clone());
                        }
                        Err(e) => {
                            tracing::warn!(round, error = %e, "no training state after the round; asking again next round");
                            plane.pending_state = true;
                        }
                    }
                }
            }
            if done < total && self.nccl.is_none() {
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
                    workers: workers as u32,
                    weights_version: self.merger.version(),
                };
                self.hub.emit(&mut st, kind);
            }

            let crossed = |every: usize| (done / every) != (step / every) || done == total;
            let eval_due = crossed(self.config.train.eval_every) || missed.0;
            let checkpoint_due = crossed(self.config.train.checkpoint_every) || missed.1;
            if !current {
                missed = (eval_due, checkpoint_due); // when the training state arrives
                continue;
            }
            missed = (false, false);
            if eval_due {
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
            if checkpoint_due {
                self.checkpoint(round)?;
            }
        }

        if self.merger.step() < total {
            // Stopped: save where we are (nccl plane: where the coordinator's copy is).
            if let Some(plane) = &self.nccl {
                self.merger.state_mut().state = plane.synced().clone();
            }
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
