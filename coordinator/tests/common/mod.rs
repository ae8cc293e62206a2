//! Shared by the coordinator's service-level tests: the synthetic dataset,
//! a small config, an in-process coordinator on 127.0.0.1:0 and in-process
//! workers.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use dmtl_coordinator::{Coordinator, CoordinatorOptions, TlsFiles};
use dmtl_core::config::Config;
use dmtl_core::data::synthetic::{generate, SyntheticSpec};
use dmtl_worker::{WorkerOptions, WorkerTask};

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
    let text = format!(
        r#"version = 1
seed = 9
[data]
root = "{}"
height = 32
width = 64
load_threads = 1
[model]
width = 6
blocks = [1, 1]
[method]
kind = "{method}"
switch_every = 4
[train]
steps = {steps}
batch_size = 4
eval_every = 4
checkpoint_every = 4
threads = 1
[distributed]
heartbeat_interval_ms = 100
heartbeat_timeout_ms = 2000
{extra}
"#,
        dataset().display()
    );
    Config::from_toml_str(&text, Path::new("service-test.toml"), &[]).unwrap()
}

pub async fn start(config: Config, run_dir: &Path) -> Coordinator {
    start_with(config, run_dir, None).await
}

pub async fn start_with(config: Config, run_dir: &Path, tls: Option<TlsFiles>) -> Coordinator {
    Coordinator::start(CoordinatorOptions {
        config,
        run_dir: run_dir.to_path_buf(),
        resume: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        token: TOKEN.into(),
        tls,
        linger: Duration::from_secs(2),
    })
    .await
    .unwrap()
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
