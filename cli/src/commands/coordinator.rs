//! `dmtl coordinator`: serve a run to workers; evaluate, checkpoint, monitor.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use dmtl_coordinator::{Coordinator, CoordinatorOptions, TlsFiles};

use crate::config_args::ConfigArgs;
use crate::remote::{runtime, token};
use crate::stop::stop_run_on_shutdown;
use crate::table::print_end;

#[derive(clap::Args)]
#[command(mut_arg("config", |a| a.help("The run's config (TOML); workers receive it at registration")))]
pub struct Args {
    #[command(flatten)]
    run: ConfigArgs,
    /// gRPC address to listen on.
    #[arg(long, default_value = "0.0.0.0:50051")]
    listen: SocketAddr,
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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.run.load()?;
    let run_dir = args.run.run_dir.clone();
    let token = token(args.token_file.as_ref())?;
    let tls = args.tls_cert.clone().zip(args.tls_key.clone()).map(|(cert, key)| TlsFiles { cert, key });
    let opts = CoordinatorOptions {
        config,
        run_dir: run_dir.clone(),
        resume: args.run.resume,
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
        stop_run_on_shutdown(coordinator.hub.clone(), "signal");
        coordinator.wait().await
    });
    print_end(end.with_context(|| format!("coordinating the run in {}", run_dir.display()))?, &run_dir)
}
