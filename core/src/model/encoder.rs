//! The shared encoder: a ResNet-style stack of stages, each halving the resolution.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::blocks::{BasicBlock, ConvBn};
use crate::config::ModelConfig;

/// Stem (3×3 conv-BN-ReLU, stride 2) then `blocks.len()` stages; stage `i`
/// has `width · 2^i` channels and stride 2 (the first stage keeps the stem's
/// resolution). Total stride `2^len(blocks)`.
#[derive(Debug)]
pub struct Encoder {
    stem: ConvBn,
    stages: Vec<Vec<BasicBlock>>,
    channels: Vec<i64>,
}

impl Encoder {
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> Self {
        let channels: Vec<i64> = (0..cfg.blocks.len()).map(|i| cfg.width << i).collect();
        let stem = ConvBn::new(&(p / "stem"), 3, cfg.width, 3, 2);
        let mut c_in = cfg.width;
        let stages = cfg
            .blocks
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let sp = p / format!("stage{i}");
                (0..n)
                    .map(|b| {
                        let stride = if i > 0 && b == 0 { 2 } else { 1 };
                        let block = BasicBlock::new(&(&sp / format!("block{b}")), c_in, channels[i], stride);
                        c_in = channels[i];
                        block
                    })
                    .collect()
            })
            .collect();
        Encoder { stem, stages, channels }
    }

    /// Channels of each stage's output.
    pub fn channels(&self) -> &[i64] {
        &self.channels
    }

    /// `[B, 3, H, W]` → one feature map per stage, stage `i` being
    /// `[B, width·2^i, H/2^(i+1), W/2^(i+1)]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        let mut x = self.stem.forward_t(xs, train).relu();
        let mut features = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            for block in stage {
                x = block.forward_t(&x, train);
            }
            features.push(x.shallow_clone());
        }
        features
    }
}
