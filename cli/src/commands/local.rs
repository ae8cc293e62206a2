//! `dmtl local`: the whole distributed engine on one machine — a coordinator
//! in this process on loopback (free port, generated token) and worker
//! processes — with one progress bar, and the same run directory as `dmtl train`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use dmtl_coordinator::engine::{tasks_of, EngineEnd};
use dmtl_coordinator::hub::EventKind;
use dmtl_coordinator::scheduler::Task;
use dmtl_coordinator::{Coordinator, CoordinatorOptions};
use indicatif::{ProgressBar, ProgressStyle};

use super::coordinator::{load_config, shutdown_signal};
use crate::remote::runtime;
use crate::table::print_final;

#[derive(clap::Args)]
pub struct Args {
    /// The run's config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Segmentation workers (methods with disjoint halves).
    #[arg(long, default_value_t = 1)]
    seg_workers: usize,
    /// Depth workers (methods with disjoint halves).
    #[arg(long, default_value_t = 1)]
    depth_workers: usize,
    /// Both-label workers (methods `full` and `half`).
    #[arg(long, default_value_t = 1)]
    both_workers: usize,
    /// Intra-op threads per worker (default: the config's `train.threads`
    /// shared among the workers that train at the same time).
    #[arg(long)]
    threads: Option<usize>,
    /// Where config, split, metrics, checkpoints and final.json go (worker logs in `workers/`).
    #[arg(long, default_value = "runs/latest")]
    run_dir: PathBuf,
    /// Dataset root in the Cityscapes layout (overrides `data.root`).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Continue from the newest valid checkpoint in the run directory.
    #[arg(long)]
    resume: bool,
    /// Override a config value, e.g. `--set train.steps=200` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// What `dmtl local` (and `dmtl experiment`) runs.
pub struct LocalRun {
    pub config: dmtl_core::config::Config,
    pub run_dir: PathBuf,
    pub resume: bool,
    pub seg_workers: usize,
    pub depth_workers: usize,
    pub both_workers: usize,
    pub threads: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = load_config(&args.config, args.data_root.as_ref(), &args.overrides)?;
    let spec = LocalRun {
        config,
        run_dir: args.run_dir.clone(),
        resume: args.resume,
        seg_workers: args.seg_workers,
        depth_workers: args.depth_workers,
        both_workers: args.both_workers,
        threads: args.threads,
    };
    match run_local(&spec).with_context(|| format!("local run in {}", args.run_dir.display()))? {
        EngineEnd::Finished(report) => {
            print_final(&report, &args.run_dir);
            Ok(())
        }
        EngineEnd::Stopped { step, checkpoint } => {
            bail!("stopped at step {step}; checkpoint {} (continue with --resume)", checkpoint.display())
        }
    }
}

/// Runs a coordinator in this process and worker processes on loopback until the run ends.
pub fn run_local(spec: &LocalRun) -> anyhow::Result<EngineEnd> {
    let config = spec.config.clone();
    let tasks = tasks_of(&config);
    let count = |t: Task| match t {
        Task::Seg => spec.seg_workers,
        Task::Depth => spec.depth_workers,
        Task::Both => spec.both_workers,
    };
    for t in &tasks {
        if count(*t) == 0 {
            bail!("method `{}` needs at least one {t} worker (--{t}-workers)", config.method.kind);
        }
    }
    // Workers of tasks that train at the same step share the cores.
    let concurrent = if config.method.kind.to_string().starts_with("masked") {
        tasks.iter().map(|t| count(*t)).sum::<usize>()
    } else {
        tasks.iter().map(|t| count(*t)).max().unwrap_or(1)
    };
    let threads = spec.threads.unwrap_or_else(|| (config.train.threads.max(1) / concurrent.max(1)).max(1));
    let token = random_token();
    let opts = CoordinatorOptions {
        config: config.clone(),
        run_dir: spec.run_dir.clone(),
        resume: spec.resume,
        listen: "127.0.0.1:0".parse().expect("a valid address"),
        metrics_listen: None,
        token: token.clone(),
        tls: None,
        linger: Duration::from_secs(10),
    };
    let logs = spec.run_dir.join("workers");
    let rt = runtime()?;
    let end = rt.block_on(async move {
        let coordinator = Coordinator::start(opts).await?;
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let url = format!("http://{}", coordinator.addr);
        let exe = std::env::current_exe().context("locating the dmtl binary")?;
        // A rebuilt binary replaced the running one: start the workers from the same path.
        let exe = match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
            Some(path) => PathBuf::from(path),
            None => exe,
        };
        let mut children: Vec<(String, Child)> = Vec::new();
        let tuned = crate::runtime::tuned_variables();
        for task in &tasks {
            for i in 0..count(*task) {
                let name = format!("{task}-{i}");
                let log = std::fs::File::create(logs.join(format!("{name}.log")))
                    .with_context(|| format!("creating {}", logs.join(format!("{name}.log")).display()))?;
                let mut command = Command::new(&exe);
                // Workers tune themselves (spinning OpenMP threads), not as this process.
                command.env_remove(crate::runtime::MARK);
                for var in &tuned {
                    command.env_remove(var);
                }
                let child = command
                    .args(["worker", "--coordinator", &url, "--task", task.as_str(), "--threads"])
                    .arg(threads.to_string())
                    // Orphaned workers (this process killed) give up soon instead of retrying for long.
                    .args(["--give-up-after-s", "30"])
                    .env("DMTL_TOKEN", &token)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .with_context(|| format!("starting worker {name}"))?;
                children.push((name, child));
            }
        }
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(config.train.steps as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise} ETA {eta_precise}] {msg}")
                    .expect("valid template"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        let header = format!(
            "{} · coordinator {url} · {} worker process(es), {threads} thread(s) each · logs in {}",
            coordinator.message,
            children.len(),
            logs.display()
        );
        if bar.is_hidden() {
            tracing::info!("{header}");
        } else {
            bar.println(header);
        }
        let mut events = coordinator.hub.subscribe();
        let hub = coordinator.hub.clone();
        let progress = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let mut last_log = std::time::Instant::now();
                while let Ok(e) = events.recv().await {
                    match e.kind {
                        EventKind::RoundMerged { step, losses, .. } => {
                            bar.set_position(step);
                            let ips = hub.lock().run.images_seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
                            bar.set_message(format!("loss {:.4} · {ips:.0} img/s", losses.total));
                            if bar.is_hidden() && last_log.elapsed() > Duration::from_secs(10) {
                                last_log = std::time::Instant::now();
                                tracing::info!(step, loss = format!("{:.4}", losses.total), "training");
                            }
                        }
                        EventKind::Evaluated { step, metrics, .. } => {
                            let line = format!(
                                "step {step}: mIoU {:.2} % · pixel acc {:.2} % · abs err {:.3} · rel err {:.3} · δ<1.25 {:.2} %",
                                metrics.seg.miou * 100.0,
                                metrics.seg.pixel_acc * 100.0,
                                metrics.depth.abs_err,
                                metrics.depth.rel_err,
                                metrics.depth.delta1 * 100.0
                            );
                            if bar.is_hidden() { tracing::info!("{line}") } else { bar.println(line) }
                        }
                        EventKind::WorkerLost { worker, reason, .. } => {
                            let line = format!("worker {worker} lost: {reason}");
                            if bar.is_hidden() { tracing::warn!("{line}") } else { bar.println(line) }
                        }
                        EventKind::RunFinished { .. } => break,
                        _ => {}
                    }
                }
            })
        };
        let hub = coordinator.hub.clone();
        let stopper = tokio::spawn(async move {
            shutdown_signal().await;
            eprintln!("\nstopping: checkpointing and closing the run (Ctrl-C again to quit at once)");
            hub.lock().run.state = dmtl_coordinator::hub::RunState::Stopping;
            hub.request_stop();
            shutdown_signal().await;
            std::process::exit(130);
        });
        // Watch the worker processes: the run goes on while some are alive.
        let hub = coordinator.hub.clone();
        let watcher = tokio::spawn(async move {
            let mut children = children;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut alive = 0;
                for (name, child) in children.iter_mut() {
                    match child.try_wait() {
                        Ok(None) => alive += 1,
                        Ok(Some(status)) if !status.success() => {
                            tracing::warn!(worker = %name, %status, "worker process exited");
                        }
                        _ => {}
                    }
                }
                children.retain_mut(|(_, c)| matches!(c.try_wait(), Ok(None)));
                let over = matches!(
                    hub.lock().run.state,
                    dmtl_coordinator::hub::RunState::Finished | dmtl_coordinator::hub::RunState::Failed
                );
                if alive == 0 {
                    if !over {
                        tracing::error!("every worker process exited; stopping the run");
                        hub.request_stop();
                    }
                    return;
                }
                if over || hub.lock().run.state == dmtl_coordinator::hub::RunState::Stopping {
                    // Give them a moment to leave on their own, then stop them.
                    for _ in 0..50 {
                        if children.iter_mut().all(|(_, c)| !matches!(c.try_wait(), Ok(None))) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    for (_, c) in children.iter_mut() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    return;
                }
            }
        });
        let end = coordinator.wait().await;
        let _ = progress.await;
        stopper.abort();
        let _ = watcher.await;
        bar.finish_and_clear();
        Ok::<_, anyhow::Error>(end?)
    });
    end
}
