//! What the distributed commands share: the token, the async runtime, a
//! Monitor client, and the rendering of a run's status.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use dmtl_proto::connect::{channel, BearerToken};
use dmtl_proto::v1::monitor_client::MonitorClient;
use dmtl_proto::v1::{self, RunStatus};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// `--token-file` and `--tls-ca`, shared by the commands that talk to a coordinator.
#[derive(clap::Args, Clone, Debug)]
pub struct Access {
    /// File holding the run's bearer token (else the DMTL_TOKEN environment variable).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) of the coordinator's TLS certificate (for https:// URLs).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
}

/// The token from `--token-file` (trimmed) or `DMTL_TOKEN`.
pub fn token(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let token = match file {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("--token-file {}", f.display()))?,
        None => std::env::var("DMTL_TOKEN").map_err(|_| {
            anyhow::anyhow!("no token: pass --token-file FILE or set the DMTL_TOKEN environment variable")
        })?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        match file {
            Some(f) => bail!("--token-file {}: the file is empty", f.display()),
            None => bail!("DMTL_TOKEN is empty"),
        }
    }
    Ok(token)
}

/// A multi-threaded runtime for the gRPC side (training runs on its own threads).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("dmtl-rpc")
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub type Monitor = MonitorClient<InterceptedService<Channel, BearerToken>>;

pub fn monitor(url: &str, access: &Access) -> anyhow::Result<Monitor> {
    let token = token(access.token_file.as_ref())?;
    let ch = channel(url, access.tls_ca.as_ref())?;
    Ok(MonitorClient::with_interceptor(ch, BearerToken::new(&token)?))
}

pub fn state_name(state: i32) -> &'static str {
    match v1::RunState::try_from(state) {
        Ok(v1::RunState::WaitingForWorkers) => "waiting-for-workers",
        Ok(v1::RunState::Running) => "running",
        Ok(v1::RunState::Stopping) => "stopping",
        Ok(v1::RunState::Finished) => "finished",
        Ok(v1::RunState::Failed) => "failed",
        _ => "unknown",
    }
}

pub fn task_name(task: i32) -> &'static str {
    match v1::Task::try_from(task) {
        Ok(v1::Task::Seg) => "seg",
        Ok(v1::Task::Depth) => "depth",
        Ok(v1::Task::Both) => "both",
        _ => "?",
    }
}

pub fn worker_state_name(state: i32) -> &'static str {
    match v1::WorkerState::try_from(state) {
        Ok(v1::WorkerState::Starting) => "starting",
        Ok(v1::WorkerState::Waiting) => "waiting",
        Ok(v1::WorkerState::Pulling) => "pulling",
        Ok(v1::WorkerState::Training) => "training",
        Ok(v1::WorkerState::Pushing) => "pushing",
        Ok(v1::WorkerState::Lost) => "lost",
        Ok(v1::WorkerState::Left) => "left",
        _ => "?",
    }
}

pub fn losses_line(l: &v1::TrainLosses) -> String {
    let mut s = format!("loss {:.4}", l.total);
    for (name, v) in
        [("seg", l.seg), ("depth", l.depth), ("distill_seg", l.distill_seg), ("distill_depth", l.distill_depth)]
    {
        if let Some(v) = v {
            s.push_str(&format!(" · {name} {v:.4}"));
        }
    }
    s
}

pub fn metrics_line(m: &v1::ValMetrics) -> String {
    format!(
        "mIoU {:.2} % · pixel acc {:.2} % · abs err {:.3} · rel err {:.3} · δ<1.25 {:.2} %",
        m.miou * 100.0,
        m.pixel_acc * 100.0,
        m.abs_err,
        m.rel_err,
        m.delta1 * 100.0
    )
}

fn ago(unix_ms: u64) -> String {
    let now = dmtl_coordinator::hub::unix_ms();
    format!("{:.1} s ago", now.saturating_sub(unix_ms) as f64 / 1000.0)
}

