//! Loading a configured split into memory.

use std::path::Path;

use super::cityscapes::{load_all, CityscapesIndex, LoadOptions};
use super::{DataError, Sample, Split};
use crate::config::DataConfig;

/// The load options of a data config.
pub fn load_options(cfg: &DataConfig) -> LoadOptions {
    LoadOptions { height: cfg.height, width: cfg.width, classes: cfg.classes, depth: cfg.depth }
}

/// Decodes `split` of `cfg.root` at the configured resolution (the first
/// `train_limit` / `val_limit` images in id order when set).
pub fn load_split(cfg: &DataConfig, split: Split) -> Result<Vec<Sample>, DataError> {
    let index = CityscapesIndex::open(Path::new(&cfg.root), split)?;
    let limit = match split {
        Split::Train => cfg.train_limit,
        Split::Val => cfg.val_limit,
    };
    load_all(&index, &load_options(cfg), cfg.load_threads, (limit > 0).then_some(limit))
}
