//! The worker's life: connect (retrying with backoff), register, then
//! wait → pull → train → push, round after round, with heartbeats alongside;
//! register again when the coordinator forgets the worker (it was restarted or
//! declared the worker lost), and leave when the run is finished.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dmtl_core::config::Config;
use dmtl_core::method::{PartPlan, Pool};
use dmtl_proto::v1::coordinator_client::CoordinatorClient;
use dmtl_proto::v1::{self, UpdateChunk};
use dmtl_proto::{chunk_messages, receive, MAX_MESSAGE_BYTES};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use crate::trainer::{Job, PushKind, RoundWork, TrainerHandle};

/// The task a worker offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerTask {
    Seg,
    Depth,
    Both,
}

impl WorkerTask {
    fn to_proto(self) -> v1::Task {
        match self {
            WorkerTask::Seg => v1::Task::Seg,
            WorkerTask::Depth => v1::Task::Depth,
            WorkerTask::Both => v1::Task::Both,
        }
    }
}

impl std::str::FromStr for WorkerTask {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "seg" => Ok(WorkerTask::Seg),
            "depth" => Ok(WorkerTask::Depth),
            "both" => Ok(WorkerTask::Both),
            _ => Err(format!("must be seg, depth or both (got `{s}`)")),
        }
    }
}

/// What `dmtl worker` is asked to do.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// `http://host:port` or `https://host:port`.
    pub coordinator: String,
    pub task: WorkerTask,
    /// Overrides the config's `train.device`.
    pub device: Option<String>,
    /// Overrides the config's `data.root` (the same images, mounted elsewhere).
    pub data_root: Option<PathBuf>,
    /// Overrides the config's `train.threads`.
    pub threads: Option<usize>,
    pub token: String,
    /// CA certificate (PEM) that signed the coordinator's certificate.
    pub tls_ca: Option<PathBuf>,
    /// Host name reported to the coordinator.
    pub host: String,
    /// How long to keep retrying an unreachable coordinator before giving up.
    pub give_up_after: Duration,
}

/// What a worker did.
#[derive(Debug, Clone, Default)]
pub struct WorkerSummary {
    pub rounds: u64,
    pub images: u64,
    pub registrations: u64,
    /// Where the rounds' time went (seconds, summed over rounds).
    pub time: PhaseTimes,
}

/// Seconds a worker spent in each phase of its rounds, summed: what bounds a
/// synchronous round (BENCHMARKS.md, "The distributed engine").
#[derive(Debug, Default, Clone, Copy)]
pub struct PhaseTimes {
    /// Waiting for a round to open (the other workers, the merge, the publish).
    pub wait_s: f64,
    /// Pulling and loading weights and teacher snapshots.
    pub pull_s: f64,
    /// Training steps and encoding the update.
    pub train_s: f64,
    /// Sending the update until the coordinator's verdict.
    pub push_s: f64,
    /// nccl plane: joining groups and the collectives (state sync, the
    /// all-reduce merge), not counted in `train_s`.
    pub collective_s: f64,
}

