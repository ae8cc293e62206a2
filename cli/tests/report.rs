//! `dmtl report` on fixture run directories (known numbers in, known table
//! out, figures written) and `dmtl experiment`'s skip/resume logic; bad input
//! gives errors that name the run or key.

mod common;

use std::path::Path;

use common::*;

/// Writes a finished run directory with the given final metrics and a 2-point curve.
fn fixture_run(dir: &Path, method: &str, seed: u64, miou: f64, abs_err: f64, delta1: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let config = format!(
        "version = 1\nseed = {seed}\n[data]\nroot = \"data/x\"\n[method]\nkind = \"{method}\"\n[train]\nsteps = 100\n"
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let fin = serde_json::json!({
        "method": method, "seed": seed, "steps": 100, "wall_s": 10.0,
        "seg": {"miou": miou, "pixel_acc": 0.9},
        "depth": {"abs_err": abs_err, "rel_err": abs_err / 2.0, "delta1": delta1},
        "images_seen": 1600,
    });
    std::fs::write(dir.join("final.json"), fin.to_string()).unwrap();
    let line = |step: u64, m: f64| {
        serde_json::json!({
            "step": step, "wall_s": step as f64 / 10.0, "images_seen": step * 16, "lr": 1e-3,
            "train": {"total": 1.0},
            "val": {"seg": {"miou": m, "pixel_acc": 0.9}, "depth": {"abs_err": abs_err, "rel_err": abs_err / 2.0, "delta1": delta1}},
        })
        .to_string()
    };
    std::fs::write(dir.join("metrics.jsonl"), format!("{}\n{}\n", line(50, miou - 0.1), line(100, miou))).unwrap();
}

fn fixture_suite(root: &Path) {
    for (seed, (f, h, d)) in [(0.60, 0.50, 0.58), (0.62, 0.52, 0.56)].into_iter().enumerate() {
        let seed = seed as u64;
        fixture_run(&root.join(format!("full/seed-{seed}")), "full", seed, f, 0.30, 0.70);
        fixture_run(&root.join(format!("half/seed-{seed}")), "half", seed, h, 0.40, 0.60);
        fixture_run(&root.join(format!("distill/seed-{seed}")), "distill", seed, d, 0.35, 0.65);
    }
}

#[test]
fn the_report_turns_known_runs_into_the_known_table_and_writes_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    fixture_suite(&runs);
    let out = dir.path().join("report");
    let o = run(&["report", runs.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0][0], "method");
    let labels: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
    assert_eq!(labels, ["full", "half", "distill"], "full and half first, then the methods");
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap_or_else(|| panic!("column {name}"));
    let num = |row: usize, name: &str| rows[row][col(name)].parse::<f64>().unwrap();
    assert!((num(1, "miou_mean") - 0.61).abs() < 1e-9);
    assert!((num(1, "miou_std") - 0.02f64.hypot(0.0) / 2f64.sqrt()).abs() < 1e-6, "sample std of 0.60 and 0.62");
    assert!((num(2, "abs_err_mean") - 0.40).abs() < 1e-9);
    assert_eq!(rows[1][col("seeds")], "0 1");
    // Δm of half against full: mIoU −0.10/0.61, pixel acc 0, abs err −1/3, rel err −1/3 → mean, in percent.
    let expected = 100.0 * (-0.10 / 0.61 + 0.0 - 1.0 / 3.0 - 1.0 / 3.0) / 4.0;
    assert!((num(2, "delta_m_vs_full") - expected).abs() < 1e-3, "{}", num(2, "delta_m_vs_full"));
    assert!((num(1, "gap_closed") - 1.0).abs() < 1e-9, "full closes the whole gap");
    assert!(num(2, "gap_closed").abs() < 1e-9, "half closes none of it");
    let distill = num(3, "gap_closed");
    assert!(distill > 0.0 && distill < 1.0, "distill sits between: {distill}");

    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| `full` | 2 | 61.00 ± 1.41 |"), "{md}");
    for png in ["pareto.png", "curves.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{png}: {} bytes", bytes.len());
    }
    let svg = std::fs::read_to_string(out.join("pareto.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("distill"), "the SVG names the methods");
    assert!(svg.contains("#1F77B4") || svg.contains("#1f77b4"), "full is blue");
    assert!(svg.contains("#FF7F0E") || svg.contains("#ff7f0e"), "half is orange");
}

#[test]
fn the_report_refuses_an_unfinished_run_and_mixed_configs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    fixture_suite(&runs);
    std::fs::remove_file(runs.join("half/seed-1/final.json")).unwrap();
    let out = dir.path().join("report");
    let o = run(&["report", runs.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("half/seed-1") && stderr(&o).contains("no final.json"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing is written from an incomplete set");

    fixture_run(&runs.join("half/seed-1"), "half", 1, 0.5, 0.4, 0.6);
    let cfg = runs.join("distill/seed-1/config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("steps = 100", "steps = 200");
    std::fs::write(&cfg, text).unwrap();
    let o = run(&["report", runs.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("mixed configs") && e.contains("train.steps") && e.contains("distill/seed-1"), "{e}");

    let o = run(&["report", dir.path().join("nowhere").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));
}

#[test]
fn an_experiment_skips_finished_runs_and_resumes_unfinished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite");
    std::fs::create_dir_all(&suite).unwrap();
    for method in ["full", "half"] {
        let path = tiny_config(&suite, method, dataset());
        let text = std::fs::read_to_string(&path).unwrap().replace("steps = 40", "steps = 10");
        std::fs::write(&path, text.replace("checkpoint_every = 20", "checkpoint_every = 5")).unwrap();
    }
    let out = dir.path().join("runs");
    let args = ["experiment", "--suite", suite.to_str().unwrap(), "--seeds", "2", "--out", out.to_str().unwrap()];
    let o = run(&[&args[..], &["--engine", "train"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    for name in ["full/seed-0", "full/seed-1", "half/seed-0", "half/seed-1"] {
        let fin = read_json(&out.join(name).join("final.json"));
        assert_eq!(fin["steps"], 10, "{name}");
        let seed = name.ends_with('1') as u64;
        assert_eq!(fin["seed"], seed, "{name}: the seed replaces the config's");
    }
    let before = std::fs::read_to_string(out.join("full/seed-0/final.json")).unwrap();

    // An interrupted run: drop its end; the experiment resumes it from its checkpoint, skips the rest.
    std::fs::remove_file(out.join("half/seed-1/final.json")).unwrap();
    std::fs::remove_file(out.join("half/seed-1/checkpoints/step-00000010.safetensors")).unwrap();
    let o = run(&[&args[..], &["--engine", "train"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.matches("finished, skipped").count(), 3, "{e}");
    assert!(e.contains("half seed 1: resuming"), "{e}");
    assert_eq!(read_json(&out.join("half/seed-1/final.json"))["steps"], 10);
    assert_eq!(std::fs::read_to_string(out.join("full/seed-0/final.json")).unwrap(), before, "untouched");

    // And through the distributed engine (the default), a fresh config of the suite runs too.
    let path = tiny_config(&suite, "masked", dataset());
    let text = std::fs::read_to_string(&path).unwrap().replace("steps = 40", "steps = 10");
    std::fs::write(&path, text.replace("checkpoint_every = 20", "checkpoint_every = 5")).unwrap();
    let o = run(&["experiment", "--suite", suite.to_str().unwrap(), "--seeds", "1", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("masked/seed-0/workers/seg-0.log").exists(), "ran through dmtl local's engine");
    assert_eq!(read_json(&out.join("masked/seed-0/final.json"))["steps"], 10);

    // The report of real runs also shows their predictions side by side.
    let report = dir.path().join("report");
    let o = run(&["report", out.to_str().unwrap(), "--out", report.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let q = image::open(report.join("qualitative.png")).expect("qualitative.png is written").to_rgb8();
    assert!(q.width() >= 4 * 64 && q.height() >= 4 * 32, "input, truth, full and half rows: {:?}", q.dimensions());

    // A suite whose configs differ elsewhere is refused before anything runs.
    let odd = tiny_config(&suite, "alternate", dataset());
    let text = std::fs::read_to_string(&odd).unwrap().replace("width = 64", "width = 128");
    std::fs::write(&odd, text).unwrap();
    let o = run(&args);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("data.width") && stderr(&o).contains("alternate.toml"), "{}", stderr(&o));
}
