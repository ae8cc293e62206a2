//! `dmtl predict`: Cityscapes-format files, metrics equal to `dmtl eval`'s,
//! resizing back to the label resolution, clear errors on bad input.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;

/// A `masked` run of the tiny config (7 categories, disparity, 32×64), trained once per test binary.
fn checkpoint() -> &'static Path {
    static CKPT: OnceLock<PathBuf> = OnceLock::new();
    CKPT.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("dmtl-predict-").tempdir().unwrap().keep();
        let config = tiny_config(&dir, "masked", dataset());
        let run_dir = dir.join("run");
        let out = run(&["train", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        run_dir.join("checkpoints/step-00000040.safetensors")
    })
}

/// `dmtl eval`'s depth metrics of the checkpoint's predictions after the
/// disparity file's encoding (computed in-process with the library).
fn stored_prediction_depth_metrics(ckpt: &Path, root: &Path) -> dmtl_core::metrics::DepthMetrics {
    use dmtl_core::data::decode::{decode_disparity, encode_disparity};
    let ckpt = dmtl_core::checkpoint::Checkpoint::load(ckpt).unwrap();
    let mut data = ckpt.config.data.clone();
    data.root = root.display().to_string();
    let model = dmtl_core::model::Model::new(&ckpt.config.model, data.classes.num_classes(), tch::Device::Cpu, 0);
    model.load_tensors(&ckpt.model).unwrap();
    let samples = dmtl_core::data::dataset::load_split(&data, dmtl_core::data::Split::Val).unwrap();
    let predictions = dmtl_core::predict::forward_samples(&model, &samples, ckpt.config.eval.batch_size);
    let mut acc = dmtl_core::metrics::DepthAccumulator::default();
    for (sample, prediction) in samples.iter().zip(&predictions) {
        let shape = [1, 1, sample.height as i64, sample.width as i64];
        let stored: Vec<f32> = prediction.depth.iter().map(|&d| decode_disparity(encode_disparity(d))).collect();
        acc.add(
            &tch::Tensor::from_slice(&stored).reshape(shape),
            &tch::Tensor::from_slice(&sample.depth).reshape(shape),
        );
    }
    acc.metrics()
}

fn png_header(path: &Path) -> (u32, u32, u8, u8) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[1..4], b"PNG", "{}", path.display());
    let be32 = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (be32(16), be32(20), bytes[24], bytes[25])
}

/// The val image ids of the tiny dataset, with their city.
fn val_images(root: &Path) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for city in std::fs::read_dir(root.join("leftImg8bit/val")).unwrap().flatten() {
        for file in std::fs::read_dir(city.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_suffix("_leftImg8bit.png") {
                ids.push((city.file_name().to_string_lossy().to_string(), id.to_string()));
            }
        }
    }
    ids.sort();
    ids
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            found.extend(files_under(&e.path()));
        } else {
            found.push(e.path());
        }
    }
    found
}