impl std::fmt::Display for PhaseTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "waiting {:.1} s, pulling {:.1} s, training {:.1} s, pushing {:.1} s",
            self.wait_s, self.pull_s, self.train_s, self.push_s
        )?;
        if self.collective_s > 0.0 {
            write!(f, ", all-reducing {:.1} s", self.collective_s)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Setup(String),
    #[error("the coordinator at {url} refused: {status}")]
    Refused { url: String, status: String },
    #[error("the coordinator at {url} was unreachable for {seconds} s: {last}")]
    Unreachable { url: String, seconds: u64, last: String },
    #[error("training failed: {0}")]
    Training(String),
    /// The nccl step did not return after the coordinator moved on; the
    /// process should exit and be restarted (it rejoins as a new worker).
    #[error("stuck: {0}")]
    Stuck(String),
}

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl BearerToken {
    pub fn new(token: &str) -> Result<BearerToken, String> {
        format!("Bearer {token}").parse().map(BearerToken).map_err(|_| "the token must be printable ASCII".to_string())
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type Client = CoordinatorClient<InterceptedService<Channel, BearerToken>>;

/// A channel to `url` (lazy: connects on first use, reconnects after failures).
pub fn channel(url: &str, tls_ca: Option<&PathBuf>) -> Result<Channel, String> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("--coordinator {url}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .initial_stream_window_size(dmtl_proto::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(dmtl_proto::CONNECTION_WINDOW_BYTES)
        .max_frame_size(dmtl_proto::MAX_FRAME_BYTES)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if let Some(ca) = tls_ca {
        let pem = std::fs::read(ca).map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            .map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
    } else if url.starts_with("https://") {
        return Err(format!("--coordinator {url}: https needs --tls-ca"));
    }
    Ok(endpoint.connect_lazy())
}

/// A client with the token and message limits set.
pub fn client(url: &str, tls_ca: Option<&PathBuf>, token: &str) -> Result<Client, String> {
    let ch = channel(url, tls_ca)?;
    Ok(CoordinatorClient::with_interceptor(ch, BearerToken::new(token)?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// Errors worth retrying: the coordinator is (re)starting or the network hiccupped.
fn transient(s: &Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted)
        || (s.code() == Code::Internal && s.message().contains("h2"))
}

/// State shared with the heartbeat task.
struct Shared {
    worker: std::sync::Mutex<String>,
    round: AtomicU64,
    state: AtomicU8,
    images_per_s: AtomicU64,
    rejoin: AtomicBool,
    /// The coordinator's current round, from the last heartbeat's answer.
    coordinator_round: AtomicU64,
}

fn state_code(s: v1::WorkerState) -> u8 {
    s as i32 as u8
}

/// Exponential backoff from 100 ms to 5 s.
struct Backoff {
    next: Duration,
    since: Option<Instant>,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next: Duration::from_millis(100), since: None }
    }
    fn reset(&mut self) {
        *self = Backoff::new();
    }
    async fn wait(&mut self, opts: &WorkerOptions, last: &Status) -> Result<(), WorkerError> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() > opts.give_up_after {
            return Err(WorkerError::Unreachable {
                url: opts.coordinator.clone(),
                seconds: since.elapsed().as_secs(),
                last: last.message().to_string(),
            });
        }
        tracing::debug!(wait_ms = self.next.as_millis() as u64, error = %last.message(), "coordinator unreachable; retrying");
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        Ok(())
    }
}

/// What registration established.
struct Session {
    worker: String,
    config_toml: String,
    chunk_bytes: usize,
    heartbeat: Duration,
}

fn pool_from(value: i32) -> Option<Pool> {
    match v1::Pool::try_from(value) {
        Ok(v1::Pool::Seg) => Some(Pool::Seg),
        Ok(v1::Pool::Depth) => Some(Pool::Depth),
        Ok(v1::Pool::All) => Some(Pool::All),
        _ => None,
    }
}

fn work_of(info: &v1::RoundInfo) -> Result<RoundWork, WorkerError> {
    let bad = |m: &str| WorkerError::Training(format!("round {}: {m}", info.round));
    let plan = info.plan.as_ref().ok_or_else(|| bad("no plan"))?;
    let part = plan.parts.first().ok_or_else(|| bad("no batch part"))?;
    let pool = pool_from(part.pool).ok_or_else(|| bad("unknown pool"))?;
    let l = part.losses.unwrap_or_default();
    let kind = match v1::UpdateKind::try_from(plan.update_kind) {
        Ok(v1::UpdateKind::WeightDelta) => PushKind::WeightDelta,
        _ => PushKind::Gradients,
    };
    Ok(RoundWork {
        round: info.round,
        first_step: plan.first_step,
        steps: plan.steps.max(1),
        part: PartPlan {
            pool,
            count: part.count as usize,
            losses: dmtl_core::method::Losses {
                seg: l.seg,
                depth: l.depth,
                distill_seg: l.distill_seg,
                distill_depth: l.distill_depth,
            },
        },
        first_draw: part.first_draw,
        kind,
    })
}

fn local_config(opts: &WorkerOptions, toml: &str) -> Result<Config, WorkerError> {
    let mut overrides = Vec::new();
    if let Some(root) = &opts.data_root {
        overrides.push(format!("data.root={:?}", root.display().to_string()));
    }
    if let Some(d) = &opts.device {
        overrides.push(format!("train.device={d:?}"));
    }
    if let Some(t) = opts.threads {
        overrides.push(format!("train.threads={t}"));
    }
    Config::from_toml_str(toml, std::path::Path::new("<coordinator's config>"), &overrides)
        .map_err(|e| WorkerError::Setup(e.to_string()))
}

/// Runs a worker until the run is finished (or `stop` turns true).
pub async fn run(opts: WorkerOptions, stop: tokio::sync::watch::Receiver<bool>) -> Result<WorkerSummary, WorkerError> {
    let mut client = client(&opts.coordinator, opts.tls_ca.as_ref(), &opts.token).map_err(WorkerError::Setup)?;
    let shared = Arc::new(Shared {
        worker: std::sync::Mutex::new(String::new()),
        round: AtomicU64::new(0),
        state: AtomicU8::new(state_code(v1::WorkerState::Starting)),
        images_per_s: AtomicU64::new(0f64.to_bits()),
        rejoin: AtomicBool::new(false),
        coordinator_round: AtomicU64::new(0),
    });
    let mut summary = WorkerSummary::default();
    let mut trainer: Option<(String, TrainerHandle)> = None;
    let mut previous = String::new();
    let mut backoff = Backoff::new();
    let mut heartbeat_task: Option<tokio::task::JoinHandle<()>> = None;

    'session: loop {
        if *stop.borrow() {
            break;
        }
        // Register (again).
        let request = v1::RegisterRequest {
            task: opts.task.to_proto() as i32,
            device: opts.device.clone().unwrap_or_default(),
            host: opts.host.clone(),
            threads: opts.threads.unwrap_or(0) as u32,
            version: env!("CARGO_PKG_VERSION").to_string(),
            previous_worker_id: previous.clone(),
        };
        let reply = match client.register(request).await {
            Ok(r) => r.into_inner(),
            Err(s) if transient(&s) => {
                backoff.wait(&opts, &s).await?;
                continue;
            }
            Err(s) if s.code() == Code::FailedPrecondition && s.message().contains("finished") => {
                tracing::info!("the run is finished");
                break;
            }
            Err(s) => {
                return Err(WorkerError::Refused { url: opts.coordinator.clone(), status: s.message().to_string() })
            }
        };
        backoff.reset();
        summary.registrations += 1;
        let assignment = reply.assignment.unwrap_or_default();
        let plane = assignment.data_plane.unwrap_or_default();
        let backend = if plane.kind == v1::DataPlaneKind::Nccl as i32 {
            let device = local_config(&opts, &assignment.config_toml)?.train.device;
            let backend = tokio::task::spawn_blocking(move || dmtl_collective::Backend::select(Some(&device)))
                .await
                .map_err(|e| WorkerError::Setup(e.to_string()))?
                .map_err(|e| WorkerError::Setup(e.to_string()))?;
            Some(backend)
        } else {
            None
        };
        let session = Session {
            worker: reply.worker_id.clone(),
            config_toml: assignment.config_toml.clone(),
            chunk_bytes: (plane.chunk_bytes as usize).clamp(1024, dmtl_proto::MAX_CHUNK_BYTES),
            heartbeat: Duration::from_millis(u64::from(reply.heartbeat_interval_ms.max(10))),
        };
        tracing::info!(worker = %session.worker, run = %assignment.run_id, "registered");
        previous = session.worker.clone();
        *shared.worker.lock().unwrap_or_else(|p| p.into_inner()) = session.worker.clone();
        shared.rejoin.store(false, Ordering::SeqCst);
        shared.round.store(0, Ordering::SeqCst);

        // The training thread: kept when the run's config is unchanged (a coordinator restart).
        if trainer.as_ref().map(|(toml, _)| toml != &session.config_toml).unwrap_or(true) {
            drop(trainer.take()); // free the old model and images first
            let config = local_config(&opts, &session.config_toml)?;
            let size = assignment.dataset_size;
            let handle = tokio::task::spawn_blocking(move || TrainerHandle::spawn(config, size))
                .await
                .map_err(|e| WorkerError::Setup(e.to_string()))?
                .map_err(WorkerError::Setup)?;
            trainer = Some((session.config_toml.clone(), handle));
        }
        let handle = &trainer.as_ref().expect("set above").1;

        if let Some(t) = heartbeat_task.take() {
            t.abort();
        }
        heartbeat_task = Some(tokio::spawn(heartbeats(client.clone(), shared.clone(), session.heartbeat)));

        let (mut weights_version, mut teacher_version) = (u64::MAX, u64::MAX);
        let mut last_round = 0u64;
        loop {
            if *stop.borrow() {
                break 'session;
            }
            if shared.rejoin.load(Ordering::SeqCst) {
                tracing::warn!(worker = %session.worker, "the coordinator asks this worker to register again");
                continue 'session;
            }
            shared.state.store(state_code(v1::WorkerState::Waiting), Ordering::SeqCst);
            let wait = v1::WaitRoundRequest { worker_id: session.worker.clone(), last_round, max_wait_ms: 10_000 };
            let mut clock = Instant::now();
            let mut lap = |slot: &mut f64| {
                let now = Instant::now();
                *slot += (now - clock).as_secs_f64();
                clock = now;
            };
            let info = match client.wait_round(wait).await {
                Ok(r) => r.into_inner(),
                Err(s) if s.code() == Code::NotFound => continue 'session,
                Err(s) if transient(&s) => {
                    backoff.wait(&opts, &s).await?;
                    continue;
                }
                Err(s) => return Err(WorkerError::Refused { url: opts.coordinator.clone(), status: s.to_string() }),
            };
            backoff.reset();
            if info.finished {
                let _ = client
                    .leave(v1::LeaveRequest { worker_id: session.worker.clone(), reason: "finished".into() })
                    .await;
                break 'session;
            }
            if info.plan.is_none() {
                if info.retry_after_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(u64::from(info.retry_after_ms))).await;
                }
                continue;
            }
            let work = work_of(&info)?;
            shared.round.store(info.round, Ordering::SeqCst);
            lap(&mut summary.time.wait_s);

            // Pull what this worker lacks.
            shared.state.store(state_code(v1::WorkerState::Pulling), Ordering::SeqCst);
            if let Some(shards) = &info.shards {
                let indices: Vec<usize> =
                    shards.shards.iter().flat_map(|s| s.indices.iter().map(|&i| i as usize)).collect();
                handle.call(|reply| Job::Shard { indices, reply }).await.map_err(WorkerError::Setup)?;
                lap(&mut summary.time.pull_s); // loading the shard's images
            }
            // The first batch is built on the training thread while the weights travel.
            handle.submit(Job::Prepare { work: work.clone() });
            if let Some(backend) = backend {
                // The nccl plane: the step is merged among the workers (worker/src/nccl.rs).
                shared.state.store(state_code(v1::WorkerState::Training), Ordering::SeqCst);
                let mut nccl = crate::nccl::NcclRound {
                    client: &mut client,
                    worker: &session.worker,
                    chunk_bytes: session.chunk_bytes,
                    handle,
                    backend,
                    coordinator_round: &shared.coordinator_round,
                };
                let mut times = crate::nccl::NcclTimes::default();
                let done = nccl.run(&info, work, &mut times).await;
                lap(&mut summary.time.train_s);
                // The round's pulls, collectives and push, out of the training time.
                let t = &mut summary.time;
                t.train_s -= times.pull_s + times.collective_s + times.push_s;
                t.pull_s += times.pull_s;
                t.collective_s += times.collective_s;
                t.push_s += times.push_s;
                match done {
                    Ok(Some(images)) => {
                        summary.rounds += 1;
                        summary.images += images;
                    }
                    Ok(None) => {}
                    Err(crate::nccl::RoundError::Training(e)) => return Err(WorkerError::Training(e)),
                    Err(crate::nccl::RoundError::Stuck(e)) => return Err(WorkerError::Stuck(e)),
                    Err(crate::nccl::RoundError::Rpc(s)) if s.code() == Code::NotFound => continue 'session,
                    Err(crate::nccl::RoundError::Rpc(s)) if transient(&s) => backoff.wait(&opts, &s).await?,
                    Err(crate::nccl::RoundError::Rpc(s)) => {
                        return Err(WorkerError::Refused { url: opts.coordinator.clone(), status: s.to_string() })
                    }
                }
                last_round = info.round;
                continue;
            }
            let mut pulls = vec![(v1::SnapshotKind::Weights, info.weights_version)];
            if info.teacher_version > 0 {
                pulls.push((v1::SnapshotKind::Teacher, info.teacher_version));
            }
            let mut superseded = false;
            for (kind, version) in pulls {
                let held = if kind == v1::SnapshotKind::Weights { weights_version } else { teacher_version };
                if held == version {
                    continue;
                }
                let request = v1::PullSnapshotRequest { worker_id: session.worker.clone(), kind: kind as i32, version };
                let bytes = match pull(&mut client, request).await {
                    Ok(b) => b,
                    Err(s) if s.code() == Code::Aborted => {
                        superseded = true; // a newer version was published: wait for its round
                        break;
                    }
                    Err(s) if s.code() == Code::NotFound => continue 'session,
                    Err(s) if transient(&s) => {
                        superseded = true;
                        backoff.wait(&opts, &s).await?;
                        break;
                    }
                    Err(s) => {
                        return Err(WorkerError::Refused { url: opts.coordinator.clone(), status: s.to_string() })
                    }
                };
                if kind == v1::SnapshotKind::Weights {
                    handle.call(|reply| Job::Weights { bytes, reply }).await.map_err(WorkerError::Training)?;
                    weights_version = version;
                } else {
                    handle.call(|reply| Job::Teacher { bytes, reply }).await.map_err(WorkerError::Training)?;
                    teacher_version = version;
                }
            }
            lap(&mut summary.time.pull_s);
            if superseded {
                continue;
            }

            shared.state.store(state_code(v1::WorkerState::Training), Ordering::SeqCst);
            let w = work.clone();
            let result = handle.call(|reply| Job::Train { work: w, reply }).await.map_err(WorkerError::Training)?;
            shared.images_per_s.store(result.images_per_s.to_bits(), Ordering::SeqCst);
            // The local model moved (local SGD) or will be replaced: the next round pulls again.
            weights_version = u64::MAX;
            lap(&mut summary.time.train_s);

            shared.state.store(state_code(v1::WorkerState::Pushing), Ordering::SeqCst);
            let header = v1::UpdateHeader {
                worker_id: session.worker.clone(),
                round: info.round,
                weights_version: info.weights_version,
                samples: result.samples,
                kind: match work.kind {
                    PushKind::Gradients => v1::UpdateKind::Gradients,
                    PushKind::WeightDelta => v1::UpdateKind::WeightDelta,
                } as i32,
                losses: Some(v1::TrainLosses {
                    total: result.losses.total,
                    seg: result.losses.seg,
                    depth: result.losses.depth,
                    distill_seg: result.losses.distill_seg,
                    distill_depth: result.losses.distill_depth,
                }),
                encoding: v1::PayloadEncoding::Safetensors as i32,
            };
            let messages = chunk_messages::<UpdateChunk>(header, Bytes::from(result.payload), session.chunk_bytes);
            let pushed = client.push_update(tokio_stream::iter(messages)).await;
            lap(&mut summary.time.push_s);
            match pushed {
                Ok(r) => {
                    let r = r.into_inner();
                    if r.accepted {
                        summary.rounds += 1;
                        summary.images += result.samples;
                    } else {
                        tracing::info!(round = info.round, reason = %r.reason, "update not merged");
                    }
                }
                Err(s) if s.code() == Code::NotFound => continue 'session,
                Err(s) if transient(&s) => {
                    backoff.wait(&opts, &s).await?;
                }
                Err(s) => return Err(WorkerError::Refused { url: opts.coordinator.clone(), status: s.to_string() }),
            }
            last_round = info.round;
        }
    }
    if let Some(t) = heartbeat_task.take() {
        t.abort();
    }
    Ok(summary)
}

