//! Snapshot and update transfer over loopback through the real services,
//! against a plain memory copy of the same bytes.
//!
//! `cargo run --release -p dmtl-coordinator --example transfer_bench [-- MB]`
//! (default: a model of about 100 MB).

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dmtl_coordinator::{Coordinator, CoordinatorOptions};
use dmtl_core::config::Config;
use dmtl_core::data::synthetic::{generate, SyntheticSpec};
use dmtl_core::model::Model;
use dmtl_core::train::wire::{encode_update, load_weights};
use dmtl_core::train::{LossValues, Update};
use dmtl_proto::v1::{self, UpdateChunk};
use dmtl_proto::{chunk_messages, receive};
use dmtl_worker::client::{client, Client};

const REPEATS: usize = 5;

/// Seconds of one round's transfers and the bytes moved.
struct Round {
    pull_s: f64,
    copy_s: f64,
    push_s: f64,
    snapshot_bytes: usize,
    update_bytes: usize,
}

/// A `full` config whose model's snapshot is about `target_mb`, on a tiny dataset in `data`.
fn bench_config(data: &Path, target_mb: f64) -> Config {
    // Parameters grow with width²: 5.6 MB at width 80 for this two-stage model.
    let width = (80.0 * (target_mb / 5.6).sqrt()).round() as i64;
    let spec = SyntheticSpec { out: data.to_path_buf(), train: 8, val: 2, height: 32, width: 64, seed: 1 };
    generate(&spec, &|_| {}).unwrap();
    let text = format!(
        "version = 1\n[data]\nroot = \"{}\"\nheight = 32\nwidth = 64\n[model]\nwidth = {width}\nblocks = [1, 1]\n\
         [method]\nkind = \"full\"\n[train]\nsteps = {}\nbatch_size = 4\neval_every = 1000\ncheckpoint_every = 1000\n\
         threads = 2\n[distributed]\nchunk_bytes = 1048576\n",
        data.display(),
        REPEATS + 1
    );
    Config::from_toml_str(&text, Path::new("transfer_bench.toml"), &[]).unwrap()
}

async fn start(config: &Config, run: &Path) -> Coordinator {
    Coordinator::start(CoordinatorOptions {
        config: config.clone(),
        run_dir: run.join("run"),
        resume: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        token: "bench".into(),
        tls: None,
        linger: Duration::from_millis(100),
    })
    .await
    .unwrap()
}

/// Waits for the round after `last`, pulls its weights, copies them once in
/// memory and pushes an update of the same size.
async fn one_round(c: &mut Client, worker: &str, last: u64, config: &Config) -> (u64, Round) {
    let info = loop {
        let request = v1::WaitRoundRequest { worker_id: worker.into(), last_round: last, max_wait_ms: 5000 };
        let i = c.wait_round(request).await.unwrap().into_inner();
        if i.plan.is_some() {
            break i;
        }
    };
    let t = Instant::now();
    let request = v1::PullSnapshotRequest {
        worker_id: worker.into(),
        kind: v1::SnapshotKind::Weights as i32,
        version: info.weights_version,
    };
    let mut s = c.pull_snapshot(request).await.unwrap().into_inner();
    let weights = receive(&mut s, 1 << 40).await.unwrap().1;
    let pull_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let copy = weights.to_vec();
    let copy_s = t.elapsed().as_secs_f64();
    std::hint::black_box(&copy);

    let model = Model::new(&config.model, config.data.classes.num_classes(), tch::Device::Cpu, 0);
    load_weights(&weights, &model).unwrap();
    let grads = model.parameters().iter().map(|(n, p)| (n.clone(), p.detach().zeros_like() + 1e-3)).collect();
    let losses = LossValues { total: 1.0, ..Default::default() };
    let update = Update { grads, buffers: Default::default(), samples: 4, losses };
    let payload = Bytes::from(encode_update(&update).unwrap());
    let update_bytes = payload.len();
    let header = v1::UpdateHeader {
        worker_id: worker.into(),
        round: info.round,
        weights_version: info.weights_version,
        samples: 4,
        kind: v1::UpdateKind::Gradients as i32,
        losses: Some(v1::TrainLosses { total: 1.0, ..Default::default() }),
        encoding: v1::PayloadEncoding::Safetensors as i32,
    };
    let t = Instant::now();
    let chunks = tokio_stream::iter(chunk_messages::<UpdateChunk>(header, payload, 1 << 20));
    let r = c.push_update(chunks).await.unwrap().into_inner();
    let push_s = t.elapsed().as_secs_f64();
    assert!(r.accepted, "{}", r.reason);
    (info.round, Round { pull_s, copy_s, push_s, snapshot_bytes: weights.len(), update_bytes })
}

/// The table of medians over `rounds`.
fn print_table(width: i64, rounds: &[Round]) {
    let median = |f: fn(&Round) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (pull, push, copy) = (median(|r| r.pull_s), median(|r| r.push_s), median(|r| r.copy_s));
    let (snapshot_bytes, update_bytes) = (rounds[0].snapshot_bytes, rounds[0].update_bytes);
    let gbs = |bytes: usize, s: f64| bytes as f64 / s / 1e9;
    println!(
        "model width {width}: snapshot {:.1} MB, update {:.1} MB, median of {REPEATS}",
        snapshot_bytes as f64 / 1e6,
        update_bytes as f64 / 1e6
    );
    println!("| transfer | seconds | GB/s | vs memcpy |");
    println!("|---|---|---|---|");
    println!("| memcpy of the snapshot bytes | {copy:.4} | {:.2} | 1.00 |", gbs(snapshot_bytes, copy));
    println!(
        "| PullSnapshot (chunked stream, CRC checked) | {pull:.4} | {:.2} | {:.3} |",
        gbs(snapshot_bytes, pull),
        copy / pull
    );
    println!(
        "| PushUpdate (stream + CRC + validation of every tensor + accept) | {push:.4} | {:.2} | {:.3} |",
        gbs(update_bytes, push),
        copy / push
    );
}

fn main() {
    let target_mb: f64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100.0);
    let data = tempfile::tempdir().unwrap();
    let config = bench_config(data.path(), target_mb);
    let run = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let coord = start(&config, run.path()).await;
        let mut c = client(&format!("http://{}", coord.addr), None, "bench").unwrap();
        let register = v1::RegisterRequest {
            task: v1::Task::Both as i32,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let worker = c.register(register).await.unwrap().into_inner().worker_id;
        let mut rounds = Vec::new();
        let mut last = 0;
        for _ in 0..REPEATS {
            let (round, r) = one_round(&mut c, &worker, last, &config).await;
            last = round;
            rounds.push(r);
        }
        coord.stop();
        let _ = coord.wait().await;
        print_table(config.model.width, &rounds);
    });
}
