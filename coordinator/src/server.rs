//! Starting a coordinator: prepare the run directory and the model, start the
//! round loop on its own thread, serve the gRPC services (plus health,
//! reflection and optionally Prometheus metrics), and stop cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dmtl_collective::PlaneError;
use dmtl_core::config::{Config, DataPlane};
use dmtl_core::data::dataset::{index_split, load_split};
use dmtl_core::data::Split;
use dmtl_core::method::Schedule;
use dmtl_core::run_dir::RunDir;
use dmtl_core::tensor_io::TensorIoError;
use dmtl_core::train::{open_run, RunData, TrainError};
use dmtl_proto::v1::coordinator_server::CoordinatorServer;
use dmtl_proto::v1::monitor_server::MonitorServer;
use dmtl_proto::MAX_MESSAGE_BYTES;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::engine::{Engine, EngineEnd, EngineError};

use crate::hub::{EventKind, Hub, RunFacts, RunState, RunView};
use crate::merger::Merger;
use crate::nccl_plane::NcclPlane;
use crate::scheduler::{Scheduler, SchedulerConfig, SchedulerError, TaskPools};
use crate::service::auth::TokenCheck;
use crate::service::coordinator::CoordinatorService;
use crate::service::monitor::MonitorService;

/// TLS files of the server (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What `dmtl coordinator` is asked to do.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    pub config: Config,
    pub run_dir: PathBuf,
    pub resume: bool,
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub token: String,
    pub tls: Option<TlsFiles>,
    /// How long to keep serving after the run ends, so that workers learn it
    /// is over and leave (the server stops earlier once they all have).
    pub linger: Duration,
}