/// A status as text.
pub fn render_status(s: &RunStatus) -> String {
    let mut out = format!(
        "run {} · {} · {} · step {}/{} · round {}/{} · phase {} · data plane {}\n",
        s.run_id,
        s.method,
        state_name(s.state),
        s.step,
        s.total_rounds.max(s.step),
        s.round,
        s.total_rounds,
        s.phase,
        s.data_plane
    );
    if let Some(l) = &s.latest_losses {
        out.push_str(&format!("train: {}\n", losses_line(l)));
    }
    if let Some(m) = &s.latest_metrics {
        out.push_str(&format!("val (step {}): {}\n", m.step, metrics_line(m)));
    }
    if !s.last_checkpoint.is_empty() {
        out.push_str(&format!("checkpoint: {}\n", s.last_checkpoint));
    }
    if !s.error.is_empty() {
        out.push_str(&format!("error: {}\n", s.error));
    }
    out.push_str(&format!(
        "{:<22} {:<6} {:<9} {:<16} {:<8} {:>6} {:>8} {:>10}  {}\n",
        "worker", "task", "state", "host", "device", "shard", "img/s", "round", "heartbeat"
    ));
    for w in &s.workers {
        out.push_str(&format!(
            "{:<22} {:<6} {:<9} {:<16} {:<8} {:>6} {:>8.1} {:>10}  {}\n",
            w.worker_id,
            task_name(w.task),
            worker_state_name(w.state),
            w.host,
            if w.device.is_empty() { "-" } else { &w.device },
            w.shard_size,
            w.images_per_s,
            w.last_round,
            ago(w.last_heartbeat_unix_ms)
        ));
    }
    out
}

fn losses_json(l: &v1::TrainLosses) -> serde_json::Value {
    serde_json::json!({
        "total": l.total, "seg": l.seg, "depth": l.depth,
        "distill_seg": l.distill_seg, "distill_depth": l.distill_depth,
    })
}

fn metrics_json(m: &v1::ValMetrics) -> serde_json::Value {
    serde_json::json!({
        "step": m.step, "miou": m.miou, "pixel_acc": m.pixel_acc,
        "abs_err": m.abs_err, "rel_err": m.rel_err, "delta1": m.delta1,
    })
}

/// A status as JSON (stable keys, for scripts).
pub fn status_json(s: &RunStatus) -> serde_json::Value {
    serde_json::json!({
        "run_id": s.run_id,
        "method": s.method,
        "state": state_name(s.state),
        "round": s.round,
        "total_rounds": s.total_rounds,
        "step": s.step,
        "phase": s.phase,
        "data_plane": s.data_plane,
        "started_unix_ms": s.started_unix_ms,
        "latest_losses": s.latest_losses.as_ref().map(losses_json),
        "latest_metrics": s.latest_metrics.as_ref().map(metrics_json),
        "last_checkpoint": (!s.last_checkpoint.is_empty()).then_some(&s.last_checkpoint),
        "error": (!s.error.is_empty()).then_some(&s.error),
        "workers": s.workers.iter().map(|w| serde_json::json!({
            "worker_id": w.worker_id,
            "task": task_name(w.task),
            "state": worker_state_name(w.state),
            "host": w.host,
            "device": w.device,
            "last_heartbeat_unix_ms": w.last_heartbeat_unix_ms,
            "images_per_s": w.images_per_s,
            "shard_size": w.shard_size,
            "last_round": w.last_round,
        })).collect::<Vec<_>>(),
    })
}

/// One event as a line of text.
pub fn event_line(e: &v1::Event) -> String {
    use v1::event::Kind;
    match &e.kind {
        Some(Kind::RoundMerged(r)) => format!(
            "round {} merged: {} workers, {} images, {}",
            r.round,
            r.workers,
            r.samples,
            r.losses.as_ref().map(losses_line).unwrap_or_default()
        ),
        Some(Kind::Evaluated(v)) => {
            format!("evaluated after round {}: {}", v.round, v.metrics.as_ref().map(metrics_line).unwrap_or_default())
        }
        Some(Kind::WorkerJoined(w)) => format!("worker {} ({}, {}) joined", w.worker_id, task_name(w.task), w.host),
        Some(Kind::WorkerLost(w)) => format!("worker {} ({}) lost: {}", w.worker_id, task_name(w.task), w.reason),
        Some(Kind::WorkerRejoined(w)) => {
            format!("worker {} ({}) rejoined ({})", w.worker_id, task_name(w.task), w.reason)
        }
        Some(Kind::CheckpointWritten(c)) => format!("checkpoint after round {}: {}", c.round, c.path),
        Some(Kind::RunFinished(f)) => format!(
            "run {} after {} rounds{}{}",
            state_name(f.state),
            f.rounds,
            f.final_metrics.as_ref().map(|m| format!(": {}", metrics_line(m))).unwrap_or_default(),
            if f.error.is_empty() { String::new() } else { format!(" ({})", f.error) }
        ),
        None => "(unknown event)".into(),
    }
}

/// Retries a call to a coordinator that may be starting for up to `patience`.
pub async fn status_with_retry(client: &mut Monitor, patience: Duration) -> anyhow::Result<RunStatus> {
    let until = std::time::Instant::now() + patience;
    loop {
        match client.get_status(v1::GetStatusRequest {}).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) if s.code() == tonic::Code::Unavailable && std::time::Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(s) => bail!("GetStatus: {} ({:?})", s.message(), s.code()),
        }
    }
}
