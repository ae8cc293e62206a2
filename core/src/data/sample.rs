//! In-memory samples, already resized to the training resolution.

use serde::{Deserialize, Serialize};

/// A dataset split (folder name under `leftImg8bit/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "val" => Ok(Split::Val),
            other => Err(format!("unknown split `{other}` (expected train or val)")),
        }
    }
}

/// What the depth head regresses (config `data.depth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DepthTarget {
    /// Disparity in pixels at the training resolution (the file's disparity
    /// scaled by the width ratio).
    #[default]
    Disparity,
    /// Metric depth in metres: `baseline · fx / disparity`, from camera.json.
    Depth,
}

/// One image with both labels, at the training resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `<city>_<seq>_<frame>`, unique within a split.
    pub id: String,
    pub height: usize,
    pub width: usize,
    /// RGB, row-major `[height, width, 3]`.
    pub image: Vec<u8>,
    /// Class index per pixel (train id or category), 255 = ignore; `[height, width]`.
    pub label: Vec<u8>,
    /// Depth target per pixel ([`DepthTarget`]), 0 = invalid; `[height, width]`.
    pub depth: Vec<f32>,
}