/// Why a coordinator did not start, or how its run ended in an error.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// Preparing the run: device, data, run directory, resume.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The round loop ended in an error.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `data_plane = "nccl"` cannot run in this build or on this machine.
    #[error(transparent)]
    Plane(#[from] PlaneError),
    /// The scheduler refused the run's pools or settings.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The first weight snapshot could not be encoded.
    #[error(transparent)]
    Encode(#[from] TensorIoError),
    /// The preparing task did not finish (it panicked).
    #[error("preparing the run: {0}")]
    Prepare(#[source] tokio::task::JoinError),
    /// An address to listen on (`--listen`, `--metrics-listen`).
    #[error("{flag} {addr}: {source}")]
    Listen {
        flag: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The listener's own address.
    #[error(transparent)]
    LocalAddr(std::io::Error),
    /// The round loop's thread did not start.
    #[error("spawning the round loop: {0}")]
    Spawn(#[source] std::io::Error),
    /// The reflection service did not build.
    #[error("reflection: {0}")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// A TLS file (`--tls-cert`, `--tls-key`) could not be read.
    #[error("{flag} {}: {source}", path.display())]
    TlsFile {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TLS identity was refused.
    #[error("--tls-cert/--tls-key: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// The round loop's thread panicked.
    #[error("the round loop panicked")]
    Panicked,
}

/// A running coordinator.
pub struct Coordinator {
    /// The address the gRPC server listens on.
    pub addr: SocketAddr,
    /// The Prometheus endpoint's address, when serving one.
    pub metrics_addr: Option<SocketAddr>,
    pub hub: Arc<Hub>,
    pub message: String,
    done: oneshot::Receiver<Result<EngineEnd, EngineError>>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    shutdown: Option<oneshot::Sender<()>>,
    metrics: Option<tokio::task::JoinHandle<()>>,
    linger: Duration,
}

/// Everything prepared off the async runtime before serving.
struct Prepared {
    config: Config,
    merger: Merger,
    val: Vec<dmtl_core::data::Sample>,
    dir: RunDir,
    facts: RunFacts,
    scheduler: Scheduler,
    run: RunView,
    message: String,
    nccl: Option<NcclPlane>,
}

fn prepare(opts: &CoordinatorOptions) -> Result<Prepared, CoordinatorError> {
    let config = &opts.config;
    let nccl = match config.distributed.data_plane {
        DataPlane::Grpc => None,
        DataPlane::Nccl => {
            // Says why this build or machine cannot run the plane (no `nccl` feature, no GPU, no libnccl).
            let backend = dmtl_collective::Backend::select(None)?;
            Some(backend)
        }
    };
    let device = dmtl_core::device::open_device(&config.train.device, config.train.cudnn_benchmark)
        .map_err(TrainError::Device)?;
    dmtl_core::device::set_threads(config.train.threads);
    // The coordinator needs the training ids (for the split) and the val images (to evaluate).
    let index = index_split(&config.data, Split::Train).map_err(TrainError::from)?;
    let ids: Vec<String> = index.entries.iter().map(|e| e.id.clone()).collect();
    let split = RunData::split(config, &ids)?;
    let val = load_split(&config.data, Split::Val).map_err(TrainError::from)?;
    let dir = RunDir::prepare(&opts.run_dir, config, opts.resume).map_err(TrainError::from)?;
    let run_id = dir
        .path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "run".into());

    let mut merger = Merger::new(config, device);
    let mut message = format!(
        "{} method, {} train images ({} seg / {} depth), {} val images, {} parameters on {:?} ({})",
        config.method.kind,
        ids.len(),
        split.seg.len(),
        split.depth.len(),
        val.len(),
        merger.state().model.num_parameters(),
        device,
        merger.state().model.compute()
    );
    if let Some((path, ckpt)) = open_run(config, &dir, &split, opts.resume, &mut message)? {
        merger = Merger::resume(config, device, &ckpt, &path)?;
    }

    let pools = TaskPools::from_plans(&split, &merger.schedule().phase_plans())?;
    let d = &config.distributed;
    let scheduler = Scheduler::new(
        SchedulerConfig {
            min_workers_per_task: d.min_workers_per_task,
            round_deadline_ms: (d.round_timeout_s * 1000.0).round() as u64,
        },
        pools,
    )?;
    let weights_len = merger.weights()?.len() as u64;
    let facts = RunFacts {
        run_id,
        method: config.method.kind.to_string(),
        config_toml: config.to_toml(),
        dataset_size: ids.len() as u64,
        local_steps: d.local_steps as u32,
        chunk_bytes: d.chunk_bytes as u32,
        nccl: nccl.is_some(),
        heartbeat_interval_ms: d.heartbeat_interval_ms as u32,
        heartbeat_timeout_ms: d.heartbeat_timeout_ms as u32,
        // Gradients (or deltas) plus statistics are never larger than the weights; room for the header.
        // nccl plane: rank 0's training state (weights, two optimizer moments, teacher).
        max_update_bytes: weights_len * if nccl.is_some() { 5 } else { 2 } + (1 << 20),
        spec: Arc::new(dmtl_core::train::wire::UpdateSpec::of(&merger.state().model)),
    };
    let step = merger.step() as u64;
    let run = RunView {
        state: RunState::WaitingForWorkers,
        round: step,
        step,
        total_steps: config.train.steps as u64,
        phase: 0,
        latest_losses: merger.state().state.last_losses.clone(),
        latest_metrics: None,
        metrics_step: 0,
        last_checkpoint: None,
        error: None,
        rounds_merged: 0,
        timing: Default::default(),
        images_seen: merger.state().state.images_seen,
        nccl_generation: 0,
    };
    let nccl = nccl.map(|backend| NcclPlane::new(backend, merger.state().state.clone()));
    Ok(Prepared { config: config.clone(), merger, val, dir, facts, scheduler, run, message, nccl })
}

/// Rounds of the whole run: one per step with `local_steps = 1`, fewer with local SGD.
pub fn total_rounds(config: &Config) -> u64 {
    Schedule::of(config).rounds(config.distributed.local_steps, config.train.steps)
}

impl Coordinator {
    /// Prepares the run (data, run directory, resume) off the runtime, starts
    /// the round loop on its own thread and starts serving.
    pub async fn start(opts: CoordinatorOptions) -> Result<Coordinator, CoordinatorError> {
        let prepared = {
            let opts = opts.clone();
            tokio::task::spawn_blocking(move || prepare(&opts)).await.map_err(CoordinatorError::Prepare)??
        };
        let Prepared { config, merger, val, dir, facts, scheduler, run, message, nccl } = prepared;
        let (engine_tx, engine_rx) = std::sync::mpsc::channel();
        let hub = Hub::new(facts, scheduler, run, engine_tx);

        // Listen before the round loop starts, so that the address is known.
        let listener = tokio::net::TcpListener::bind(opts.listen).await.map_err(|source| CoordinatorError::Listen {
            flag: "--listen",
            addr: opts.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(CoordinatorError::LocalAddr)?;
        let metrics_listener = match opts.metrics_listen {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await.map_err(|source| CoordinatorError::Listen {
                flag: "--metrics-listen",
                addr: a,
                source,
            })?),
            None => None,
        };

        let (done_tx, done) = oneshot::channel();
        let engine = Engine {
            hub: hub.clone(),
            rx: engine_rx,
            config: config.clone(),
            merger,
            val,
            dir,
            heartbeat_timeout_ms: config.distributed.heartbeat_timeout_ms,
            nccl,
        };
        let engine_hub = hub.clone();
        std::thread::Builder::new()
            .name("dmtl-rounds".into())
            .spawn(move || {
                let result = engine.run();
                finish(&engine_hub, &result);
                let _ = done_tx.send(result);
            })
            .map_err(CoordinatorError::Spawn)?;

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter.set_serving::<CoordinatorServer<CoordinatorService>>().await;
        health_reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
        // Reflection in both versions: grpcurl ≥ 1.9 asks v1, older clients v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(dmtl_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1().map_err(CoordinatorError::Reflection)?;
        let reflection_v1alpha = reflection().build_v1alpha().map_err(CoordinatorError::Reflection)?;
        let auth = TokenCheck::new(&opts.token);
        let coordinator = CoordinatorServer::new(CoordinatorService { hub: hub.clone() })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let monitor = MonitorServer::new(MonitorService { hub: hub.clone(), total_rounds: total_rounds(&config) })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);

        let mut builder = Server::builder()
            .initial_stream_window_size(dmtl_proto::STREAM_WINDOW_BYTES)
            .initial_connection_window_size(dmtl_proto::CONNECTION_WINDOW_BYTES)
            .max_frame_size(dmtl_proto::MAX_FRAME_BYTES)
            .http2_keepalive_interval(Some(Duration::from_secs(20)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)));
        if let Some(tls) = &opts.tls {
            let read = |path: &PathBuf, flag: &'static str| {
                std::fs::read(path).map_err(|source| CoordinatorError::TlsFile { flag, path: path.clone(), source })
            };
            let identity = Identity::from_pem(read(&tls.cert, "--tls-cert")?, read(&tls.key, "--tls-key")?);
            builder = builder.tls_config(ServerTlsConfig::new().identity(identity)).map_err(CoordinatorError::Tls)?;
        }
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let router = builder
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(InterceptedService::new(coordinator, auth.clone()))
            .add_service(InterceptedService::new(monitor, auth));
        // tonic's `tcp_nodelay` is ignored for a supplied listener: set it on
        // each accepted connection. With Nagle's algorithm on, the small
        // replies (a push verdict, a round offer) waited for the client's
        // delayed ACK: ~40 ms per round on Linux (BENCHMARKS.md).
        let incoming = tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |s| {
            s.and_then(|s| s.set_nodelay(true).map(|()| s))
        });
        let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = shutdown_rx.await;
        }));
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let metrics = metrics_listener.map(|l| tokio::spawn(crate::prometheus::serve(l, hub.clone())));
        tracing::info!(%addr, "coordinator listening");
        Ok(Coordinator {
            addr,
            metrics_addr,
            hub,
            message,
            done,
            server,
            shutdown: Some(shutdown_tx),
            metrics,
            linger: opts.linger,
        })
    }

    /// Asks the run to stop with a checkpoint (Ctrl-C, SIGTERM).
    pub fn stop(&self) {
        self.hub.lock().run.state = RunState::Stopping;
        self.hub.request_stop();
    }

    /// Waits for the run to end, lets the workers learn of it, and stops serving.
    pub async fn wait(mut self) -> Result<EngineEnd, CoordinatorError> {
        let result = (&mut self.done).await.map_err(|_| CoordinatorError::Panicked)?;
        // Let workers (and watchers) see the end: until every worker left, or the linger time.
        let until = tokio::time::Instant::now() + self.linger;
        while tokio::time::Instant::now() < until {
            let busy = self.hub.lock().scheduler.membership().workers().any(|w| w.is_live());
            if !busy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        if let Some(m) = self.metrics.take() {
            m.abort();
        }
        Ok(result?)
    }
}

/// Records the end of the run in the hub: state, event, waking waiting workers.
fn finish(hub: &Hub, result: &Result<EngineEnd, EngineError>) {
    let mut st = hub.lock();
    let (state, metrics, error) = match result {
        Ok(EngineEnd::Finished(r)) => (RunState::Finished, Some(r.metrics()), None),
        Ok(EngineEnd::Stopped { .. }) => (RunState::Stopping, None, None),
        Err(e) => (RunState::Failed, None, Some(e.to_string())),
    };
    st.run.state = state;
    st.run.error = error.clone();
    let rounds = st.run.rounds_merged;
    hub.emit(&mut st, EventKind::RunFinished { state, metrics, rounds, error });
    drop(st);
    hub.notify_round();
}
