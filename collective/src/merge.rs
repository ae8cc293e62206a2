//! `core::train::merge` as one all-reduce: the merged update that the
//! coordinator computes on the `grpc` plane, computed by every worker at once.
//!
//! Every worker lays out the same flat float32 buffer (the order comes from
//! the model, identical on every worker):
//!
//! ```text
//! [ Σ-parts: tensor_i · samples for every tensor (zeros where the update lacks it) ]
//! [ weights: samples for every tensor the update carries, else 0                  ]
//! [ losses:  value · samples, samples for seg, depth, distill_seg, distill_depth, total ]
//! [ samples ]
//! ```
//!
//! After a sum all-reduce, tensor_i = Σ(t·w) / Σw over exactly the workers
//! that carry it — the shared encoder over all of them, a head over the
//! workers that trained it, whichever task they belong to — which is
//! `merge`'s sample-weighted mean. One communicator over all workers of the
//! round is therefore enough for every method (no per-head communicators).

use std::collections::BTreeMap;

use dmtl_core::model::Model;
use dmtl_core::train::{LossValues, Update};
use tch::{Device, Kind, Tensor};

use crate::collective::{Collective, CollectiveError};

#[derive(Debug, Clone)]
struct Slot {
    name: String,
    shape: Vec<i64>,
    kind: Kind,
    offset: i64,
    numel: i64,
}

/// Where every tensor of an update sits in the flat all-reduce buffer.
#[derive(Debug, Clone)]
pub struct MergeLayout {
    grads: Vec<Slot>,
    buffers: Vec<Slot>,
    values: i64,
}

const LOSSES: usize = 5;

fn loss_fields(l: &LossValues) -> [Option<f64>; LOSSES] {
    [l.seg, l.depth, l.distill_seg, l.distill_depth, Some(l.total)]
}

impl MergeLayout {
    /// The layout of `model`'s parameters (as gradients) and buffers, in name order.
    pub fn of(model: &Model) -> MergeLayout {
        let mut offset = 0;
        let mut slots = |tensors: BTreeMap<String, Tensor>| -> Vec<Slot> {
            tensors
                .into_iter()
                .map(|(name, t)| {
                    let numel = t.numel() as i64;
                    let slot = Slot { name, shape: t.size(), kind: t.kind(), offset, numel };
                    offset += numel;
                    slot
                })
                .collect()
        };
        let grads = slots(model.parameters());
        let buffers = slots(model.buffers());
        MergeLayout { grads, buffers, values: offset }
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.grads.iter().chain(&self.buffers)
    }

    fn tensors(&self) -> usize {
        self.grads.len() + self.buffers.len()
    }

    /// Float32 values in the all-reduce buffer.
    pub fn len(&self) -> i64 {
        self.values + self.tensors() as i64 + 2 * LOSSES as i64 + 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This worker's contribution: the flat buffer on `device`.
    fn pack(&self, update: &Update, device: Device) -> Tensor {
        let w = update.samples as f64;
        let mut pieces = Vec::with_capacity(self.tensors() + 1);
        let mut weights = Vec::with_capacity(self.tensors() + 2 * LOSSES + 1);
        let mut add = |slot: &Slot, map: &BTreeMap<String, Tensor>| match map.get(&slot.name) {
            Some(t) => {
                pieces.push(t.to_device(device).to_kind(Kind::Float).flatten(0, -1) * w);
                weights.push(w as f32);
            }
            None => {
                pieces.push(Tensor::zeros([slot.numel], (Kind::Float, device)));
                weights.push(0.0);
            }
        };
        for slot in &self.grads {
            add(slot, &update.grads);
        }
        for slot in &self.buffers {
            add(slot, &update.buffers);
        }
        for v in loss_fields(&update.losses) {
            weights.extend(match v {
                Some(v) => [(v * w) as f32, w as f32],
                None => [0.0, 0.0],
            });
        }
        weights.push(w as f32);
        pieces.push(Tensor::from_slice(&weights).to_device(device));
        Tensor::cat(&pieces, 0)
    }

    /// The merged update from the summed buffer.
    fn unpack(&self, sum: &Tensor) -> Update {
        let tail: Vec<f32> = Vec::try_from(sum.narrow(0, self.values, self.len() - self.values).to_device(Device::Cpu))
            .expect("a float32 buffer");
        let (weights, rest) = tail.split_at(self.tensors());
        let merged = |slots: &[Slot], weights: &[f32]| -> BTreeMap<String, Tensor> {
            slots
                .iter()
                .zip(weights)
                .filter(|(_, w)| **w > 0.0)
                .map(|(s, w)| {
                    let t = sum.narrow(0, s.offset, s.numel).view(s.shape.as_slice()) / f64::from(*w);
                    (s.name.clone(), t.to_kind(s.kind))
                })
                .collect()
        };
        let (gw, bw) = weights.split_at(self.grads.len());
        let loss = |i: usize| {
            let (vw, w) = (rest[2 * i], rest[2 * i + 1]);
            (w > 0.0).then(|| f64::from(vw) / f64::from(w))
        };
        Update {
            grads: merged(&self.grads, gw),
            buffers: merged(&self.buffers, bw),
            samples: rest[2 * LOSSES].round() as usize,
            losses: LossValues {
                seg: loss(0),
                depth: loss(1),
                distill_seg: loss(2),
                distill_depth: loss(3),
                total: loss(4).unwrap_or(0.0),
            },
        }
    }

    /// The names in the layout, for checks.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots().map(|s| s.name.as_str())
    }
}

/// Merges this worker's `update` with every other member's, as
/// `core::train::merge` would merge all of them: one sum all-reduce of the
/// packed buffer on `device` (the collective's device). Every member calls
/// it with the same layout; a member without work passes an empty update
/// (samples 0), which contributes nothing.
pub fn all_reduce_merge(
    collective: &dyn Collective,
    layout: &MergeLayout,
    update: &Update,
    device: Device,
) -> Result<Update, CollectiveError> {
    let unknown: Vec<&String> =
        update.grads.keys().chain(update.buffers.keys()).filter(|n| !layout.names().any(|m| m == *n)).collect();
    if let Some(name) = unknown.first() {
        return Err(CollectiveError::Buffer(format!("tensor `{name}` of the update is not in the model")));
    }
    let mut buf = layout.pack(update, device);
    collective.all_reduce_sum(&mut buf)?;
    Ok(layout.unpack(&buf))
}
