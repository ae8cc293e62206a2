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

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::losses;
use crate::method::Losses;
use crate::model::{Model, Part};
use crate::optim::Optimizer;

/// Images and the labels a batch part may use, on the model's device.
#[derive(Debug)]
pub struct Batch {
    /// `[B, 3, H, W]`, normalised.
    pub images: Tensor,
    /// `[B, H, W]` int64 class indices (255 = ignore), when seg labels may be used.
    pub seg: Option<Tensor>,
    /// `[B, 1, H, W]` float, 0 = invalid, when depth labels may be used.
    pub depth: Option<Tensor>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_device(&self, device: tch::Device) -> Batch {
        Batch {
            images: self.images.to_device(device),
            seg: self.seg.as_ref().map(|t| t.to_device(device)),
            depth: self.depth.as_ref().map(|t| t.to_device(device)),
        }
    }
}

/// Distillation settings of a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistillParams {
    /// λ.
    pub weight: f64,
    /// T.
    pub temperature: f64,
}

/// Loss values of a step (means over the pixels each covers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossValues {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub depth: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub distill_seg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub distill_depth: Option<f64>,
    /// The optimised objective: task losses + λ · distillation losses.
    pub total: f64,
}

/// Running sums of loss values between two evaluations (checkpointed, so that
/// a resumed run logs the same means as an uninterrupted one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossSums(pub BTreeMap<String, (f64, u64)>);

impl LossSums {
    pub fn add(&mut self, l: &LossValues) {
        let fields = [
            ("seg", l.seg),
            ("depth", l.depth),
            ("distill_seg", l.distill_seg),
            ("distill_depth", l.distill_depth),
            ("total", Some(l.total)),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                let e = self.0.entry(k.to_string()).or_default();
                e.0 += v;
                e.1 += 1;
            }
        }
    }

    /// The means since the last `take`, and a reset.
    pub fn take(&mut self) -> LossValues {
        let mean = |k: &str| self.0.get(k).map(|(s, n)| s / *n as f64);
        let out = LossValues {
            seg: mean("seg"),
            depth: mean("depth"),
            distill_seg: mean("distill_seg"),
            distill_depth: mean("distill_depth"),
            total: mean("total").unwrap_or(0.0),
        };
        self.0.clear();
        out
    }
}

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

/// A batch part that lacks the labels its losses need.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("the batch has no {0} labels but its losses need them")]
    MissingLabels(&'static str),
    #[error("distillation was requested without a teacher")]
    MissingTeacher,
    #[error("nothing to merge")]
    NothingToMerge,
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
        Some(tch::no_grad(|| teacher.forward_t(&batch.images, false, losses.distill_seg, losses.distill_depth)))
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
            total += l * distill.weight;
        }
        if losses.distill_depth {
            let l = losses::distill_depth(
                out.depth.as_ref().expect("depth head ran"),
                t.depth.as_ref().expect("teacher depth ran"),
                None,
            );
            values.distill_depth = Some(scalar(&l));
            total += l * distill.weight;
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
        tch::manual_seed(seed);
        Batch {
            images: Tensor::randn([n, 3, 8, 8], (Kind::Float, Device::Cpu)),
            seg: Some(Tensor::randint(3, [n, 8, 8], (Kind::Int64, Device::Cpu))),
            depth: Some(Tensor::rand([n, 1, 8, 8], (Kind::Float, Device::Cpu)) + 0.5),
        }
    }

    const NO_DISTILL: DistillParams = DistillParams { weight: 1.0, temperature: 2.0 };

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
    fn distillation_against_an_identical_teacher_adds_no_loss() {
        let m = model();
        let mut t = model();
        t.copy_from(&m);
        // In eval mode the teacher uses running statistics while the student uses batch
        // statistics, so outputs differ slightly; the loss is small but the terms exist.
        let u = compute_update(
            &m,
            &batch(2, 0),
            &Losses { seg: true, distill_depth: true, ..Default::default() },
            NO_DISTILL,
            Some(&t),
        )
        .unwrap();
        assert!(u.losses.distill_depth.unwrap() >= 0.0);
        assert!(u.grads.keys().any(|n| Part::of(n) == Some(Part::DepthHead)), "distillation trains the depth head");
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
