//! The multi-task network: one shared encoder, a segmentation head and a depth head.

use tch::nn;
use tch::Tensor;

use super::decoder::Decoder;
use super::encoder::Encoder;
use crate::config::ModelConfig;

/// Variable-name prefixes; the distributed merge groups parameters by them.
pub const ENCODER: &str = "encoder";
pub const SEG_HEAD: &str = "seg_head";
pub const DEPTH_HEAD: &str = "depth_head";

/// The three parts of the model, as named by the variables' prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Encoder,
    SegHead,
    DepthHead,
}

impl Part {
    /// The part a variable belongs to, from its name.
    pub fn of(name: &str) -> Option<Part> {
        match name.split('.').next() {
            Some(ENCODER) => Some(Part::Encoder),
            Some(SEG_HEAD) => Some(Part::SegHead),
            Some(DEPTH_HEAD) => Some(Part::DepthHead),
            _ => None,
        }
    }
}

/// Outputs of a forward pass; a head that was not asked for is `None`.
#[derive(Debug)]
pub struct Outputs {
    /// Segmentation logits `[B, classes, H, W]`.
    pub seg: Option<Tensor>,
    /// Depth (or disparity) `[B, 1, H, W]`.
    pub depth: Option<Tensor>,
}

#[derive(Debug)]
pub struct MultiTaskNet {
    encoder: Encoder,
    seg_head: Decoder,
    depth_head: Decoder,
}

impl MultiTaskNet {
    pub fn new(root: &nn::Path, cfg: &ModelConfig, classes: i64) -> Self {
        let encoder = Encoder::new(&(root / ENCODER), cfg);
        let channels = encoder.channels().to_vec();
        MultiTaskNet {
            seg_head: Decoder::new(&(root / SEG_HEAD), &channels, cfg.decoder_ratio, classes),
            depth_head: Decoder::new(&(root / DEPTH_HEAD), &channels, cfg.decoder_ratio, 1),
            encoder,
        }
    }

    /// `[B, 3, H, W]` (H, W multiples of the stride) → the requested heads' outputs.
    pub fn forward_t(&self, xs: &Tensor, train: bool, seg: bool, depth: bool) -> Outputs {
        let size = (xs.size()[2], xs.size()[3]);
        let features = self.encoder.forward_t(xs, train);
        Outputs {
            seg: seg.then(|| self.seg_head.forward_t(&features, size, train)),
            depth: depth.then(|| self.depth_head.forward_t(&features, size, train)),
        }
    }
}
