//! A toy model, batches and the worker parts of every method, for the merge tests.
#![allow(dead_code)] // every test file uses a different part

use dmtl_core::config::ModelConfig;
use dmtl_core::method::Losses;
use dmtl_core::model::Model;
use dmtl_core::train::{compute_update, Batch, DistillParams, Update};
use tch::{Device, Kind, Tensor};

pub const CLASSES: usize = 3;
pub const DISTILL: DistillParams = DistillParams { weight: 0.5, temperature: 2.0 };

pub fn model(seed: u64) -> Model {
    Model::new(&ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 }, CLASSES, Device::Cpu, seed)
}

/// A batch of `n` images with both labels (a part's losses pick what it uses).
pub fn batch(n: i64, seed: i64) -> Batch {
    tch::manual_seed(seed);
    Batch {
        images: Tensor::randn([n, 3, 8, 8], (Kind::Float, Device::Cpu)),
        seg: Some(Tensor::randint(CLASSES as i64, [n, 8, 8], (Kind::Int64, Device::Cpu))),
        depth: Some(Tensor::rand([n, 1, 8, 8], (Kind::Float, Device::Cpu)) + 0.5),
    }
}

pub const SEG: Losses = Losses { seg: true, depth: false, distill_seg: false, distill_depth: false };
pub const DEPTH: Losses = Losses { seg: false, depth: true, distill_seg: false, distill_depth: false };
pub const BOTH: Losses = Losses { seg: true, depth: true, distill_seg: false, distill_depth: false };
pub const SEG_DISTILL: Losses = Losses { seg: true, depth: false, distill_seg: false, distill_depth: true };
pub const DEPTH_DISTILL: Losses = Losses { seg: false, depth: true, distill_seg: true, distill_depth: false };

/// The workers of one step for each method: (name, [(losses, images) per worker]).
pub fn methods() -> Vec<(&'static str, Vec<(Losses, i64)>)> {
    vec![
        ("full/half: two both-label workers", vec![(BOTH, 3), (BOTH, 2)]),
        ("alternate, seg phase: seg workers only", vec![(SEG, 2), (SEG, 2)]),
        ("alternate, depth phase: depth workers only", vec![(DEPTH, 1), (DEPTH, 3)]),
        ("masked: two seg workers, one depth worker", vec![(SEG, 2), (SEG, 1), (DEPTH, 3)]),
        ("distill, seg phase: both heads from seg workers", vec![(SEG_DISTILL, 2), (SEG_DISTILL, 3)]),
        ("masked-distill: each head from both groups", vec![(SEG_DISTILL, 2), (DEPTH_DISTILL, 3), (DEPTH_DISTILL, 1)]),
    ]
}

/// Each worker's images of one step (made up front: `tch::manual_seed` is global).
pub fn batches(workers: &[(Losses, i64)], seed: i64) -> Vec<Batch> {
    workers.iter().enumerate().map(|(i, (_, n))| batch(*n, seed * 100 + i as i64)).collect()
}

/// Each worker's update on its own images.
pub fn updates(m: &Model, teacher: &Model, workers: &[(Losses, i64)], seed: i64) -> Vec<Update> {
    workers
        .iter()
        .zip(batches(workers, seed))
        .map(|((losses, _), b)| compute_update(m, &b, losses, DISTILL, Some(teacher)).expect("update"))
        .collect()
}
