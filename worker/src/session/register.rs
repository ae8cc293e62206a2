//! Registration: offer the worker's task (naming the worker it was before a
//! coordinator restart), and set up what the assignment asks for: the nccl
//! backend on that data plane, and a training thread for the run's config.

use std::time::Duration;

use dmtl_collective::Backend;
use dmtl_proto::connect::Client;
use dmtl_proto::v1;
use tonic::Code;

use super::retry::{transient, Backoff};
use super::WorkerOptions;
use crate::trainer::TrainerHandle;
use crate::WorkerError;

/// What registration established.
pub(super) struct Session {
    pub worker: String,
    pub config_toml: String,
    /// Training images of the coordinator's dataset (checked against this machine's).
    pub dataset_size: u64,
    pub chunk_bytes: usize,
    pub heartbeat: Duration,
    /// The nccl plane's backend; `None` on the grpc plane.
    pub backend: Option<Backend>,
}

/// How a registration attempt ended.
pub(super) enum Registration {
    Registered(Session),
    /// The coordinator was unreachable; the backoff was waited out.
    Retry,
    /// The run is finished: nothing to register for.
    Finished,
}

/// Registers (again, as `previous` when that is not empty).
pub(super) async fn register(
    client: &mut Client,
    opts: &WorkerOptions,
    previous: &str,
    backoff: &mut Backoff,
) -> Result<Registration, WorkerError> {
    let request = v1::RegisterRequest {
        task: opts.task.to_proto() as i32,
        device: opts.device.clone().unwrap_or_default(),
        host: opts.host.clone(),
        threads: opts.threads.unwrap_or(0) as u32,
        version: env!("CARGO_PKG_VERSION").to_string(),
        previous_worker_id: previous.to_string(),
    };
    let reply = match client.register(request).await {
        Ok(r) => r.into_inner(),
        Err(s) if transient(&s) => {
            backoff.wait(opts, &s).await?;
            return Ok(Registration::Retry);
        }
        Err(s) if s.code() == Code::FailedPrecondition && s.message().contains("finished") => {
            tracing::info!("the run is finished");
            return Ok(Registration::Finished);
        }
        Err(s) => return Err(WorkerError::Refused { url: opts.coordinator.clone(), status: s.message().to_string() }),
    };
    backoff.reset();
    let assignment = reply.assignment.unwrap_or_default();
    let plane = assignment.data_plane.unwrap_or_default();
    let backend = if plane.kind == v1::DataPlaneKind::Nccl as i32 {
        Some(select_backend(opts, &assignment.config_toml).await?)
    } else {
        None
    };
    tracing::info!(worker = %reply.worker_id, run = %assignment.run_id, "registered");
    Ok(Registration::Registered(Session {
        worker: reply.worker_id,
        config_toml: assignment.config_toml,
        dataset_size: assignment.dataset_size,
        chunk_bytes: (plane.chunk_bytes as usize).clamp(1024, dmtl_proto::MAX_CHUNK_BYTES),
        heartbeat: Duration::from_millis(u64::from(reply.heartbeat_interval_ms.max(10))),
        backend,
    }))
}

/// The nccl backend for the device this worker trains the run's config on.
async fn select_backend(opts: &WorkerOptions, config_toml: &str) -> Result<Backend, WorkerError> {
    let device = opts.local_config(config_toml)?.train.device;
    let selected = tokio::task::spawn_blocking(move || Backend::select(Some(&device)))
        .await
        .map_err(|source| WorkerError::Blocking { what: "selecting the nccl backend", source })?;
    Ok(selected?)
}

/// The training thread for `session`: the one in `kept` when the run's
/// config is unchanged (a coordinator restart), else a new one (the old one
/// is dropped first, freeing its model and images).
pub(super) async fn training_thread<'a>(
    kept: &'a mut Option<(String, TrainerHandle)>,
    opts: &WorkerOptions,
    session: &Session,
) -> Result<&'a TrainerHandle, WorkerError> {
    if kept.as_ref().map(|(toml, _)| toml != &session.config_toml).unwrap_or(true) {
        drop(kept.take());
        let config = opts.local_config(&session.config_toml)?;
        let size = session.dataset_size;
        let handle = tokio::task::spawn_blocking(move || TrainerHandle::spawn(config, size))
            .await
            .map_err(|source| WorkerError::Blocking { what: "starting the training thread", source })??;
        *kept = Some((session.config_toml.clone(), handle));
    }
    Ok(&kept.as_ref().expect("set above").1)
}
