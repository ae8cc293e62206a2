//! The training step, as three library functions shared by single-process and
//! distributed training:
//!
//! 1. [`compute_update`]: (model, batch part, losses, teacher) → gradients,
//!    new BatchNorm statistics, sample count and loss values. The model itself
//!    is left unchanged.
//! 2. [`merge`]: several updates → one. Every tensor is the sample-weighted mean
//!    over the updates that carry it: the shared encoder over all of them, each
//!    head over those that trained it.
//! 3. [`apply`]: the optimizer step on the merged gradients, and the merged
//!    statistics copied into the model.
//!
//! A single-process step of a masked method is two `compute_update`s (one per
//! task half, each with its own BatchNorm statistics), one `merge` and one
//! `apply` — exactly what one segmentation and one depth worker do together.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::data::batch::Batch;
use crate::losses::{self, LossValues};
use crate::method::{DistillParams, Losses};
use crate::model::{Model, Part};
use crate::optim::Optimizer;

/// What one batch part contributes to a step.
#[derive(Debug)]
pub struct Update {
    /// Gradients of the parameters that took part, by name.
    pub grads: BTreeMap<String, Tensor>,
    /// BatchNorm running statistics after the forward pass, of the parts that ran.
    pub buffers: BTreeMap<String, Tensor>,
    /// Images in the part (the merge weight).
    pub samples: usize,
    pub losses: LossValues,
}

/// Why a step cannot be computed, merged or applied.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("the batch has no {0} labels but its losses need them")]
    MissingLabels(&'static str),
    #[error("distillation was requested without a teacher")]
    MissingTeacher,
    #[error("nothing to merge")]
    NothingToMerge,
    #[error("the loss is {loss} ({losses})")]
    Diverged { loss: f64, losses: String },
}

/// Refuses an update whose loss is not finite (a diverged step): nothing of
/// it may be applied. Every data plane checks through this one function.
pub fn check_finite(update: &Update) -> Result<(), StepError> {
    let loss = update.losses.total;
    if loss.is_finite() {
        return Ok(());
    }
    Err(StepError::Diverged { loss, losses: serde_json::to_string(&update.losses).unwrap_or_default() })
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

/// Computes the gradients of one batch part without changing `model`: the
/// model's BatchNorm statistics are restored after the forward pass, and the
/// new ones are returned in the update.
pub fn compute_update(
    model: &Model,
    batch: &Batch,
    losses: &Losses,
    distill: DistillParams,
    teacher: Option<&Model>,
) -> Result<Update, StepError> {
    if losses.seg && batch.seg.is_none() {
        return Err(StepError::MissingLabels("segmentation"));
    }
    if losses.depth && batch.depth.is_none() {
        return Err(StepError::MissingLabels("depth"));
    }
    let run_seg = losses.needs_seg_head();
    let run_depth = losses.needs_depth_head();
    let ran = |name: &str| match Part::of(name) {
        Some(Part::Encoder) => true,
        Some(Part::SegHead) => run_seg,
        Some(Part::DepthHead) => run_depth,
        None => false,
    };

    let targets = if losses.needs_teacher() {
        let teacher = teacher.ok_or(StepError::MissingTeacher)?;
        // Computed as the student's prediction is (batch statistics), with no buffer
        // of the teacher changed: a teacher with the student's weights gives a loss of 0.
        Some(teacher.forward_batch_stats(&batch.images, losses.distill_seg, losses.distill_depth))
    } else {
        None
    };

    let buffers = model.buffers();
    let saved: BTreeMap<String, Tensor> =
        buffers.iter().filter(|(n, _)| ran(n)).map(|(n, t)| (n.clone(), t.copy())).collect();
    let params = model.parameters();
    for p in params.values() {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }

    let out = model.forward_t(&batch.images, true, run_seg, run_depth);
    let mut values = LossValues::default();
    let mut total = Tensor::zeros([], (Kind::Float, model.device()));
    if losses.seg {
        let l =
            losses::seg_cross_entropy(out.seg.as_ref().expect("seg head ran"), batch.seg.as_ref().expect("checked"));
        values.seg = Some(scalar(&l));
        total += l;
    }
    if losses.depth {
        let l = losses::depth_l1(out.depth.as_ref().expect("depth head ran"), batch.depth.as_ref().expect("checked"));
        values.depth = Some(scalar(&l));
        total += l;
    }
    if let Some(t) = &targets {
        if losses.distill_seg {
            let l = losses::distill_seg(
                out.seg.as_ref().expect("seg head ran"),
                t.seg.as_ref().expect("teacher seg ran"),
                distill.temperature,
            );
            values.distill_seg = Some(scalar(&l));
            total += l * distill.seg_weight;
        }
        if losses.distill_depth {
            // Only where depth can exist: not on void or sky (DistillParams::depth_mask).
            let mask = batch.seg.as_ref().map(|seg| distill.depth_mask(seg));
            let l = losses::distill_depth(
                out.depth.as_ref().expect("depth head ran"),
                t.depth.as_ref().expect("teacher depth ran"),
                mask.as_ref(),
            );
            values.distill_depth = Some(scalar(&l));
            total += l * distill.depth_weight;
        }
    }
    values.total = scalar(&total);
    total.backward();

    let grads = params
        .iter()
        .filter_map(|(n, p)| {
            let g = p.grad();
            (g.defined() && ran(n)).then(|| (n.clone(), g.copy()))
        })
        .collect();
    let new_buffers = tch::no_grad(|| {
        saved
            .iter()
            .map(|(name, old)| {
                let mut live = buffers[name].shallow_clone();
                let new = live.copy();
                live.copy_(old);
                (name.clone(), new)
            })
            .collect()
    });
    Ok(Update { grads, buffers: new_buffers, samples: batch.len(), losses: values })
}

fn weighted_mean<'a>(items: impl Iterator<Item = (f64, &'a Tensor)>) -> Tensor {
    let items: Vec<(f64, &Tensor)> = items.collect();
    if items.len() == 1 {
        return items[0].1.shallow_clone();
    }
    let total: f64 = items.iter().map(|(w, _)| w).sum();
    let mut acc = items[0].1 * (items[0].0 / total);
    for (w, t) in &items[1..] {
        acc += *t * (*w / total);
    }
    acc
}

