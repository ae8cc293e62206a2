//! What to generate ([`SyntheticSpec`], the arguments of `dmtl
//! gen-synthetic`), what generating did ([`GenerateSummary`]) and the name of
//! the marker written last.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::error::DataError;

/// What to generate (the arguments of `dmtl gen-synthetic`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    /// The dataset root to write (created if missing).
    pub out: PathBuf,
    /// Number of training images (≥ 1).
    pub train: usize,
    /// Number of validation images (≥ 1).
    pub val: usize,
    /// Image height in pixels (≥ 16, a multiple of 16).
    pub height: u32,
    /// Image width in pixels (≥ 16, a multiple of 16).
    pub width: u32,
    /// Dataset seed: the same spec always writes the same bytes.
    pub seed: u64,
}

/// What [`generate`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateSummary {
    /// Images written (train + val), four files each.
    pub images: usize,
    /// Wall-clock seconds taken.
    pub wall_s: f64,
}

/// The name of the marker written last.
pub const COMPLETE_MARKER: &str = ".complete";

impl SyntheticSpec {
    /// Checks the sizes and counts; the error names the offending option.
    pub fn validate(&self) -> Result<(), DataError> {
        for (name, value) in [("--height", self.height), ("--width", self.width)] {
            if value < 16 || value % 16 != 0 {
                return Err(DataError::invalid(
                    &self.out,
                    format!("{name} must be at least 16 and a multiple of 16 (got {value})"),
                ));
            }
        }
        for (name, value) in [("--train", self.train), ("--val", self.val)] {
            if value == 0 {
                return Err(DataError::invalid(&self.out, format!("{name} must be at least 1 (got 0)")));
            }
        }
        Ok(())
    }
}
