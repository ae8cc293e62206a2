//! Convolution building blocks: conv + BatchNorm, and the residual basic block.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::compute::conv2d;

/// `conv(k×k, no bias) → BatchNorm`. Input `[B, c_in, H, W]`, output
/// `[B, c_out, H/stride, W/stride]`.
#[derive(Debug)]
pub struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    stride: i64,
    padding: i64,
}

impl ConvBn {
    pub fn new(p: &nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> Self {
        let cfg = nn::ConvConfig { stride, padding: k / 2, bias: false, ..Default::default() };
        let bn_cfg = nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), ..Default::default() };
        ConvBn {
            conv: nn::conv2d(p / "conv", c_in, c_out, k, cfg),
            bn: nn::batch_norm2d(p / "bn", c_out, bn_cfg),
            stride,
            padding: k / 2,
        }
    }
}

impl ModuleT for ConvBn {
    /// In the input's kind; BatchNorm takes a bfloat16 input with its float32
    /// weights and running statistics as they are.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        conv2d(xs, &self.conv, self.stride, self.padding).apply_t(&self.bn, train)
    }
}

/// The ResNet basic block: two 3×3 conv-BN with a residual connection (a 1×1
/// conv-BN projection when the stride or the width changes).
#[derive(Debug)]
pub struct BasicBlock {
    conv1: ConvBn,
    conv2: ConvBn,
    shortcut: Option<ConvBn>,
}

impl BasicBlock {
    pub fn new(p: &nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let shortcut = (stride != 1 || c_in != c_out).then(|| ConvBn::new(&(p / "shortcut"), c_in, c_out, 1, stride));
        BasicBlock {
            conv1: ConvBn::new(&(p / "conv1"), c_in, c_out, 3, stride),
            conv2: ConvBn::new(&(p / "conv2"), c_out, c_out, 3, 1),
            shortcut,
        }
    }
}

impl ModuleT for BasicBlock {
    /// `[B, c_in, H, W]` → `[B, c_out, H/stride, W/stride]`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = self.conv1.forward_t(xs, train).relu();
        let ys = self.conv2.forward_t(&ys, train);
        let skip = match &self.shortcut {
            Some(s) => s.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        (ys + skip).relu()
    }
}