async fn pull(client: &mut Client, request: v1::PullSnapshotRequest) -> Result<Bytes, Status> {
    let mut stream = client.pull_snapshot(request).await?.into_inner();
    let (_, bytes) = receive(&mut stream, 1 << 40).await.map_err(Status::from)?;
    Ok(bytes)
}

async fn heartbeats(mut client: Client, shared: Arc<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let worker_id = shared.worker.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let request = v1::HeartbeatRequest {
            worker_id,
            round: shared.round.load(Ordering::SeqCst),
            images_per_s: f64::from_bits(shared.images_per_s.load(Ordering::SeqCst)),
            state: i32::from(shared.state.load(Ordering::SeqCst)),
        };
        if let Ok(r) = client.heartbeat(request).await {
            let r = r.into_inner();
            if r.rejoin_required {
                shared.rejoin.store(true, Ordering::SeqCst);
            }
            shared.coordinator_round.store(r.current_round, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod phase_time_tests {
    use super::PhaseTimes;

    #[test]
    fn phase_times_name_the_all_reduce_time_only_on_the_nccl_plane() {
        let grpc = PhaseTimes { wait_s: 1.0, pull_s: 2.0, train_s: 3.0, push_s: 4.0, collective_s: 0.0 };
        assert_eq!(grpc.to_string(), "waiting 1.0 s, pulling 2.0 s, training 3.0 s, pushing 4.0 s");
        let nccl = PhaseTimes { collective_s: 0.5, ..grpc };
        assert_eq!(nccl.to_string(), "waiting 1.0 s, pulling 2.0 s, training 3.0 s, pushing 4.0 s, all-reducing 0.5 s");
    }
}
