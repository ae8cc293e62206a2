//! Deterministic draws from the image pools: the k-th draw from a pool is a
//! pure function of (seed, pool, k), so a run resumed from a checkpoint that
//! stored the draw counters sees exactly the images and augmentations of an
//! uninterrupted run.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::method::Pool;

/// Draws taken from each pool so far (part of a checkpoint's RNG state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawCounters(pub BTreeMap<Pool, u64>);

impl DrawCounters {
    pub fn get(&self, pool: Pool) -> u64 {
        self.0.get(&pool).copied().unwrap_or(0)
    }
}

fn mix(seed: u64, pool: Pool, a: u64, salt: u64) -> u64 {
    let mut x = seed ^ salt ^ ((pool as u64 + 1) << 56) ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Random augmentation of one draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentDraw {
    pub flip: bool,
    /// Zoom factor ≥ 1.
    pub scale: f64,
    /// Crop origin as a fraction of the free room, in [0, 1).
    pub fx: f64,
    pub fy: f64,
}

/// Epoch-wise shuffled streams over each pool's images.
#[derive(Debug, Clone)]
pub struct Sampler {
    seed: u64,
    pools: BTreeMap<Pool, Vec<usize>>,
    cache: BTreeMap<Pool, (u64, Vec<usize>)>,
}

impl Sampler {
    /// `pools`: the image indices each pool draws from (a worker passes its shard).
    pub fn new(seed: u64, pools: BTreeMap<Pool, Vec<usize>>) -> Self {
        Sampler { seed, pools, cache: BTreeMap::new() }
    }

    pub fn pool_len(&self, pool: Pool) -> usize {
        self.pools.get(&pool).map_or(0, Vec::len)
    }

    /// The image index of draw `k` from `pool` (panics on an empty pool).
    pub fn image(&mut self, pool: Pool, k: u64) -> usize {
        let items = &self.pools[&pool];
        assert!(!items.is_empty(), "pool {} is empty", pool.as_str());
        let n = items.len() as u64;
        let epoch = k / n;
        let entry = self.cache.entry(pool).or_insert((u64::MAX, Vec::new()));
        if entry.0 != epoch {
            let mut order = items.clone();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(self.seed, pool, epoch, 0xe90c)));
            *entry = (epoch, order);
        }
        entry.1[(k % n) as usize]
    }

    /// The augmentation of draw `k` from `pool`.
    pub fn augment(&self, pool: Pool, k: u64, max_scale: f64, flip: bool) -> AugmentDraw {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, pool, k, 0xa09));
        let do_flip = rng.random::<bool>();
        let scale = if max_scale > 1.0 { rng.random_range(1.0..max_scale) } else { 1.0 };
        AugmentDraw { flip: flip && do_flip, scale, fx: rng.random(), fy: rng.random() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler() -> Sampler {
        let mut pools = BTreeMap::new();
        pools.insert(Pool::Seg, vec![1, 3, 5, 7]);
        pools.insert(Pool::Depth, vec![0, 2, 4]);
        Sampler::new(9, pools)
    }

    #[test]
    fn each_epoch_visits_every_image_of_the_pool_once() {
        let mut s = sampler();
        for epoch in 0..3u64 {
            let mut seen: Vec<usize> = (0..4).map(|k| s.image(Pool::Seg, epoch * 4 + k)).collect();
            seen.sort_unstable();
            assert_eq!(seen, vec![1, 3, 5, 7]);
        }
    }

    #[test]
    fn draws_depend_only_on_seed_pool_and_index() {
        let mut a = sampler();
        let mut b = sampler();
        let forward: Vec<usize> = (0..20).map(|k| a.image(Pool::Depth, k)).collect();
        let backward: Vec<usize> = (0..20).rev().map(|k| b.image(Pool::Depth, k)).collect();
        assert_eq!(forward, backward.into_iter().rev().collect::<Vec<_>>());
        assert_eq!(a.augment(Pool::Seg, 5, 1.5, true), b.augment(Pool::Seg, 5, 1.5, true));
    }

    #[test]
    fn augmentation_stays_in_range_and_can_be_switched_off() {
        let s = sampler();
        for k in 0..200 {
            let a = s.augment(Pool::Seg, k, 1.5, true);
            assert!((1.0..1.5).contains(&a.scale) && (0.0..1.0).contains(&a.fx));
            let off = s.augment(Pool::Seg, k, 1.0, false);
            assert!(!off.flip && off.scale == 1.0);
        }
    }
}
