//! A toy model, batches and the worker parts of every method, for the merge tests.
#![allow(dead_code)] // every test file uses a different part

use dmtl_core::config::ModelConfig;
use dmtl_core::method::Losses;
use dmtl_core::model::Model;
use dmtl_core::train::{compute_update, Batch, DistillParams, Update};
use tch::{Device, Tensor};

pub const CLASSES: usize = 3;
pub const DISTILL: DistillParams = DistillParams::uniform(0.5, 2.0);

pub fn model(seed: u64) -> Model {
    Model::new(&ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 }, CLASSES, Device::Cpu, seed)
}

/// `len` numbers in [0, 1) that depend only on `seed` and `stream` (splitmix64).
/// Not libtorch's global generator: the tests of one binary run on parallel
/// threads, and a `manual_seed` of one would change the draws of another.
fn uniform(seed: i64, stream: u64, len: usize) -> Vec<f32> {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    (0..len)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// A batch of `n` images with both labels (a part's losses pick what it uses),
/// the same for the same `(n, seed)` on any thread.
pub fn batch(n: i64, seed: i64) -> Batch {
    let pixels = (n * 8 * 8) as usize;
    let images: Vec<f32> = uniform(seed, 1, 3 * pixels).into_iter().map(|u| (u - 0.5) * 3.4).collect();
    let seg: Vec<i64> = uniform(seed, 2, pixels).into_iter().map(|u| (u * CLASSES as f32) as i64).collect();
    let depth: Vec<f32> = uniform(seed, 3, pixels).into_iter().map(|u| u + 0.5).collect();
    Batch {
        images: Tensor::from_slice(&images).reshape([n, 3, 8, 8]),
        seg: Some(Tensor::from_slice(&seg).reshape([n, 8, 8])),
        depth: Some(Tensor::from_slice(&depth).reshape([n, 1, 8, 8])),
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

/// Each worker's images of one step.
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
