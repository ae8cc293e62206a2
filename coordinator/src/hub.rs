//! The hub: what the RPC handlers and the round loop share. Domain types only
//! (the service adapters convert to and from `dmtl.v1`).
//!
//! Membership, heartbeats and waiting for rounds are answered here, under one
//! short-lived lock that is never held across an `.await`. Updates are handed
//! to the round loop's thread (see [`crate::engine`]), which validates and
//! merges them: no tensor work runs on the async runtime.

use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dmtl_core::method::{Losses, Pool};
use dmtl_core::metrics::EvalMetrics;
use dmtl_core::train::wire::{decode_update_with, UpdateSpec};
use dmtl_core::train::{LossValues, Update};
use tokio::sync::{broadcast, oneshot, watch};

use crate::scheduler::{Scheduler, SchedulerError, Task, WorkerId};

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What a worker says it is doing (heartbeats), or what the coordinator concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerActivity {
    Starting,
    Waiting,
    Pulling,
    Training,
    Pushing,
    Lost,
    Left,
}

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

/// How an update changes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    Gradients,
    WeightDelta,
    /// nccl plane: the step was all-reduced and applied by every member.
    Receipt,
    /// nccl plane: a receipt carrying the training state after the step.
    State,
    /// nccl plane: the round's collective failed; the worker's model is unchanged.
    Failed,
}

impl UpdateKind {
    /// The kinds of the nccl plane, which carry no tensors to merge.
    pub fn is_nccl(self) -> bool {
        matches!(self, UpdateKind::Receipt | UpdateKind::State | UpdateKind::Failed)
    }
}

/// A worker's place in the all-reduce group of a round (nccl plane).
#[derive(Debug, Clone)]
pub struct NcclRound {
    pub membership: dmtl_collective::group::Membership,
    /// Copy the training state of this rank before the step.
    pub source_rank: Option<u32>,
    /// Load the coordinator's training state (the weights snapshot) before the step.
    pub load_state: bool,
}

/// Which snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    Weights,
    Teacher,
}

/// A published snapshot: safetensors bytes of a version.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: u64,
    /// The round whose merge produced it (0: before the first merge).
    pub round: u64,
    pub bytes: Bytes,
}

/// A worker asks to join.
#[derive(Debug, Clone)]
pub struct Registration {
    pub task: Task,
    pub device: String,
    pub host: String,
    pub threads: u32,
    pub version: String,
    /// The name it had before (a rejoin), if any.
    pub previous: Option<String>,
}

/// What a worker is told when it joins.
#[derive(Debug, Clone)]
pub struct Admission {
    pub worker: String,
    pub task: Task,
    pub run_id: String,
    pub config_toml: String,
    pub dataset_size: u64,
    pub local_steps: u32,
    pub chunk_bytes: u32,
    pub nccl: bool,
    pub heartbeat_interval_ms: u32,
    pub heartbeat_timeout_ms: u32,
}

/// A worker's share of one round.
#[derive(Debug, Clone)]
pub struct WorkerRound {
    pub round: u64,
    pub weights_version: u64,
    /// 0 when the part needs no teacher.
    pub teacher_version: u64,
    pub method: String,
    pub phase: u64,
    pub first_step: u64,
    pub steps: u32,
    pub pool: Pool,
    /// Images per step for this worker.
    pub count: u32,
    pub losses: Losses,
    pub first_draw: u64,
    pub update_kind: UpdateKind,
    pub shard: Arc<Vec<usize>>,
    /// The round's all-reduce group (nccl plane only).
    pub nccl: Option<Box<NcclRound>>,
}

/// The answer to a worker waiting for a round.
#[derive(Debug, Clone)]
pub enum RoundOffer {
    /// Run this round; `shards` is set when the worker's shard changed.
    Run { round: WorkerRound, shards: Option<(u64, Arc<Vec<usize>>)> },
    /// Nothing yet: ask again after this long.
    Retry { last_round: u64, after: Duration },
    /// The run is over.
    Finished,
}

/// The header of a pushed update.
#[derive(Debug, Clone)]
pub struct PushHeader {
    pub worker: String,
    pub round: u64,
    pub weights_version: u64,
    pub samples: u64,
    pub kind: UpdateKind,
    /// The worker's training losses (what a receipt of the nccl plane reports).
    pub losses: LossValues,
}

/// The verdict on a well-formed update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushVerdict {
    Accepted,
    /// Not merged, for a reason that is a normal race (late, duplicate, dropped).
    Refused(String),
}

