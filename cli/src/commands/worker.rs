//! `dmtl worker`: train rounds for a coordinator on one device.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use dmtl_worker::{WorkerOptions, WorkerTask};

use crate::remote::{runtime, token};
use crate::stop::on_shutdown;

#[derive(clap::Args)]
pub struct Args {
    /// The coordinator's URL, e.g. http://coordinator:50051 (https:// with --tls-ca).
    #[arg(long)]
    coordinator: String,
    /// The labels this worker trains on: seg, depth, or both (methods full and half).
    #[arg(long)]
    task: WorkerTask,
    /// cpu or cuda:N (overrides the run's `train.device`).
    #[arg(long)]
    device: Option<String>,
    /// Dataset root on this machine (overrides the run's `data.root`).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Intra-op threads (overrides the run's `train.threads`).
    #[arg(long)]
    threads: Option<usize>,
    /// File holding the run's bearer token (else DMTL_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// CA certificate (PEM) of the coordinator's TLS certificate.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Give up after the coordinator was unreachable this long (seconds).
    #[arg(long, default_value_t = 600)]
    give_up_after_s: u64,
}

pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = WorkerOptions {
        coordinator: args.coordinator.clone(),
        task: args.task,
        device: args.device,
        data_root: args.data_root,
        threads: args.threads,
        token: token(args.token_file.as_ref())?,
        tls_ca: args.tls_ca,
        host: host_name(),
        give_up_after: Duration::from_secs(args.give_up_after_s),
    };
    let rt = runtime()?;
    let summary = rt.block_on(async move {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        on_shutdown(move || {
            let _ = stop_tx.send(true);
        });
        dmtl_worker::run(opts, stop).await
    });
    let summary = summary.with_context(|| format!("worker of {}", args.coordinator))?;
    eprintln!("worker done: {} rounds merged, {} images; {}", summary.rounds, summary.images, summary.time);
    Ok(())
}
