//! Samples → a [`Batch`] of tensors.

use tch::Tensor;

use super::Sample;

/// Images and the labels a batch part may use, on the model's device.
#[derive(Debug)]
pub struct Batch {
    /// `[B, 3, H, W]`, normalised.
    pub images: Tensor,
    /// `[B, H, W]` int64 class indices (255 = ignore), when seg labels may be used.
    pub seg: Option<Tensor>,
    /// `[B, 1, H, W]` float, 0 = invalid, when depth labels may be used.
    pub depth: Option<Tensor>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_device(&self, device: tch::Device) -> Batch {
        Batch {
            images: self.images.to_device(device),
            seg: self.seg.as_ref().map(|t| t.to_device(device)),
            depth: self.depth.as_ref().map(|t| t.to_device(device)),
        }
    }
}

/// ImageNet statistics, used to normalise images.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Stacks samples (all of one size) into a CPU batch; labels only where allowed.
pub fn build_batch(samples: &[&Sample], with_seg: bool, with_depth: bool) -> Batch {
    let n = samples.len();
    let (h, w) = samples.first().map_or((0, 0), |s| (s.height, s.width));
    let hw = h * w;
    let mut images = vec![0f32; n * 3 * hw];
    for (i, s) in samples.iter().enumerate() {
        let dst = &mut images[i * 3 * hw..(i + 1) * 3 * hw];
        for (p, px) in s.image.chunks_exact(3).enumerate() {
            for c in 0..3 {
                dst[c * hw + p] = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
            }
        }
    }
    let shape = [n as i64, 3, h as i64, w as i64];
    let images = Tensor::from_slice(&images).reshape(shape);
    let seg = with_seg.then(|| {
        let labels: Vec<i64> = samples.iter().flat_map(|s| s.label.iter().map(|&l| l as i64)).collect();
        Tensor::from_slice(&labels).reshape([n as i64, h as i64, w as i64])
    });
    let depth = with_depth.then(|| {
        let depth: Vec<f32> = samples.iter().flat_map(|s| s.depth.iter().copied()).collect();
        Tensor::from_slice(&depth).reshape([n as i64, 1, h as i64, w as i64])
    });
    Batch { images, seg, depth }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_channels_first_and_normalised() {
        let s = Sample {
            id: "a".into(),
            height: 1,
            width: 2,
            image: vec![255, 0, 0, 0, 255, 0],
            label: vec![3, 255],
            depth: vec![1.5, 0.0],
        };
        let b = build_batch(&[&s, &s], true, false);
        assert_eq!(b.images.size(), vec![2, 3, 1, 2]);
        let r = b.images.double_value(&[0, 0, 0, 0]);
        assert!((r - ((1.0 - 0.485) / 0.229)).abs() < 1e-5);
        assert_eq!(b.seg.unwrap().int64_value(&[1, 0, 1]), 255);
        assert!(b.depth.is_none(), "depth labels are left out when not allowed");
    }
}
