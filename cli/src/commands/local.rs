//! `dmtl local`: the whole distributed engine on one machine — a coordinator
//! in this process on loopback (free port, generated token) and worker
//! processes — with one progress bar, and the same run directory as `dmtl train`.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use dmtl_coordinator::engine::EngineEnd;
use dmtl_coordinator::hub::{EventKind, Hub, RunState};
use dmtl_coordinator::scheduler::Task;
use dmtl_coordinator::{Coordinator, CoordinatorOptions};
use indicatif::ProgressBar;
use tokio::task::JoinHandle;

use crate::config_args::ConfigArgs;
use crate::progress::run_bar;
use crate::remote::runtime;
use crate::stop::stop_run_on_shutdown;
use crate::table::{metrics_line, print_end};

#[derive(clap::Args)]
#[command(mut_arg("run_dir", |a| {
    a.help("Where config, split, metrics, checkpoints and final.json go (worker logs in `workers/`)")
}))]
pub struct Args {
    #[command(flatten)]
    run: ConfigArgs,
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

impl LocalRun {
    /// The worker processes to start for `task`.
    fn workers(&self, task: Task) -> usize {
        match task {
            Task::Seg => self.seg_workers,
            Task::Depth => self.depth_workers,
            Task::Both => self.both_workers,
        }
    }

    /// Intra-op threads per worker: `--threads`, else the config's
    /// `train.threads` shared by the workers of tasks that train at the same step.
    fn worker_threads(&self, tasks: &BTreeSet<Task>) -> usize {
        let config = &self.config;
        let concurrent = if config.method.kind.to_string().starts_with("masked") {
            tasks.iter().map(|t| self.workers(*t)).sum::<usize>()
        } else {
            tasks.iter().map(|t| self.workers(*t)).max().unwrap_or(1)
        };
        self.threads.unwrap_or_else(|| (config.train.threads.max(1) / concurrent.max(1)).max(1))
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.run.load()?;
    let run_dir = args.run.run_dir.clone();
    let spec = LocalRun {
        config,
        run_dir: run_dir.clone(),
        resume: args.run.resume,
        seg_workers: args.seg_workers,
        depth_workers: args.depth_workers,
        both_workers: args.both_workers,
        threads: args.threads,
    };
    print_end(run_local(&spec).with_context(|| format!("local run in {}", run_dir.display()))?, &run_dir)
}

/// Runs a coordinator in this process and worker processes on loopback until the run ends.
pub fn run_local(spec: &LocalRun) -> anyhow::Result<EngineEnd> {
    let config = spec.config.clone();
    let tasks = Task::trained_by(&dmtl_core::method::Schedule::of(&config));
    for t in &tasks {
        if spec.workers(*t) == 0 {
            bail!("method `{}` needs at least one {t} worker (--{t}-workers)", config.method.kind);
        }
    }
    let threads = spec.worker_threads(&tasks);
    let workers = Workers { tasks, threads, token: random_token() };
    let opts = CoordinatorOptions {
        config: config.clone(),
        run_dir: spec.run_dir.clone(),
        resume: spec.resume,
        listen: "127.0.0.1:0".parse().expect("a valid address"),
        metrics_listen: None,
        token: workers.token.clone(),
        tls: None,
        linger: Duration::from_secs(10),
    };
    let logs = spec.run_dir.join("workers");
    let rt = runtime()?;
    rt.block_on(async move {
        let coordinator = Coordinator::start(opts).await?;
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let url = format!("http://{}", coordinator.addr);
        let children = workers.spawn(spec, &url, &logs)?;
        let bar =
            if std::io::stderr().is_terminal() { run_bar(config.train.steps as u64) } else { ProgressBar::hidden() };
        let header = format!(
            "{} · coordinator {url} · {} worker process(es), {} thread(s) each · logs in {}",
            coordinator.message,
            children.len(),
            workers.threads,
            logs.display()
        );
        if bar.is_hidden() {
            tracing::info!("{header}");
        } else {
            bar.println(header);
        }
        let progress = follow_events(coordinator.hub.clone(), bar.clone());
        let stopper = stop_run_on_shutdown(coordinator.hub.clone(), "Ctrl-C");
        let watcher = watch_workers(coordinator.hub.clone(), children);
        let end = coordinator.wait().await;
        let _ = progress.await;
        stopper.abort();
        let _ = watcher.await;
        bar.finish_and_clear();
        Ok::<_, anyhow::Error>(end?)
    })
}

/// The worker processes of a local run.
struct Workers {
    tasks: BTreeSet<Task>,
    /// Intra-op threads of each.
    threads: usize,
    /// The run's bearer token (DMTL_TOKEN of every worker).
    token: String,
}

impl Workers {
    /// Starts `dmtl worker` processes for the coordinator at `url`, each logging to `logs/<name>.log`.
    fn spawn(&self, spec: &LocalRun, url: &str, logs: &Path) -> anyhow::Result<Vec<(String, Child)>> {
        let exe = std::env::current_exe().context("locating the dmtl binary")?;
        // A rebuilt binary replaced the running one: start the workers from the same path.
        let exe = match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
            Some(path) => PathBuf::from(path),
            None => exe,
        };
        let mut children: Vec<(String, Child)> = Vec::new();
        let tuned = crate::runtime::tuned_variables();
        for task in &self.tasks {
            for i in 0..spec.workers(*task) {
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
                    .args(["worker", "--coordinator", url, "--task", task.as_str(), "--threads"])
                    .arg(self.threads.to_string())
                    // Orphaned workers (this process killed) give up soon instead of retrying for long.
                    .args(["--give-up-after-s", "30"])
                    .env("DMTL_TOKEN", &self.token)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .with_context(|| format!("starting worker {name}"))?;
                children.push((name, child));
            }
        }
        Ok(children)
    }
}

/// Shows the run's progress on `bar` (or as log lines when it is hidden): the
/// step, loss and images/s; each evaluation; each lost worker.
fn follow_events(hub: Arc<Hub>, bar: ProgressBar) -> JoinHandle<()> {
    let mut events = hub.subscribe();
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
                    let line = metrics_line(step, &metrics);
                    if bar.is_hidden() {
                        tracing::info!("{line}")
                    } else {
                        bar.println(line)
                    }
                }
                EventKind::WorkerLost { worker, reason, .. } => {
                    let line = format!("worker {worker} lost: {reason}");
                    if bar.is_hidden() {
                        tracing::warn!("{line}")
                    } else {
                        bar.println(line)
                    }
                }
                EventKind::RunFinished { .. } => break,
                _ => {}
            }
        }
    })
}

/// Watches the worker processes: the run goes on while some are alive; when
/// the run ends, they get a moment to leave on their own and are then killed.
fn watch_workers(hub: Arc<Hub>, mut children: Vec<(String, Child)>) -> JoinHandle<()> {
    tokio::spawn(async move {
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
            let over = matches!(hub.lock().run.state, RunState::Finished | RunState::Failed);
            if alive == 0 {
                if !over {
                    tracing::error!("every worker process exited; stopping the run");
                    hub.request_stop();
                }
                return;
            }
            if over || hub.lock().run.state == RunState::Stopping {
                stop_workers(&mut children).await;
                return;
            }
        }
    })
}

/// Gives the workers 5 s to leave on their own, then kills them.
async fn stop_workers(children: &mut [(String, Child)]) {
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
}