fn merge_maps(updates: &[&Update], pick: impl Fn(&Update) -> &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    let mut names: Vec<&String> = updates.iter().flat_map(|u| pick(u).keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let items = updates.iter().filter_map(|u| pick(u).get(name).map(|t| (u.samples as f64, t)));
            (name.clone(), weighted_mean(items))
        })
        .collect()
}

fn merge_loss(updates: &[&Update], pick: impl Fn(&LossValues) -> Option<f64>) -> Option<f64> {
    let items: Vec<(f64, f64)> =
        updates.iter().filter_map(|u| pick(&u.losses).map(|v| (u.samples as f64, v))).collect();
    let w: f64 = items.iter().map(|(w, _)| w).sum();
    (!items.is_empty()).then(|| items.iter().map(|(wi, v)| wi * v).sum::<f64>() / w)
}

/// Merges updates: every gradient and statistic is the sample-weighted mean
/// over the updates that carry it. Loss values are merged the same way.
pub fn merge(updates: &[&Update]) -> Result<Update, StepError> {
    if updates.is_empty() {
        return Err(StepError::NothingToMerge);
    }
    let losses = LossValues {
        seg: merge_loss(updates, |l| l.seg),
        depth: merge_loss(updates, |l| l.depth),
        distill_seg: merge_loss(updates, |l| l.distill_seg),
        distill_depth: merge_loss(updates, |l| l.distill_depth),
        total: merge_loss(updates, |l| Some(l.total)).unwrap_or(0.0),
    };
    Ok(Update {
        grads: merge_maps(updates, |u| &u.grads),
        buffers: merge_maps(updates, |u| &u.buffers),
        samples: updates.iter().map(|u| u.samples).sum(),
        losses,
    })
}

/// Applies a merged update: one optimizer step at learning rate `lr`, and the
/// merged BatchNorm statistics copied into the model.
pub fn apply(model: &Model, optimizer: &mut Optimizer, update: &Update, lr: f64) {
    let params = model.parameters();
    optimizer.step(&params, &update.grads, lr);
    let buffers = model.buffers();
    tch::no_grad(|| {
        for (name, value) in &update.buffers {
            if let Some(b) = buffers.get(name) {
                b.shallow_clone().copy_(value);
            }
        }
    });
}

