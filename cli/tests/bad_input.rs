//! Every bad input gives a non-zero exit and an error naming the file or key,
//! and loses nothing already written in the run directory.

mod common;

use std::path::Path;

use common::*;

fn train_args<'a>(config: &'a Path, run_dir: &'a Path) -> Vec<&'a str> {
    vec!["train", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()]
}

fn expect_error(args: &[&str], needle: &str) -> String {
    let out = run(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "expected failure for {args:?}");
    assert!(err.contains(needle), "error should mention `{needle}`:\n{err}");
    err
}

fn first_file(root: &Path, folder: &str, suffix: &str) -> std::path::PathBuf {
    let city = std::fs::read_dir(root.join(folder).join("train")).unwrap().flatten().next().unwrap().path();
    let mut files: Vec<_> = std::fs::read_dir(city).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    files.into_iter().find(|p| p.to_string_lossy().ends_with(suffix)).unwrap()
}

#[test]
fn a_missing_data_root_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let config = tiny_config(dir.path(), "full", &missing);
    expect_error(&train_args(&config, &dir.path().join("run")), "nowhere");
}

#[test]
fn a_missing_label_png_is_named() {
    let data = dataset_copy();
    let label = first_file(data.path(), "gtFine", "_gtFine_labelIds.png");
    std::fs::remove_file(&label).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "full", data.path());
    expect_error(&train_args(&config, &dir.path().join("run")), label.file_name().unwrap().to_str().unwrap());
}

#[test]
fn a_corrupt_png_is_named() {
    let data = dataset_copy();
    let image = first_file(data.path(), "leftImg8bit", "_leftImg8bit.png");
    std::fs::write(&image, b"\x89PNG garbage").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "full", data.path());
    expect_error(&train_args(&config, &dir.path().join("run")), image.file_name().unwrap().to_str().unwrap());
}

#[test]
fn a_label_whose_size_differs_from_its_image_is_named() {
    let data = dataset_copy();
    let label = first_file(data.path(), "gtFine", "_gtFine_labelIds.png");
    image::GrayImage::new(10, 10).save(&label).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "full", data.path());
    let err = expect_error(&train_args(&config, &dir.path().join("run")), label.file_name().unwrap().to_str().unwrap());
    assert!(err.contains("10x10"), "{err}");
}

#[test]
fn an_unreadable_camera_json_is_named_when_metric_depth_is_used() {
    let data = dataset_copy();
    let camera = first_file(data.path(), "camera", "_camera.json");
    std::fs::write(&camera, "{ not json").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "full", data.path());
    let run_dir = dir.path().join("run");
    let mut args = train_args(&config, &run_dir);
    args.extend(["--set", "data.depth=depth"]);
    expect_error(&args, camera.file_name().unwrap().to_str().unwrap());
}

#[test]
fn a_config_typo_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("typo.toml");
    std::fs::write(&config, "version = 1\n[train]\nstepz = 3\n").unwrap();
    expect_error(&train_args(&config, &dir.path().join("run")), "stepz");
}

#[test]
fn an_out_of_range_value_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "full", dataset());
    let run_dir = dir.path().join("run");
    let mut args = train_args(&config, &run_dir);
    args.extend(["--set", "distill.temperature=-1"]);
    expect_error(&args, "distill.temperature");
}

#[test]
fn a_finished_run_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "half", dataset());
    let run_dir = dir.path().join("run");
    let mut args = train_args(&config, &run_dir);
    args.extend(["--set", "train.steps=4", "--set", "train.eval_every=2"]);
    assert!(run(&args).status.success());
    let before: Vec<(String, Vec<u8>)> = ["config.toml", "split.json", "metrics.jsonl", "final.json"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(run_dir.join(f)).unwrap()))
        .collect();
    // The same run again without --resume, and a broken config, both into the same directory.
    expect_error(&args, "--resume");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "version = 1\n[train]\nlr = -1.0\n").unwrap();
    expect_error(&train_args(&broken, &run_dir), "train.lr");
    for (file, bytes) in before {
        assert_eq!(std::fs::read(run_dir.join(&file)).unwrap(), bytes, "{file} changed");
    }
}
