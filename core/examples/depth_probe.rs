//! Where a checkpoint's depth head puts its predictions: the mean |prediction|
//! on the validation pixels that have a depth label and on those that have
//! none (sky, invalid stereo), and the metrics with BatchNorm in eval mode
//! against batch statistics. Used in docs/results to show that distilling
//! depth on every pixel lets the never-labelled pixels drift.
//!
//! `cargo run --release -p dmtl-core --example depth_probe -- CHECKPOINT...`
//! (the dataset named in each checkpoint's config must be present).

use std::collections::BTreeMap;
use std::path::Path;

use dmtl_core::checkpoint::Checkpoint;
use dmtl_core::data::batch::build_batch;
use dmtl_core::data::{Sample, Split};
use dmtl_core::metrics::{ConfusionMatrix, DepthAccumulator};
use dmtl_core::model::Model;
use tch::{Kind, Tensor};

/// (mIoU, rel err) over `samples` with BatchNorm in eval mode or on batch statistics.
fn metrics(model: &Model, samples: &[Sample], batch_stats: bool) -> (f64, f64) {
    let mut cm = ConfusionMatrix::new(model.classes);
    let mut depth = DepthAccumulator::default();
    tch::no_grad(|| {
        for chunk in samples.chunks(16) {
            let refs: Vec<&Sample> = chunk.iter().collect();
            let batch = build_batch(&refs, true, true);
            let out = model.forward_t(&batch.images, batch_stats, true, true);
            cm.add(&out.seg.expect("seg head ran").argmax(1, false), batch.seg.as_ref().expect("labels built"));
            depth.add(&out.depth.expect("depth head ran"), batch.depth.as_ref().expect("labels built"));
        }
    });
    (cm.metrics().miou, depth.metrics().rel_err)
}

/// Mean of |x| over the pixels where `mask` is 1.
fn mean_abs(x: &Tensor, mask: &Tensor) -> f64 {
    f64::try_from((x.abs() * mask).sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0)).unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tch::set_num_threads(1);
    println!("| checkpoint | weights | mean abs pred, labelled | mean abs label | mean abs pred, unlabelled | mIoU / rel err (eval BN) | mIoU / rel err (batch BN) |");
    println!("|---|---|---|---|---|---|---|");
    for path in std::env::args().skip(1) {
        let ckpt = Checkpoint::load(Path::new(&path))?;
        let data = ckpt.config.data.clone();
        let samples = dmtl_core::data::dataset::load_split(&data, Split::Val)?;
        let sets = [("model", Some(&ckpt.model)), ("teacher", ckpt.teacher.as_ref())];
        for (which, tensors) in sets {
            let Some(tensors) = tensors else { continue };
            let tensors: BTreeMap<String, Tensor> =
                tensors.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
            let model = Model::new(&ckpt.config.model, data.classes.num_classes(), tch::Device::Cpu, 0);
            model.load_tensors(&tensors)?;
            let refs: Vec<&Sample> = samples.iter().take(64).collect();
            let batch = build_batch(&refs, true, true);
            let pred =
                tch::no_grad(|| model.forward_t(&batch.images, false, false, true)).depth.expect("depth head ran");
            let label = batch.depth.as_ref().expect("labels built");
            let labelled = label.gt(0.0).to_kind(Kind::Float);
            let unlabelled = 1.0 - &labelled;
            let (e, b) = (metrics(&model, &samples, false), metrics(&model, &samples, true));
            println!(
                "| {path} | {which} | {:.3} | {:.3} | {:.3} | {:.1} / {:.3} | {:.1} / {:.3} |",
                mean_abs(&pred, &labelled),
                mean_abs(label, &labelled),
                mean_abs(&pred, &unlabelled),
                e.0 * 100.0,
                e.1,
                b.0 * 100.0,
                b.1
            );
        }
    }
    Ok(())
}
