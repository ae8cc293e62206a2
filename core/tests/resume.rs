//! A run stopped half way and resumed ends with the same weights and metrics as
//! an uninterrupted run with the same seed.

use std::path::Path;

use dmtl_core::checkpoint::Checkpoint;
use dmtl_core::config::tiny::Tiny;
use dmtl_core::config::Config;
use dmtl_core::data::synthetic::{generate, SyntheticSpec};
use dmtl_core::train::{train, Observer, Silent, TrainError};

struct StopAt(usize, usize);

impl Observer for StopAt {
    fn step(&mut self, r: &dmtl_core::train::StepReport) {
        self.1 = r.step;
    }
    fn should_stop(&mut self) -> bool {
        self.1 >= self.0
    }
}

fn config(root: &Path, method: &str, teacher: &str) -> Config {
    let tiny =
        Tiny { seed: 5, teacher: Some(teacher), steps: 24, eval_every: 8, checkpoint_every: 100, ..Tiny::new(method) };
    tiny.config(root, "resume-test.toml").unwrap()
}

fn resume_matches_uninterrupted(method: &str, teacher: &str) {
    let data = tempfile::tempdir().unwrap();
    let spec = SyntheticSpec { out: data.path().to_path_buf(), train: 24, val: 8, height: 32, width: 64, seed: 2 };
    generate(&spec, &|_| {}).unwrap();
    let cfg = config(data.path(), method, teacher);

    let whole = tempfile::tempdir().unwrap();
    let a = train(&cfg, whole.path(), false, &mut Silent).unwrap();

    let parts = tempfile::tempdir().unwrap();
    // Stop at step 10: mid-phase, and not at a checkpoint or evaluation step.
    match train(&cfg, parts.path(), false, &mut StopAt(10, 0)) {
        Err(TrainError::Stopped { step: 10, .. }) => {}
        other => panic!("expected a stop at step 10, got {other:?}"),
    }
    assert!(!parts.path().join("final.json").exists());
    let b = train(&cfg, parts.path(), true, &mut Silent).unwrap();

    assert_eq!(a.steps, b.steps);
    assert_eq!(a.images_seen, b.images_seen);
    let wa = Checkpoint::load(&whole.path().join("checkpoints/step-00000024.safetensors")).unwrap();
    let wb = Checkpoint::load(&parts.path().join("checkpoints/step-00000024.safetensors")).unwrap();
    for (name, t) in &wa.model {
        let diff = (t - &wb.model[name]).abs().max().double_value(&[]);
        assert!(diff <= 1e-6, "{method}: {name} differs by {diff}");
    }
    assert_eq!(wa.state.draws, wb.state.draws);
    assert!((a.seg.miou - b.seg.miou).abs() < 1e-6, "{} vs {}", a.seg.miou, b.seg.miou);
    assert!((a.depth.abs_err - b.depth.abs_err).abs() < 1e-6);
    let lines = |p: &Path| std::fs::read_to_string(p.join("metrics.jsonl")).unwrap().lines().count();
    assert_eq!(lines(whole.path()), 3);
    assert_eq!(lines(parts.path()), 3, "metrics.jsonl has each evaluation once");
    // The train-loss means logged after the resume cover the same steps.
    let line = |p: &Path| {
        let text = std::fs::read_to_string(p.join("metrics.jsonl")).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        v["train"]["total"].as_f64().unwrap()
    };
    assert!((line(whole.path()) - line(parts.path())).abs() < 1e-9);
}

#[test]
fn a_resumed_distill_run_equals_an_uninterrupted_one() {
    resume_matches_uninterrupted("distill", "phase");
}

#[test]
fn a_resumed_masked_distill_run_with_an_ema_teacher_equals_an_uninterrupted_one() {
    resume_matches_uninterrupted("masked-distill", "ema");
}

fn tiny_data() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let spec = SyntheticSpec { out: data.path().to_path_buf(), train: 12, val: 4, height: 32, width: 64, seed: 4 };
    generate(&spec, &|_| {}).unwrap();
    data
}

#[test]
fn resuming_when_no_checkpoint_loads_is_refused_and_changes_nothing() {
    let data = tiny_data();
    let mut cfg = config(data.path(), "masked", "phase");
    cfg.train.steps = 4;
    let run = tempfile::tempdir().unwrap();
    train(&cfg, run.path(), false, &mut Silent).unwrap();
    let ckpt = run.path().join("checkpoints/step-00000004.safetensors");
    std::fs::write(&ckpt, b"torn").unwrap();
    let metrics = std::fs::read(run.path().join("metrics.jsonl")).unwrap();
    let e = train(&cfg, run.path(), true, &mut Silent).unwrap_err().to_string();
    assert!(e.contains("none of its 1 checkpoint(s) loads"), "{e}");
    assert_eq!(std::fs::read(run.path().join("metrics.jsonl")).unwrap(), metrics);
    assert_eq!(std::fs::read(&ckpt).unwrap(), b"torn");
}

#[test]
fn resuming_with_a_config_that_differs_from_the_checkpoints_is_refused() {
    let data = tiny_data();
    let mut cfg = config(data.path(), "masked", "phase");
    cfg.train.steps = 4;
    let run = tempfile::tempdir().unwrap();
    match train(&cfg, run.path(), false, &mut StopAt(2, 0)) {
        Err(TrainError::Stopped { step: 2, .. }) => {}
        other => panic!("expected a stop at step 2, got {other:?}"),
    }
    std::fs::remove_file(run.path().join("config.toml")).unwrap();
    cfg.train.lr = 0.5;
    let e = train(&cfg, run.path(), true, &mut Silent).unwrap_err().to_string();
    assert!(e.contains("train.lr"), "{e}");
}

#[test]
fn an_unreadable_newer_checkpoint_is_moved_aside_not_kept_by_pruning() {
    let data = tiny_data();
    let mut cfg = config(data.path(), "masked", "phase");
    cfg.train.steps = 6;
    cfg.train.keep_checkpoints = 1;
    let run = tempfile::tempdir().unwrap();
    match train(&cfg, run.path(), false, &mut StopAt(2, 0)) {
        Err(TrainError::Stopped { step: 2, .. }) => {}
        other => panic!("expected a stop at step 2, got {other:?}"),
    }
    let broken = run.path().join("checkpoints/step-00000005.safetensors");
    std::fs::write(&broken, b"torn").unwrap();
    train(&cfg, run.path(), true, &mut Silent).unwrap();
    let names: Vec<String> = std::fs::read_dir(run.path().join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.contains(&"step-00000006.safetensors".to_string()), "{names:?}");
    assert!(names.contains(&"step-00000005.safetensors.unreadable".to_string()), "{names:?}");
}
