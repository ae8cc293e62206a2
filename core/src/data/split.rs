//! The disjoint split of the training images into D_seg and D_depth, and its
//! manifest in the run directory.

use std::collections::BTreeMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::DataError;
use crate::method::Pool;

/// Which half an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Half {
    Seg,
    Depth,
}

/// A seeded split of `n` images (by index into the sorted id list) into two
/// disjoint halves that together cover every image. D_seg gets ⌈n/2⌉.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisjointSplit {
    pub seed: u64,
    pub ids: Vec<String>,
    /// Indices of D_seg, ascending.
    pub seg: Vec<usize>,
    /// Indices of D_depth, ascending.
    pub depth: Vec<usize>,
}

const SPLIT_SALT: u64 = 0x5317_d15c;

impl DisjointSplit {
    pub fn new(ids: &[String], seed: u64) -> Self {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ SPLIT_SALT));
        let n_seg = ids.len().div_ceil(2);
        let mut seg = order[..n_seg].to_vec();
        let mut depth = order[n_seg..].to_vec();
        seg.sort_unstable();
        depth.sort_unstable();
        DisjointSplit { seed, ids: ids.to_vec(), seg, depth }
    }

    /// The image indices of a pool.
    pub fn pool(&self, pool: Pool) -> Vec<usize> {
        match pool {
            Pool::Seg => self.seg.clone(),
            Pool::Depth => self.depth.clone(),
            Pool::All => (0..self.ids.len()).collect(),
        }
    }

    /// Image id → half, sorted by id.
    pub fn assignment(&self) -> BTreeMap<String, Half> {
        let mut m = BTreeMap::new();
        for &i in &self.seg {
            m.insert(self.ids[i].clone(), Half::Seg);
        }
        for &i in &self.depth {
            m.insert(self.ids[i].clone(), Half::Depth);
        }
        m
    }

    pub fn manifest(&self) -> Manifest {
        Manifest { seed: self.seed, seg: self.seg.len(), depth: self.depth.len(), images: self.assignment() }
    }
}

/// `split.json` in the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub seed: u64,
    /// Images in D_seg and D_depth.
    pub seg: usize,
    pub depth: usize,
    /// Image id → `seg` | `depth`.
    pub images: BTreeMap<String, Half>,
}

impl Manifest {
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        let text = serde_json::to_string_pretty(self).expect("a manifest serialises");
        crate::tensor_io::write_atomic(path, text.as_bytes()).map_err(|e| DataError::io(path, e))
    }

    pub fn read(path: &Path) -> Result<Manifest, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| DataError::invalid(path, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("city_{i:06}_000019")).collect()
    }

    proptest! {
        #[test]
        fn the_halves_are_disjoint_and_cover_every_image(n in 0usize..500, seed in any::<u64>()) {
            let s = DisjointSplit::new(&ids(n), seed);
            let mut all: Vec<usize> = s.seg.iter().chain(&s.depth).copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
            prop_assert_eq!(s.seg.len(), n.div_ceil(2));
            prop_assert_eq!(s.assignment().len(), n);
        }
    }

    #[test]
    fn the_split_is_deterministic_in_the_seed() {
        assert_eq!(DisjointSplit::new(&ids(100), 4), DisjointSplit::new(&ids(100), 4));
        assert_ne!(DisjointSplit::new(&ids(100), 4).seg, DisjointSplit::new(&ids(100), 5).seg);
    }

    #[test]
    fn the_manifest_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let m = DisjointSplit::new(&ids(9), 1).manifest();
        let p = dir.path().join("split.json");
        m.write(&p).unwrap();
        assert_eq!(Manifest::read(&p).unwrap(), m);
        assert_eq!(m.seg + m.depth, 9);
    }
}
