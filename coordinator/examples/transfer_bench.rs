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
use dmtl_worker::client::client;

const REPEATS: usize = 5;

fn main() {
    let target_mb: f64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100.0);
    // Parameters grow with width²: 5.6 MB at width 80 for this two-stage model.
    let width = (80.0 * (target_mb / 5.6).sqrt()).round() as i64;
    let data = tempfile::tempdir().unwrap();
    let spec = SyntheticSpec { out: data.path().to_path_buf(), train: 8, val: 2, height: 32, width: 64, seed: 1 };
    generate(&spec, &|_| {}).unwrap();
    let text = format!(
        "version = 1\n[data]\nroot = \"{}\"\nheight = 32\nwidth = 64\n[model]\nwidth = {width}\nblocks = [1, 1]\n\
         [method]\nkind = \"full\"\n[train]\nsteps = {}\nbatch_size = 4\neval_every = 1000\ncheckpoint_every = 1000\n\
         threads = 2\n[distributed]\nchunk_bytes = 1048576\n",
        data.path().display(),
        REPEATS + 1
    );
    let config = Config::from_toml_str(&text, Path::new("transfer_bench.toml"), &[]).unwrap();
    let run = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let coord = Coordinator::start(CoordinatorOptions {
            config: config.clone(),
            run_dir: run.path().join("run"),
            resume: false,
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: None,
            token: "bench".into(),
            tls: None,
            linger: Duration::from_millis(100),
        })
        .await
        .unwrap();
        let mut c = client(&format!("http://{}", coord.addr), None, "bench").unwrap();
        let worker = c
            .register(v1::RegisterRequest {
                task: v1::Task::Both as i32,
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .worker_id;
        let (mut pull_s, mut push_s, mut copy_s) = (Vec::new(), Vec::new(), Vec::new());
        let (mut snapshot_bytes, mut update_bytes) = (0, 0);
        let mut last = 0;
        for _ in 0..REPEATS {
            let info = loop {
                let i = c
                    .wait_round(v1::WaitRoundRequest { worker_id: worker.clone(), last_round: last, max_wait_ms: 5000 })
                    .await
                    .unwrap()
                    .into_inner();
                if i.plan.is_some() {
                    break i;
                }
            };
            last = info.round;
            let t = Instant::now();
            let mut s = c
                .pull_snapshot(v1::PullSnapshotRequest {
                    worker_id: worker.clone(),
                    kind: v1::SnapshotKind::Weights as i32,
                    version: info.weights_version,
                })
                .await
                .unwrap()
                .into_inner();
            let weights = receive(&mut s, 1 << 40).await.unwrap().1;
            pull_s.push(t.elapsed().as_secs_f64());
            snapshot_bytes = weights.len();

            let t = Instant::now();
            let copy = weights.to_vec();
            copy_s.push(t.elapsed().as_secs_f64());
            std::hint::black_box(&copy);

            let model = Model::new(&config.model, config.data.classes.num_classes(), tch::Device::Cpu, 0);
            load_weights(&weights, &model).unwrap();
            let grads = model.parameters().iter().map(|(n, p)| (n.clone(), p.detach().zeros_like() + 1e-3)).collect();
            let update = Update {
                grads,
                buffers: Default::default(),
                samples: 4,
                losses: LossValues { total: 1.0, ..Default::default() },
            };
            let payload = Bytes::from(encode_update(&update).unwrap());
            update_bytes = payload.len();
            let header = v1::UpdateHeader {
                worker_id: worker.clone(),
                round: info.round,
                weights_version: info.weights_version,
                samples: 4,
                kind: v1::UpdateKind::Gradients as i32,
                losses: Some(v1::TrainLosses { total: 1.0, ..Default::default() }),
                encoding: v1::PayloadEncoding::Safetensors as i32,
            };
            let t = Instant::now();
            let r = c
                .push_update(tokio_stream::iter(chunk_messages::<UpdateChunk>(header, payload, 1 << 20)))
                .await
                .unwrap()
                .into_inner();
            push_s.push(t.elapsed().as_secs_f64());
            assert!(r.accepted, "{}", r.reason);
        }
        coord.stop();
        let _ = coord.wait().await;
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let (pull, push, copy) = (median(&mut pull_s), median(&mut push_s), median(&mut copy_s));
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
    });
}
