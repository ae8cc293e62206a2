//! Evaluation on the validation split.

use crate::data::batch::build_batch;
use crate::data::Sample;
use crate::metrics::{ConfusionMatrix, DepthAccumulator, EvalMetrics};
use crate::model::Model;

/// Runs the model (eval mode, no augmentation) over `samples` and computes both
/// tasks' metrics over all their pixels.
pub fn evaluate(model: &Model, samples: &[Sample], batch_size: usize) -> EvalMetrics {
    let mut cm = ConfusionMatrix::new(model.classes);
    let mut depth = DepthAccumulator::default();
    tch::no_grad(|| {
        for chunk in samples.chunks(batch_size.max(1)) {
            let refs: Vec<&Sample> = chunk.iter().collect();
            let batch = build_batch(&refs, true, true).to_device(model.device());
            let out = model.forward_t(&batch.images, false, true, true);
            let pred = out.seg.expect("seg head ran").argmax(1, false);
            cm.add(&pred, batch.seg.as_ref().expect("labels built"));
            depth.add(&out.depth.expect("depth head ran"), batch.depth.as_ref().expect("labels built"));
        }
    });
    EvalMetrics { seg: cm.metrics(), depth: depth.metrics() }
}
