//! The `nccl` data plane through the real gRPC services, on CPU: an
//! in-process coordinator on 127.0.0.1:0 and in-process workers whose
//! all-reduce is the in-process backend (a test-only hook; users cannot
//! select it). The NCCL backend itself needs GPUs and is not run here.

use std::path::Path;
use std::time::Duration;

use dmtl_coordinator::engine::EngineEnd;
use dmtl_core::checkpoint::Checkpoint;
use dmtl_core::train::{train, Silent};
use dmtl_proto::v1::{self, monitor_client::MonitorClient};
use dmtl_worker::client::{channel, BearerToken};
use dmtl_worker::WorkerTask;
use tch::Tensor;

mod common;
use common::*;

const NCCL: &str = "data_plane = \"nccl\"";

fn in_process_backend() {
    dmtl_collective::backend::use_in_process_backend_for_tests(Duration::from_secs(4));
}

fn worst(
    expected: &std::collections::BTreeMap<String, Tensor>,
    got: &std::collections::BTreeMap<String, Tensor>,
) -> (f64, String) {
    let mut worst = (0.0f64, String::new());
    for (name, t) in expected {
        let diff = (t - &got[name]).abs().max().double_value(&[]);
        if diff > worst.0 {
            worst = (diff, name.clone());
        }
    }
    worst
}

fn checkpoint(run: &Path, step: usize) -> Checkpoint {
    Checkpoint::load(&run.join(format!("checkpoints/step-{step:08}.safetensors"))).unwrap()
}

#[test]
fn one_seg_and_one_depth_worker_on_the_nccl_plane_reproduce_single_process_masked_training() {
    in_process_backend();
    const STEPS: usize = 10;
    let mut cfg = config("masked", STEPS, NCCL);
    cfg.train.keep_checkpoints = 10;
    let single = tempfile::tempdir().unwrap();
    train(&cfg, single.path(), false, &mut Silent).unwrap();

    let run = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let coord = start(cfg.clone(), run.path()).await;
        let hub = coord.hub.clone();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let seg = tokio::spawn(dmtl_worker::run(worker_options(&coord, WorkerTask::Seg), stop.clone()));
        let depth = tokio::spawn(dmtl_worker::run(worker_options(&coord, WorkerTask::Depth), stop));
        let end = coord.wait().await.unwrap();
        assert!(matches!(end, EngineEnd::Finished(_)), "{end:?}");
        for w in [seg, depth] {
            let summary = w.await.unwrap().unwrap();
            assert_eq!(summary.rounds, STEPS as u64, "every round counted this worker's receipt once");
        }
        let status = hub.status();
        assert_eq!(status.data_plane, "nccl");
        assert_eq!(status.run.nccl_generation, 1, "the same two workers throughout: one generation");
    });
    // Evaluations and checkpoints at 4, 8 and 10 steps, each from rank 0's training state.
    for step in [4, 8, STEPS] {
        let (expected, got) = (checkpoint(single.path(), step), checkpoint(run.path(), step));
        let (diff, name) = worst(&expected.model, &got.model);
        assert!(diff <= 1e-4, "step {step}: weight `{name}` differs by {diff}");
        let (diff, name) = worst(&expected.optimizer, &got.optimizer);
        assert!(diff <= 1e-4, "step {step}: optimizer state `{name}` differs by {diff}");
        assert_eq!(got.state.step, step);
        assert_eq!(got.state.draws, expected.state.draws, "step {step}: the draw counters continue the same way");
    }
    let single_metrics = std::fs::read_to_string(single.path().join("metrics.jsonl")).unwrap();
    let dist_metrics = std::fs::read_to_string(run.path().join("metrics.jsonl")).unwrap();
    assert_eq!(single_metrics.lines().count(), dist_metrics.lines().count());
    assert!(run.path().join("final.json").exists());
}

#[test]
fn a_worker_lost_mid_run_starts_a_new_generation_and_the_others_finish_the_run_without_restarting() {
    in_process_backend();
    const STEPS: usize = 14;
    let mut cfg = config("masked-distill", STEPS, NCCL);
    cfg.distributed.heartbeat_timeout_ms = 1000;
    let run = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let coord = start(cfg.clone(), run.path()).await;
        let hub = coord.hub.clone();
        let ch = channel(&url(&coord), None).unwrap();
        let mut monitor = MonitorClient::with_interceptor(ch, BearerToken::new(TOKEN).unwrap());
        let mut events = monitor.watch(v1::WatchRequest {}).await.unwrap().into_inner();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let (victim_tx, victim_stop) = tokio::sync::watch::channel(false);
        let seg = tokio::spawn(dmtl_worker::run(worker_options(&coord, WorkerTask::Seg), stop.clone()));
        let depth = tokio::spawn(dmtl_worker::run(worker_options(&coord, WorkerTask::Depth), stop));
        let victim = tokio::spawn(dmtl_worker::run(worker_options(&coord, WorkerTask::Depth), victim_stop));

        // After three merged rounds the victim stops between rounds without
        // leaving: its heartbeats end, the others wait on it in the next collective.
        let mut generation_before = 0;
        let mut lost = 0;
        while let Some(e) = events.message().await.unwrap() {
            match e.kind.unwrap() {
                v1::event::Kind::RoundMerged(r) if r.round >= 3 && generation_before == 0 => {
                    generation_before = hub.status().run.nccl_generation;
                    victim_tx.send(true).unwrap();
                }
                v1::event::Kind::WorkerLost(_) => lost += 1,
                v1::event::Kind::RunFinished(_) => break,
                _ => {}
            }
        }
        let end = coord.wait().await.unwrap();
        match end {
            EngineEnd::Finished(r) => assert_eq!(r.steps, STEPS),
            other => panic!("{other:?}"),
        }
        assert_eq!(lost, 1, "only the victim was lost");
        let generation_after = hub.status().run.nccl_generation;
        assert!(generation_after > generation_before, "a new generation: {generation_before} -> {generation_after}");
        let victim = victim.await.unwrap().unwrap();
        assert!(victim.rounds < STEPS as u64);
        for w in [seg, depth] {
            let summary = w.await.unwrap().unwrap();
            assert_eq!(summary.registrations, 1, "the survivors never restarted or registered again");
            assert_eq!(summary.rounds, STEPS as u64, "every step once (the failed round is not counted)");
        }
    });
    let last = checkpoint(run.path(), STEPS);
    assert!(last.teacher.is_some(), "rank 0's state carries the teacher");
    assert!(std::fs::read_to_string(run.path().join("metrics.jsonl")).unwrap().lines().count() >= 3);
}
