//! `dmtl coordinator`: serve a run to workers; evaluate, checkpoint, monitor.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use dmtl_coordinator::engine::EngineEnd;
use dmtl_coordinator::{Coordinator, CoordinatorOptions, TlsFiles};
use dmtl_core::config::Config;

use super::train::toml_string;
use crate::remote::{runtime, token};
use crate::table::print_final;

#[derive(clap::Args)]
pub struct Args {
    /// The run's config (TOML); workers receive it at registration.
    #[arg(long)]
    config: PathBuf,
    /// gRPC address to listen on.
    #[arg(long, default_value = "0.0.0.0:50051")]
    listen: SocketAddr,
    /// Where config, split, metrics, checkpoints and final.json go.
    #[arg(long, default_value = "runs/latest")]
    run_dir: PathBuf,
    /// Continue from the newest valid checkpoint in the run directory.
    #[arg(long)]
    resume: bool,
    /// Serve Prometheus text metrics over HTTP at this address (`/metrics`).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// File holding the bearer token every RPC must carry (else DMTL_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); serves TLS with --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Dataset root in the Cityscapes layout (overrides `data.root`).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Override a config value, e.g. `--set train.steps=200` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn load_config(
    config: &std::path::Path,
    data_root: Option<&PathBuf>,
    overrides: &[String],
) -> anyhow::Result<Config> {
    let mut overrides = overrides.to_vec();
    if let Some(root) = data_root {
        overrides.push(format!("data.root={}", toml_string(&root.display().to_string())));
    }
    Ok(Config::load(config, &overrides)?)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = load_config(&args.config, args.data_root.as_ref(), &args.overrides)?;
    let token = token(args.token_file.as_ref())?;
    let tls = args.tls_cert.clone().zip(args.tls_key.clone()).map(|(cert, key)| TlsFiles { cert, key });
    let opts = CoordinatorOptions {
        config,
        run_dir: args.run_dir.clone(),
        resume: args.resume,
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        token,
        tls,
        linger: Duration::from_secs(10),
    };
    let rt = runtime()?;
    let end = rt.block_on(async move {
        let coordinator = Coordinator::start(opts).await?;
        eprintln!("{}", coordinator.message);
        eprintln!("dmtl coordinator listening on {}", coordinator.addr);
        if let Some(m) = coordinator.metrics_addr {
            eprintln!("Prometheus metrics on http://{m}/metrics");
        }
        let hub = coordinator.hub.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            eprintln!("\nstopping: checkpointing and closing the run (signal again to quit at once)");
            hub.lock().run.state = dmtl_coordinator::hub::RunState::Stopping;
            hub.request_stop();
            shutdown_signal().await;
            std::process::exit(130);
        });
        coordinator.wait().await
    });
    match end.with_context(|| format!("coordinating the run in {}", args.run_dir.display()))? {
        EngineEnd::Finished(report) => {
            print_final(&report, &args.run_dir);
            Ok(())
        }
        EngineEnd::Stopped { step, checkpoint } => {
            anyhow::bail!("stopped at step {step}; checkpoint {} (continue with --resume)", checkpoint.display())
        }
    }
}

/// Ctrl-C or SIGTERM (what Kubernetes and Slurm send).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
