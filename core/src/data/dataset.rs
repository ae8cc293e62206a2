//! Loading a configured split into memory.

use std::path::Path;

use super::cityscapes::{load_all, load_sample, parallel_map, CityscapesIndex, LoadOptions};
use super::{DataError, Sample, Split};
use crate::config::DataConfig;

/// The load options of a data config.
pub fn load_options(cfg: &DataConfig) -> LoadOptions {
    LoadOptions { height: cfg.height, width: cfg.width, classes: cfg.classes, depth: cfg.depth }
}

/// Decodes `split` of `cfg.root` at the configured resolution (the first
/// `train_limit` / `val_limit` images in id order when set).
pub fn load_split(cfg: &DataConfig, split: Split) -> Result<Vec<Sample>, DataError> {
    let index = index_split(cfg, split)?;
    load_all(&index, &load_options(cfg), cfg.load_threads, None)
}

/// The index of `split` of `cfg.root`, cut to `train_limit` / `val_limit`
/// images when set: the sorted id list that image indices point into.
pub fn index_split(cfg: &DataConfig, split: Split) -> Result<CityscapesIndex, DataError> {
    let mut index = CityscapesIndex::open(Path::new(&cfg.root), split)?;
    let limit = match split {
        Split::Train => cfg.train_limit,
        Split::Val => cfg.val_limit,
    };
    if limit > 0 {
        index.entries.truncate(limit);
    }
    Ok(index)
}

/// Decodes the images at `indices` of `index` (a worker's shard), in that order.
pub fn load_indices(cfg: &DataConfig, index: &CityscapesIndex, indices: &[usize]) -> Result<Vec<Sample>, DataError> {
    let entries: Vec<_> = indices.iter().map(|&i| index.entries[i].clone()).collect();
    let opts = load_options(cfg);
    parallel_map(&entries, cfg.load_threads, |entry| load_sample(entry, &opts))
}
