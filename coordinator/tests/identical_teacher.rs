//! A `round` teacher is the model of the previous round. With a learning rate
//! of effectively zero the student does not move, so teacher and student hold
//! the same weights at every step, and the distillation losses of a whole run
//! must be about 0 — in `dmtl train`, on the grpc plane (the workers compute
//! the targets from the broadcast teacher) and on the nccl plane (each member
//! refreshes its own teacher). Before the teacher computed its targets with
//! the student's batch statistics (it used its running statistics), these
//! runs logged distill_depth ≈ 0.4 and distill_seg ≈ 0.08.

use std::path::Path;
use std::time::Duration;

use dmtl_core::config::Config;
use dmtl_core::train::{train, Silent};
use dmtl_worker::WorkerTask;

mod common;
use common::*;

const STEPS: usize = 8;

fn frozen(method: &str, plane: &str) -> Config {
    let mut cfg = config(method, STEPS, &format!("data_plane = \"{plane}\"\n[distill]\nteacher = \"round\""));
    cfg.train.lr = 1e-12;
    cfg.train.warmup_steps = 0;
    cfg
}

/// Every distillation loss logged in the run's metrics.jsonl; at least one must be there.
fn distill_losses(run: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in ["distill_seg", "distill_depth"] {
            if let Some(x) = v["train"][key].as_f64() {
                out.push((format!("step {}: {key}", v["step"]), x));
            }
        }
    }
    assert!(!out.is_empty(), "{}: no distillation loss was logged", run.display());
    out
}

fn assert_about_zero(what: &str, run: &Path) {
    for (name, x) in distill_losses(run) {
        assert!(x.abs() < 1e-5, "{what}, {name} = {x}: a teacher with the student's weights must add no loss");
    }
}

#[test]
fn a_frozen_run_with_a_round_teacher_logs_no_distillation_loss_in_dmtl_train() {
    for method in ["distill", "masked-distill"] {
        let run = tempfile::tempdir().unwrap();
        train(&frozen(method, "grpc"), run.path(), false, &mut Silent).unwrap();
        assert_about_zero(&format!("dmtl train, {method}"), run.path());
    }
}

#[test]
fn a_frozen_run_with_a_round_teacher_logs_no_distillation_loss_on_both_data_planes() {
    dmtl_collective::backend::use_in_process_backend_for_tests(Duration::from_secs(10));
    for plane in ["grpc", "nccl"] {
        for method in ["distill", "masked-distill"] {
            let run = tempfile::tempdir().unwrap();
            runtime().block_on(async {
                let coord = start(frozen(method, plane), run.path()).await;
                let (_stop_tx, stop) = tokio::sync::watch::channel(false);
                let workers: Vec<_> = [WorkerTask::Seg, WorkerTask::Depth]
                    .map(|t| tokio::spawn(dmtl_worker::run(worker_options(&coord, t), stop.clone())))
                    .into_iter()
                    .collect();
                coord.wait().await.unwrap();
                for w in workers {
                    w.await.unwrap().unwrap();
                }
            });
            assert_about_zero(&format!("{plane} plane, {method}"), run.path());
        }
    }
}