/// Applies a merged weight delta (local SGD, `distributed.local_steps > 1`):
/// every parameter in `update.grads` moves by its (sample-weighted mean)
/// delta, and the merged BatchNorm statistics are copied in.
pub fn apply_delta(model: &Model, update: &Update) {
    let params = model.parameters();
    let buffers = model.buffers();
    tch::no_grad(|| {
        for (name, delta) in &update.grads {
            if let Some(p) = params.get(name) {
                let _ = p.shallow_clone().g_add_(delta);
            }
        }
        for (name, value) in &update.buffers {
            if let Some(b) = buffers.get(name) {
                b.shallow_clone().copy_(value);
            }
        }
    });
}

/// What a worker in local-SGD mode pushes after its steps: the change of
/// every parameter since `start` (as `grads`), its current BatchNorm
/// statistics (as `buffers`), with the round's sample count and mean losses.
pub fn weight_delta(model: &Model, start: &BTreeMap<String, Tensor>, samples: usize, losses: LossValues) -> Update {
    let grads = tch::no_grad(|| {
        model.parameters().iter().filter_map(|(n, p)| start.get(n).map(|s| (n.clone(), p - s))).collect()
    });
    let buffers = model.buffers().iter().map(|(n, b)| (n.clone(), b.copy())).collect();
    Update { grads, buffers, samples, losses }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelConfig, TrainConfig};
    use tch::Device;

    fn model() -> Model {
        Model::new(&ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 }, 3, Device::Cpu, 3)
    }

    fn batch(n: i64, seed: i64) -> Batch {
        crate::test_rng::seeded(seed, || Batch {
            images: Tensor::randn([n, 3, 8, 8], (Kind::Float, Device::Cpu)),
            seg: Some(Tensor::randint(3, [n, 8, 8], (Kind::Int64, Device::Cpu))),
            depth: Some(Tensor::rand([n, 1, 8, 8], (Kind::Float, Device::Cpu)) + 0.5),
        })
    }

    const NO_DISTILL: DistillParams = DistillParams::uniform(1.0, 2.0);

    #[test]
    fn computing_an_update_leaves_the_model_unchanged() {
        let m = model();
        let before: BTreeMap<String, Tensor> = m.variables().into_iter().map(|(n, t)| (n, t.copy())).collect();
        let u = compute_update(
            &m,
            &batch(2, 0),
            &Losses { seg: true, depth: true, ..Default::default() },
            NO_DISTILL,
            None,
        )
        .unwrap();
        assert!(!u.grads.is_empty() && !u.buffers.is_empty());
        let after = m.variables();
        assert!(before.iter().all(|(n, t)| t.equal(&after[n])), "variables changed");
    }

    #[test]
    fn a_seg_only_update_carries_no_depth_head_tensors() {
        let m = model();
        let u =
            compute_update(&m, &batch(2, 0), &Losses { seg: true, ..Default::default() }, NO_DISTILL, None).unwrap();
        assert!(u.grads.keys().all(|n| Part::of(n) != Some(Part::DepthHead)));
        assert!(u.buffers.keys().all(|n| Part::of(n) != Some(Part::DepthHead)));
        assert!(u.grads.keys().any(|n| Part::of(n) == Some(Part::SegHead)));
        assert!(u.losses.seg.is_some() && u.losses.depth.is_none());
    }

    #[test]
    fn missing_labels_or_teacher_are_errors() {
        let m = model();
        let mut b = batch(2, 0);
        b.depth = None;
        let e = compute_update(&m, &b, &Losses { depth: true, ..Default::default() }, NO_DISTILL, None).unwrap_err();
        assert!(e.to_string().contains("depth"));
        let e =
            compute_update(&m, &b, &Losses { seg: true, distill_depth: true, ..Default::default() }, NO_DISTILL, None)
                .unwrap_err();
        assert!(matches!(e, StepError::MissingTeacher));
    }

    #[test]
    fn merging_weights_the_encoder_by_samples_and_each_head_by_its_owners() {
        let m = model();
        let seg =
            compute_update(&m, &batch(3, 1), &Losses { seg: true, ..Default::default() }, NO_DISTILL, None).unwrap();
        let depth =
            compute_update(&m, &batch(1, 2), &Losses { depth: true, ..Default::default() }, NO_DISTILL, None).unwrap();
        let merged = merge(&[&seg, &depth]).unwrap();
        assert_eq!(merged.samples, 4);
        for (name, g) in &merged.grads {
            let expected = match Part::of(name).unwrap() {
                Part::Encoder => &seg.grads[name] * 0.75 + &depth.grads[name] * 0.25,
                Part::SegHead => seg.grads[name].shallow_clone(),
                Part::DepthHead => depth.grads[name].shallow_clone(),
            };
            assert!(g.allclose(&expected, 1e-6, 1e-7, false), "{name}");
        }
    }

    #[test]
    fn distillation_against_an_identical_teacher_adds_no_loss_and_no_gradient() {
        let m = model();
        let mut t = model();
        t.copy_from(&m);
        let teacher_before: BTreeMap<String, Tensor> = t.variables().into_iter().map(|(n, x)| (n, x.copy())).collect();
        // Both terms at once and no task loss: every gradient comes from distillation.
        let only_distill = Losses { distill_seg: true, distill_depth: true, ..Default::default() };
        let u = compute_update(&m, &batch(3, 0), &only_distill, NO_DISTILL, Some(&t)).unwrap();
        let (seg, depth) = (u.losses.distill_seg.unwrap(), u.losses.distill_depth.unwrap());
        assert!(seg.abs() < 1e-6 && depth.abs() < 1e-6, "distill_seg {seg}, distill_depth {depth}");
        let worst = u.grads.values().map(|g| g.abs().max().double_value(&[])).fold(0.0, f64::max);
        assert!(worst < 1e-6, "an identical teacher pulls the student with a gradient of {worst}");
        let after = t.variables();
        assert!(teacher_before.iter().all(|(n, x)| x.equal(&after[n])), "the teacher's buffers changed");
    }

    #[test]
    fn a_different_teacher_does_add_distillation_loss() {
        let m = model();
        let t = Model::new(&ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 }, 3, Device::Cpu, 4);
        let losses = Losses { seg: true, distill_depth: true, ..Default::default() };
        let u = compute_update(&m, &batch(2, 0), &losses, NO_DISTILL, Some(&t)).unwrap();
        assert!(u.losses.distill_depth.unwrap() > 1e-4);
        assert!(u.grads.keys().any(|n| Part::of(n) == Some(Part::DepthHead)), "distillation trains the depth head");
    }

    #[test]
    fn depth_distillation_ignores_void_and_sky_pixels() {
        let m = model();
        let t = Model::new(&ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 }, 3, Device::Cpu, 4);
        let losses = Losses { seg: true, distill_depth: true, ..Default::default() };
        let with_sky = DistillParams { sky_class: Some(2), ..NO_DISTILL };
        let mut b = batch(2, 0);
        // Every pixel sky or void: nothing to distil, whatever the teacher says.
        let seg = b.seg.as_ref().unwrap();
        b.seg = Some(seg.where_self(&seg.ne(1), &Tensor::from(255i64)).clamp_min(2));
        let u = compute_update(&m, &b, &losses, with_sky, Some(&t)).unwrap();
        assert_eq!(u.losses.distill_depth, Some(0.0));
        // The same images with ordinary labels: the teacher's depth differs.
        let u = compute_update(&m, &batch(2, 0), &losses, with_sky, Some(&t)).unwrap();
        assert!(u.losses.distill_depth.unwrap() > 1e-4);
    }

    #[test]
    fn applying_a_merged_update_lowers_the_loss_on_that_batch() {
        let m = model();
        let mut opt = Optimizer::new(&TrainConfig::default());
        let b = batch(4, 5);
        let losses = Losses { seg: true, depth: true, ..Default::default() };
        let first = compute_update(&m, &b, &losses, NO_DISTILL, None).unwrap();
        let mut last = first.losses.total;
        for _ in 0..10 {
            let u = compute_update(&m, &b, &losses, NO_DISTILL, None).unwrap();
            last = u.losses.total;
            apply(&m, &mut opt, &merge(&[&u]).unwrap(), 1e-2);
        }
        assert!(last < first.losses.total, "{last} !< {}", first.losses.total);
    }
}
