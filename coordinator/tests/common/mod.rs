//! Shared by the coordinator's service-level tests: the synthetic dataset,
//! a small config, an in-process coordinator on 127.0.0.1:0 and in-process
//! workers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use dmtl_coordinator::engine::EngineEnd;
use dmtl_coordinator::{Coordinator, CoordinatorOptions, TlsFiles};
use dmtl_core::checkpoint::Checkpoint;
use dmtl_core::config::tiny::Tiny;
use dmtl_core::config::Config;
use dmtl_core::data::synthetic::{generate, SyntheticSpec};
use dmtl_worker::{WorkerOptions, WorkerSummary, WorkerTask};
use tch::Tensor;

pub const TOKEN: &str = "test-token";

pub fn dataset() -> &'static Path {
    static DATA: OnceLock<tempfile::TempDir> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let spec = SyntheticSpec { out: dir.path().to_path_buf(), train: 24, val: 8, height: 32, width: 64, seed: 6 };
        generate(&spec, &|_| {}).unwrap();
        dir
    })
    .path()
}

pub fn config(method: &str, steps: usize, extra: &str) -> Config {
    let tail = format!("[distributed]\nheartbeat_interval_ms = 100\nheartbeat_timeout_ms = 2000\n{extra}\n");
    Tiny { steps, tail: &tail, ..Tiny::new(method) }.config(dataset(), "service-test.toml").unwrap()
}

pub async fn start(config: Config, run_dir: &Path) -> Coordinator {
    start_with(config, run_dir, None).await
}

pub async fn start_with(config: Config, run_dir: &Path, tls: Option<TlsFiles>) -> Coordinator {
    Coordinator::start(options(config, run_dir, tls)).await.unwrap()
}

/// A coordinator of `config` on 127.0.0.1:0 (and Prometheus), a fresh run.
pub fn options(config: Config, run_dir: &Path, tls: Option<TlsFiles>) -> CoordinatorOptions {
    CoordinatorOptions {
        config,
        run_dir: run_dir.to_path_buf(),
        resume: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        token: TOKEN.into(),
        tls,
        linger: Duration::from_secs(2),
    }
}

pub fn url(c: &Coordinator) -> String {
    format!("http://{}", c.addr)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub fn worker_options(c: &Coordinator, task: WorkerTask) -> WorkerOptions {
    WorkerOptions {
        coordinator: url(c),
        task,
        device: None,
        data_root: None,
        threads: Some(1),
        token: TOKEN.into(),
        tls_ca: None,
        host: "test".into(),
        give_up_after: Duration::from_secs(30),
    }
}

/// The checkpoint of `run` at `step`.
pub fn checkpoint(run: &Path, step: usize) -> Checkpoint {
    Checkpoint::load(&run.join(format!("checkpoints/step-{step:08}.safetensors"))).unwrap()
}

/// The largest absolute difference between two sets of named tensors, and where.
pub fn worst_diff(expected: &BTreeMap<String, Tensor>, got: &BTreeMap<String, Tensor>) -> (f64, String) {
    let mut worst = (0.0f64, String::new());
    for (name, t) in expected {
        let diff = (t - &got[name]).abs().max().double_value(&[]);
        if diff > worst.0 {
            worst = (diff, name.clone());
        }
    }
    worst
}

/// Runs one seg and one depth worker until the coordinator finishes the run;
/// returns their summaries.
pub async fn seg_and_depth_to_the_end(coord: Coordinator) -> Vec<WorkerSummary> {
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let seg = tokio::spawn(dmtl_worker::run(worker_options(&coord, WorkerTask::Seg), stop.clone()));
    let depth = tokio::spawn(dmtl_worker::run(worker_options(&coord, WorkerTask::Depth), stop));
    let end = coord.wait().await.unwrap();
    assert!(matches!(end, EngineEnd::Finished(_)), "{end:?}");
    let mut out = Vec::new();
    for w in [seg, depth] {
        out.push(w.await.unwrap().unwrap());
    }
    out
}
