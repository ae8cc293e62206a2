//! Shared by the CLI tests: the binary, a tiny synthetic dataset, tiny configs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use dmtl_core::config::tiny::Tiny;

pub fn dmtl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dmtl"))
}

/// Runs dmtl with `args`; returns the output (stdout, stderr, status).
pub fn run(args: &[&str]) -> Output {
    dmtl().args(args).output().expect("dmtl runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A tiny dataset (48 train, 16 val, 32×64), generated once per test binary.
pub fn dataset() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("dmtl-data-").tempdir().unwrap().keep();
        let out = run(&[
            "gen-synthetic",
            "--out",
            dir.to_str().unwrap(),
            "--train",
            "48",
            "--val",
            "16",
            "--height",
            "32",
            "--width",
            "64",
            "--seed",
            "3",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        dir
    })
}

/// A copy of the tiny dataset that a test may damage.
pub fn dataset_copy() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dataset(), copy.path());
    copy
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A tiny config for `method` (stride-4 model, batch 4, 40 steps, one thread).
pub fn tiny_config(dir: &Path, method: &str, data_root: &Path) -> PathBuf {
    let text = Tiny {
        seed: 1,
        switch_every: 5,
        teacher: Some("phase"),
        steps: 40,
        train_extra: "lr = 5e-3\nwarmup_steps = 2",
        eval_every: 10,
        checkpoint_every: 20,
        ..Tiny::new(method)
    }
    .toml(data_root);
    let path = dir.join(format!("{method}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}
