//! `dmtl eval` reproduces the run's final metrics; `dmtl data-stats` summarises a dataset.

mod common;

use common::*;

#[test]
fn eval_of_the_last_checkpoint_prints_the_final_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "masked", dataset());
    let run_dir = dir.path().join("run");
    let out = run(&["train", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ckpt = run_dir.join("checkpoints/step-00000040.safetensors");
    let out =
        run(&["eval", "--checkpoint", ckpt.to_str().unwrap(), "--data-root", dataset().to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fin = read_json(&run_dir.join("final.json"));
    for (task, key) in
        [("seg", "miou"), ("seg", "pixel_acc"), ("depth", "abs_err"), ("depth", "rel_err"), ("depth", "delta1")]
    {
        let (a, b) = (eval[task][key].as_f64().unwrap(), fin[task][key].as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{task}.{key}: eval {a} vs final {b}");
    }
    // Against its own final.json, Δm is zero.
    let fin_path = run_dir.join("final.json");
    let out = run(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data-root",
        dataset().to_str().unwrap(),
        "--baseline",
        fin_path.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(eval["delta_m"]["percent"].as_f64().unwrap().abs() < 1e-9);
    assert_eq!(eval["delta_m"]["baseline_method"], "masked");
    // A baseline that is not a final.json is named in the error.
    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, "{}").unwrap();
    let out = run(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data-root",
        dataset().to_str().unwrap(),
        "--baseline",
        bogus.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bogus.json"), "{}", stderr(&out));
}

#[test]
fn data_stats_counts_images_and_pixels() {
    let out =
        run(&["data-stats", "--data-root", dataset().to_str().unwrap(), "--split", "val", "--classes", "7", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["images"], 16);
    let pixels: u64 = stats["class_pixels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
    let ignored = stats["ignored_pixels"].as_u64().unwrap();
    assert_eq!(pixels + ignored, 16 * 32 * 64);
    let share = stats["invalid_disparity_share"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&share));
    let table = run(&["data-stats", "--data-root", dataset().to_str().unwrap(), "--classes", "19"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("road"));
}