/// Why an RPC fails. The service adapters map these to gRPC status codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    #[error("unknown worker `{0}` (was the coordinator restarted?); register again")]
    UnknownWorker(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    NotFound(String),
    /// A newer version replaced the one asked for: wait for the next round.
    #[error("{0}")]
    Superseded(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// What the round loop is sent.
pub enum EngineMsg {
    /// An update to validate and, if accepted, record for its round.
    Push {
        id: WorkerId,
        header: Box<PushHeader>,
        update: Update,
        /// The training state of an nccl-plane `State` push (checked by the round loop).
        state: Option<Bytes>,
        reply: oneshot::Sender<Result<PushVerdict, HubError>>,
    },
    /// Something changed (a worker joined, left, heartbeat): re-check the round.
    Wake,
    /// Stop after the current round with a checkpoint.
    Stop,
}

/// A worker as the coordinator knows it.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    pub id: WorkerId,
    pub name: String,
    pub task: Task,
    pub host: String,
    pub device: String,
    pub threads: u32,
    pub activity: WorkerActivity,
    pub last_heartbeat_unix_ms: u64,
    pub images_per_s: f64,
    pub shard_size: usize,
    pub last_round: u64,
    /// The shard last sent to it (version, indices).
    pub sent_shard: Option<(u64, Arc<Vec<usize>>)>,
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

/// The open round as the hub serves it.
#[derive(Debug, Clone)]
pub struct OpenRound {
    pub round: u64,
    pub assignments: BTreeMap<WorkerId, WorkerRound>,
}

/// The mutable part of the hub.
pub struct HubState {
    pub scheduler: Scheduler,
    pub workers: BTreeMap<WorkerId, WorkerInfo>,
    pub open: Option<OpenRound>,
    pub weights: Option<Snapshot>,
    pub teacher: Option<Snapshot>,
    pub run: RunView,
    next_seq: u64,
}

/// Fixed facts about the run the hub serves.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run_id: String,
    pub method: String,
    pub config_toml: String,
    pub dataset_size: u64,
    pub local_steps: u32,
    pub chunk_bytes: u32,
    pub nccl: bool,
    pub heartbeat_interval_ms: u32,
    pub heartbeat_timeout_ms: u32,
    /// Upper bound of an update's payload in bytes.
    pub max_update_bytes: u64,
    /// What updates are validated against (the model's names, shapes, dtypes).
    pub spec: Arc<UpdateSpec>,
}

/// Shared between the RPC handlers and the round loop.
pub struct Hub {
    pub facts: RunFacts,
    state: Mutex<HubState>,
    engine: Mutex<Sender<EngineMsg>>,
    /// Bumped whenever a round opens or the run ends (wakes `wait_round`).
    round_tx: watch::Sender<u64>,
    events: broadcast::Sender<RunEvent>,
    clock: Instant,
    /// Distinguishes this coordinator process's worker names from an earlier one's.
    incarnation: String,
    started_unix_ms: u64,
}

/// The longest a `WaitRound` call is held open.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

impl Hub {
    pub fn new(facts: RunFacts, scheduler: Scheduler, run: RunView, engine: Sender<EngineMsg>) -> Arc<Hub> {
        let (round_tx, _) = watch::channel(0);
        let (events, _) = broadcast::channel(4096);
        let started_unix_ms = unix_ms();
        // Short and different for every coordinator start.
        let incarnation = format!("{:x}", (started_unix_ms ^ u64::from(std::process::id()) << 20) & 0xffff_ffff);
        Arc::new(Hub {
            facts,
            state: Mutex::new(HubState {
                scheduler,
                workers: BTreeMap::new(),
                open: None,
                weights: None,
                teacher: None,
                run,
                next_seq: 0,
            }),
            engine: Mutex::new(engine),
            round_tx,
            events,
            clock: Instant::now(),
            incarnation,
            started_unix_ms,
        })
    }

    /// Milliseconds on the hub's monotonic clock (the scheduler's time).
    pub fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// The shared state; held briefly, never across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, msg: EngineMsg) -> Result<(), HubError> {
        let tx = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        tx.send(msg).map_err(|_| HubError::Unavailable("the coordinator's round loop has stopped".into()))
    }

    fn wake(&self) {
        let _ = self.send(EngineMsg::Wake);
    }

    /// Asks the round loop to stop with a checkpoint.
    pub fn request_stop(&self) {
        let _ = self.send(EngineMsg::Stop);
    }

    /// Tells `wait_round` callers to look again.
    pub fn notify_round(&self) {
        self.round_tx.send_modify(|g| *g += 1);
    }

    /// Records and broadcasts an event.
    pub fn emit(&self, state: &mut HubState, kind: EventKind) {
        state.next_seq += 1;
        let event = RunEvent { seq: state.next_seq, unix_ms: unix_ms(), kind };
        let _ = self.events.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.events.subscribe()
    }

    fn name_of(&self, task: Task, id: WorkerId) -> String {
        format!("{}-{}.{}", task.as_str(), id.0, self.incarnation)
    }

    /// The id of a worker name handed out by this coordinator process.
    pub fn parse_name(&self, name: &str) -> Result<WorkerId, HubError> {
        let unknown = || HubError::UnknownWorker(name.to_string());
        let (rest, incarnation) = name.rsplit_once('.').ok_or_else(unknown)?;
        if incarnation != self.incarnation {
            return Err(unknown());
        }
        let (_, n) = rest.rsplit_once('-').ok_or_else(unknown)?;
        let id = WorkerId(n.parse().map_err(|_| unknown())?);
        match self.lock().workers.get(&id) {
            Some(w) if w.name == name => Ok(id),
            _ => Err(unknown()),
        }
    }

    pub fn register(&self, r: Registration) -> Result<Admission, HubError> {
        let ours = env!("CARGO_PKG_VERSION");
        if r.version != ours {
            return Err(HubError::FailedPrecondition(format!(
                "worker version {} differs from the coordinator's {ours}",
                r.version
            )));
        }
        let now = self.now_ms();
        let mut st = self.lock();
        if matches!(st.run.state, RunState::Finished | RunState::Failed) {
            return Err(HubError::FailedPrecondition("the run is finished".into()));
        }
        let id = st.scheduler.register(r.task, now).map_err(|e| match e {
            SchedulerError::NoPool(task) => HubError::InvalidArgument(format!(
                "task `{task}` has no images in method `{}` (it trains {})",
                self.facts.method,
                st.scheduler.pools().tasks().map(Task::as_str).collect::<Vec<_>>().join(" and ")
            )),
            other => HubError::Internal(other.to_string()),
        })?;
        let name = self.name_of(r.task, id);
        st.workers.insert(
            id,
            WorkerInfo {
                id,
                name: name.clone(),
                task: r.task,
                host: r.host.clone(),
                device: r.device,
                threads: r.threads,
                activity: WorkerActivity::Starting,
                last_heartbeat_unix_ms: unix_ms(),
                images_per_s: 0.0,
                shard_size: 0,
                last_round: 0,
                sent_shard: None,
            },
        );
        let kind = match r.previous {
            Some(previous) => EventKind::WorkerRejoined { worker: name.clone(), task: r.task, host: r.host, previous },
            None => EventKind::WorkerJoined { worker: name.clone(), task: r.task, host: r.host },
        };
        tracing::info!(worker = %name, task = %r.task, "worker registered");
        self.emit(&mut st, kind);
        drop(st);
        self.wake();
        let f = &self.facts;
        Ok(Admission {
            worker: name,
            task: r.task,
            run_id: f.run_id.clone(),
            config_toml: f.config_toml.clone(),
            dataset_size: f.dataset_size,
            local_steps: f.local_steps,
            chunk_bytes: f.chunk_bytes,
            nccl: f.nccl,
            heartbeat_interval_ms: f.heartbeat_interval_ms,
            heartbeat_timeout_ms: f.heartbeat_timeout_ms,
        })
    }

    /// A heartbeat. `Ok(None)`: the worker must register again; otherwise the
    /// current round.
    pub fn heartbeat(
        &self,
        name: &str,
        round: u64,
        images_per_s: f64,
        activity: WorkerActivity,
    ) -> Result<Option<u64>, HubError> {
        let id = match self.parse_name(name) {
            Ok(id) => id,
            Err(HubError::UnknownWorker(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let now = self.now_ms();
        let mut st = self.lock();
        if st.scheduler.heartbeat(id, now).is_err() {
            return Ok(None);
        }
        let current = st.run.round;
        if let Some(w) = st.workers.get_mut(&id) {
            w.last_heartbeat_unix_ms = unix_ms();
            if images_per_s.is_finite() && images_per_s >= 0.0 {
                w.images_per_s = images_per_s;
            }
            w.activity = activity;
            w.last_round = w.last_round.max(round);
        }
        Ok(Some(current))
    }

    /// Long-polls for the next round after `last_round`.
    pub async fn wait_round(&self, name: &str, last_round: u64, max_wait: Duration) -> Result<RoundOffer, HubError> {
        let id = self.parse_name(name)?;
        let max_wait = max_wait.min(MAX_WAIT);
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut rx = self.round_tx.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(offer) = self.offer(id, last_round)? {
                return Ok(offer);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => {
                    return Ok(RoundOffer::Retry { last_round, after: Duration::from_millis(50) });
                }
            }
        }
    }

    fn offer(&self, id: WorkerId, last_round: u64) -> Result<Option<RoundOffer>, HubError> {
        let mut st = self.lock();
        if matches!(st.run.state, RunState::Finished | RunState::Failed) {
            return Ok(Some(RoundOffer::Finished));
        }
        if !st.scheduler.membership().is_live(id) {
            return Err(HubError::UnknownWorker(st.workers.get(&id).map_or(String::new(), |w| w.name.clone())));
        }
        let Some(round) = st.open.as_ref().filter(|o| o.round > last_round).and_then(|o| o.assignments.get(&id)) else {
            return Ok(None);
        };
        let round = round.clone();
        let w = st.workers.get_mut(&id).expect("a live worker is known");
        let shards = match &w.sent_shard {
            Some((_, sent)) if **sent == *round.shard => None,
            previous => {
                let version = previous.as_ref().map_or(1, |(v, _)| v + 1);
                w.sent_shard = Some((version, round.shard.clone()));
                Some((version, round.shard.clone()))
            }
        };
        w.shard_size = round.shard.len();
        Ok(Some(RoundOffer::Run { round, shards }))
    }

    /// The snapshot of `kind` at `version`, if it is the one published.
    pub fn snapshot(&self, name: &str, kind: SnapshotKind, version: u64) -> Result<Snapshot, HubError> {
        self.parse_name(name)?;
        let st = self.lock();
        let held = match kind {
            SnapshotKind::Weights => st.weights.as_ref(),
            SnapshotKind::Teacher => st.teacher.as_ref(),
        };
        match held {
            Some(s) if s.version == version => Ok(s.clone()),
            Some(s) => Err(HubError::Superseded(format!(
                "{} version {version} is not held (the current one is {})",
                if kind == SnapshotKind::Weights { "weights" } else { "teacher" },
                s.version
            ))),
            None => Err(HubError::NotFound("no snapshot of that kind is published".into())),
        }
    }

    /// Validates an update (on a blocking thread, several at once), hands it to
    /// the round loop and waits for its verdict.
    pub async fn push(&self, header: PushHeader, payload: Bytes) -> Result<PushVerdict, HubError> {
        let id = self.parse_name(&header.worker)?;
        if header.kind.is_nccl() {
            // No tensors to merge: the step was merged by all-reduce. The
            // training state of a `State` push is checked on the round loop.
            if !header.losses.total.is_finite() && header.kind != UpdateKind::Failed {
                return Err(HubError::InvalidArgument(format!("`header.losses.total` is {}", header.losses.total)));
            }
            let state = (header.kind == UpdateKind::State).then_some(payload);
            let update = Update {
                grads: BTreeMap::new(),
                buffers: BTreeMap::new(),
                samples: header.samples as usize,
                losses: header.losses.clone(),
            };
            let (reply, verdict) = oneshot::channel();
            self.send(EngineMsg::Push { id, header: Box::new(header), update, state, reply })?;
            return verdict
                .await
                .map_err(|_| HubError::Unavailable("the coordinator's round loop has stopped".into()))?;
        }
        let spec = self.facts.spec.clone();
        let update = tokio::task::spawn_blocking(move || decode_update_with(&payload, &spec))
            .await
            .map_err(|e| HubError::Internal(format!("validating the update: {e}")))?
            .map_err(|e| HubError::InvalidArgument(e.to_string()))?;
        if update.samples as u64 != header.samples {
            return Err(HubError::InvalidArgument(format!(
                "the header says {} samples, the payload {}",
                header.samples, update.samples
            )));
        }
        let (reply, verdict) = oneshot::channel();
        self.send(EngineMsg::Push { id, header: Box::new(header), update, state: None, reply })?;
        verdict.await.map_err(|_| HubError::Unavailable("the coordinator's round loop has stopped".into()))?
    }

    pub fn leave(&self, name: &str, reason: &str) -> Result<(), HubError> {
        let id = self.parse_name(name)?;
        let mut st = self.lock();
        if st.scheduler.leave(id).is_ok() {
            let w = st.workers.get_mut(&id).expect("a registered worker is known");
            w.activity = WorkerActivity::Left;
            let (worker, task, host) = (w.name.clone(), w.task, w.host.clone());
            tracing::info!(worker = %worker, reason, "worker left");
            self.emit(&mut st, EventKind::WorkerLost { worker, task, host, reason: format!("left: {reason}") });
        }
        drop(st);
        self.wake();
        Ok(())
    }

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