#[test]
fn predict_writes_cityscapes_files_whose_metrics_equal_eval() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("pred");
    let ckpt = checkpoint().to_str().unwrap();
    let root = dataset().to_str().unwrap();
    let out =
        run(&["predict", "--checkpoint", ckpt, "--data-root", root, "--out", out_dir.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let predicted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = run(&["eval", "--checkpoint", ckpt, "--data-root", root, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let evaluated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // Same keys; segmentation identical (the data is at the model's resolution);
    // depth differs only by the 1/256 px steps of the disparity files.
    assert_eq!(
        predicted.as_object().unwrap().keys().collect::<Vec<_>>(),
        evaluated.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    assert_eq!(predicted["seg"]["per_class_iou"].as_array().unwrap().len(), 7);
    for (p, e) in predicted["seg"]["per_class_iou"]
        .as_array()
        .unwrap()
        .iter()
        .zip(evaluated["seg"]["per_class_iou"].as_array().unwrap())
    {
        match (p.as_f64(), e.as_f64()) {
            (Some(p), Some(e)) => assert!((p - e).abs() < 1e-9, "per-class IoU {p} vs {e}"),
            (p, e) => assert_eq!(p, e),
        }
    }
    for key in ["miou", "pixel_acc"] {
        let (p, e) = (predicted["seg"][key].as_f64().unwrap(), evaluated["seg"][key].as_f64().unwrap());
        assert!((p - e).abs() < 1e-9, "seg.{key}: predict {p} vs eval {e}");
    }
    // Depth: eval's metrics of the predictions as stored (1/256 px steps,
    // non-positive values stored as invalid 0, so scored as 0) ...
    let depth = |v: &serde_json::Value, key: &str| v["depth"][key].as_f64().unwrap();
    let stored = stored_prediction_depth_metrics(checkpoint(), dataset());
    for (key, value) in [("abs_err", stored.abs_err), ("rel_err", stored.rel_err), ("delta1", stored.delta1)] {
        let p = depth(&predicted, key);
        assert!((p - value).abs() < 1e-9, "depth.{key}: predict {p} vs eval of the stored predictions {value}");
    }
    // ... which can only be closer to the truth than the raw output, up to the quantisation.
    assert!(depth(&predicted, "abs_err") <= depth(&evaluated, "abs_err") + 1.0 / 512.0);
    assert!((depth(&predicted, "delta1") - depth(&evaluated, "delta1")).abs() < 0.01);

    // Every val image has its four files, with the right names, sizes and formats.
    let images = val_images(dataset());
    assert_eq!(images.len(), 16);
    for (city, id) in &images {
        let file =
            |kind: &str, suffix: &str| out_dir.join(kind).join("val").join(city).join(format!("{id}_{suffix}.png"));
        assert_eq!(png_header(&file("labelIds", "pred_labelIds")), (64, 32, 8, 0), "8-bit grey label ids");
        assert_eq!(png_header(&file("color", "pred_color")), (64, 32, 8, 2), "8-bit RGB colours");
        assert_eq!(png_header(&file("disparity", "pred_disparity")), (64, 32, 16, 0), "16-bit grey disparity");
        let (w, h, depth, color) = png_header(&file("panel", "panel"));
        assert!(w > 5 * 64 && h > 32 && depth == 8 && color == 2, "panel {w}x{h}");
        // Label ids are Cityscapes ids of the 7 categories' representatives.
        let ids = image::open(file("labelIds", "pred_labelIds")).unwrap().into_luma8();
        assert!(ids.pixels().all(|p| [7, 11, 17, 21, 23, 24, 26].contains(&p.0[0])));
    }
    // cityscapesScripts finds exactly one prediction per image under labelIds/.
    assert_eq!(files_under(&out_dir.join("labelIds")).len(), images.len());

    // Without --json: a table, and --limit cuts the split.
    let limited = dir.path().join("limited");
    let out = run(&[
        "predict",
        "--checkpoint",
        ckpt,
        "--data-root",
        root,
        "--out",
        limited.to_str().unwrap(),
        "--limit",
        "3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 images") && text.contains("mIoU"), "{text}");
    assert_eq!(files_under(&limited.join("disparity")).len(), 3);
}

#[test]
fn predictions_are_resized_back_to_the_label_resolution() {
    // 19 classes, metric depth, trained at half the data's resolution.
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "full", dataset());
    let run_dir = dir.path().join("run");
    let out = run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--set",
        "data.height=16",
        "--set",
        "data.width=32",
        "--set",
        "data.classes=19",
        "--set",
        "data.depth=depth",
        "--set",
        "train.steps=10",
        "--set",
        "train.eval_every=10",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ckpt = run_dir.join("checkpoints/step-00000010.safetensors");
    let out = run(&[
        "predict",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data-root",
        dataset().to_str().unwrap(),
        "--limit",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(metrics["seg"]["per_class_iou"].as_array().unwrap().len(), 19);
    assert!(metrics["depth"]["abs_err"].as_f64().unwrap().is_finite());
    // The default output folder is in the run directory.
    let out_dir = run_dir.join("predictions/step-00000010");
    let (city, id) = &val_images(dataset())[0];
    let file = |kind: &str, suffix: &str| out_dir.join(kind).join("val").join(city).join(format!("{id}_{suffix}.png"));
    assert_eq!(png_header(&file("labelIds", "pred_labelIds")), (64, 32, 8, 0));
    assert_eq!(png_header(&file("disparity", "pred_disparity")), (64, 32, 16, 0));
    let ids = image::open(file("labelIds", "pred_labelIds")).unwrap().into_luma8();
    let train_ids = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33];
    assert!(ids.pixels().all(|p| train_ids.contains(&p.0[0])));
    // Nearest-neighbour upscaling by 2: every 2×2 block holds one id.
    for y in (0..32).step_by(2) {
        for x in (0..64).step_by(2) {
            let v = ids.get_pixel(x, y).0[0];
            assert!([(1, 0), (0, 1), (1, 1)].iter().all(|&(dx, dy)| ids.get_pixel(x + dx, y + dy).0[0] == v));
        }
    }
    assert_eq!(files_under(&out_dir).len(), 2 * 4);
}

#[test]
fn a_checkpoint_of_another_model_shape_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = dmtl_core::checkpoint::Checkpoint::load(checkpoint()).unwrap();
    ckpt.config.model.width = 8;
    let wrong = dir.path().join("wrong.safetensors");
    ckpt.save(&wrong).unwrap();
    let out = run(&[
        "predict",
        "--checkpoint",
        wrong.to_str().unwrap(),
        "--data-root",
        dataset().to_str().unwrap(),
        "--out",
        dir.path().join("p").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("wrong.safetensors") && message.contains("has shape"), "{message}");
    assert!(!dir.path().join("p").exists(), "nothing is written");
}

#[test]
fn a_missing_split_is_a_clear_error() {
    let data = dataset_copy();
    std::fs::remove_dir_all(data.path().join("leftImg8bit/val")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "predict",
        "--checkpoint",
        checkpoint().to_str().unwrap(),
        "--data-root",
        data.path().to_str().unwrap(),
        "--out",
        dir.path().join("p").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("no images found for split `val`"), "{message}");
    let out = run(&[
        "predict",
        "--checkpoint",
        checkpoint().to_str().unwrap(),
        "--data-root",
        dataset().to_str().unwrap(),
        "--split",
        "test",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown split `test`"), "{}", stderr(&out));
}
