//! Round latency (last update pushed → merged → next weights published) as the
//! number of workers grows: 1, 2, 4, 8 in-process workers of a tiny model,
//! method `full`, the batch split among them.
//!
//! `cargo run --release -p dmtl-coordinator --example round_latency`

use std::path::Path;
use std::time::Duration;

use dmtl_coordinator::{Coordinator, CoordinatorOptions};
use dmtl_core::config::Config;
use dmtl_core::data::synthetic::{generate, SyntheticSpec};
use dmtl_worker::{WorkerOptions, WorkerTask};

const STEPS: usize = 60;

fn main() {
    let data = tempfile::tempdir().unwrap();
    let spec = SyntheticSpec { out: data.path().to_path_buf(), train: 64, val: 4, height: 32, width: 64, seed: 1 };
    generate(&spec, &|_| {}).unwrap();
    println!("| workers | round (s, mean) | merge: last push → published (ms, mean) | max (ms) | model |");
    println!("|---|---|---|---|---|");
    for (workers, width) in [1usize, 2, 4, 8].iter().flat_map(|&n| [(n, 8i64), (n, 16)]) {
        let text = format!(
            "version = 1\n[data]\nroot = \"{}\"\nheight = 32\nwidth = 64\nload_threads = 1\n[model]\nwidth = {width}\n\
             [method]\nkind = \"full\"\n[train]\nsteps = {STEPS}\nbatch_size = 16\neval_every = 1000\n\
             checkpoint_every = 1000\nthreads = 1\n[distributed]\nheartbeat_interval_ms = 200\n",
            data.path().display()
        );
        let config = Config::from_toml_str(&text, Path::new("round_latency.toml"), &[]).unwrap();
        let run = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (timing, rounds, params) = rt.block_on(async {
            let coord = Coordinator::start(CoordinatorOptions {
                config: config.clone(),
                run_dir: run.path().join("run"),
                resume: false,
                listen: "127.0.0.1:0".parse().unwrap(),
                metrics_listen: None,
                token: "bench".into(),
                tls: None,
                linger: Duration::from_secs(5),
            })
            .await
            .unwrap();
            let (_tx, stop) = tokio::sync::watch::channel(false);
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    tokio::spawn(dmtl_worker::run(
                        WorkerOptions {
                            coordinator: format!("http://{}", coord.addr),
                            task: WorkerTask::Both,
                            device: None,
                            data_root: None,
                            threads: Some(1),
                            token: "bench".into(),
                            tls_ca: None,
                            host: "bench".into(),
                            give_up_after: Duration::from_secs(30),
                        },
                        stop.clone(),
                    ))
                })
                .collect();
            let hub = coord.hub.clone();
            coord.wait().await.unwrap();
            for h in handles {
                h.await.unwrap().unwrap();
            }
            let s = hub.status();
            let params = dmtl_core::model::Model::new(&config.model, 7, tch::Device::Cpu, 0).num_parameters();
            (s.run.timing.clone(), s.run.rounds_merged, params)
        });
        let n = rounds.max(1) as f64;
        println!(
            "| {workers} | {:.4} | {:.2} | {:.2} | width {width}, {:.2} M parameters |",
            timing.sum_round_s / n,
            timing.sum_merge_s / n * 1e3,
            timing.max_merge_s * 1e3,
            params as f64 / 1e6
        );
    }
}
