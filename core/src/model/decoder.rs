//! A U-Net style task head: upsample, concatenate the skip, conv-BN-ReLU, up to
//! half resolution; then a 1×1 prediction and a bilinear upsample to the input size.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::blocks::ConvBn;
use super::compute::conv2d;

#[derive(Debug)]
pub struct Decoder {
    fuse: Vec<ConvBn>,
    refine: ConvBn,
    predict: nn::Conv2D,
}

impl Decoder {
    /// `enc_channels`: the encoder's stage widths; `ratio`: decoder width relative
    /// to them; `out`: output channels (classes, or 1 for depth).
    pub fn new(p: &nn::Path, enc_channels: &[i64], ratio: f64, out: i64) -> Self {
        let width = |c: i64| ((c as f64 * ratio).round() as i64).max(4);
        let n = enc_channels.len();
        let mut deeper = width(enc_channels[n - 1]);
        // The deepest map enters through fuse[0] (no skip); fuse[k] for k ≥ 1
        // merges with encoder stage n − 1 − k.
        let mut fuse = vec![ConvBn::new(&(p / format!("fuse{}", n - 1)), enc_channels[n - 1], deeper, 3, 1)];
        for i in (0..n - 1).rev() {
            let c = width(enc_channels[i]);
            fuse.push(ConvBn::new(&(p / format!("fuse{i}")), deeper + enc_channels[i], c, 3, 1));
            deeper = c;
        }
        let refine = ConvBn::new(&(p / "refine"), deeper, deeper, 3, 1);
        let predict = nn::conv2d(p / "predict", deeper, out, 1, Default::default());
        Decoder { fuse, refine, predict }
    }

    /// Encoder features (stage `i` at stride `2^(i+1)`) → `[B, out, H, W]` for
    /// input size `(H, W)`.
    pub fn forward_t(&self, features: &[Tensor], size: (i64, i64), train: bool) -> Tensor {
        let n = features.len();
        let mut x = self.fuse[0].forward_t(&features[n - 1], train).relu();
        for (k, skip) in features[..n - 1].iter().rev().enumerate() {
            let (h, w) = (skip.size()[2], skip.size()[3]);
            let up = x.upsample_bilinear2d([h, w], false, None, None);
            x = self.fuse[k + 1].forward_t(&Tensor::cat(&[up, skip.shallow_clone()], 1), train).relu();
        }
        let x = conv2d(&self.refine.forward_t(&x, train).relu(), &self.predict, 1, 0);
        x.upsample_bilinear2d([size.0, size.1], false, None, None)
    }
}
