//! Augmentation of one sample: random scale-crop and horizontal flip.
//!
//! A scale-crop by `s` takes a window `1/s` of the image and resizes it back,
//! like moving the camera closer: disparity (inverse depth, in pixels) grows by
//! the resize factor, metric depth shrinks by it. Images are resized
//! bilinearly, labels and depth by nearest neighbour (invalid stays 0).

use super::resize::{resize_bilinear_u8, resize_nearest};
use super::sampler::AugmentDraw;
use super::{DepthTarget, Sample};

fn crop<T: Copy>(src: &[T], width: usize, channels: usize, x0: usize, y0: usize, cw: usize, ch: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(cw * ch * channels);
    for y in y0..y0 + ch {
        let row = (y * width + x0) * channels;
        out.extend_from_slice(&src[row..row + cw * channels]);
    }
    out
}

fn flip_rows<T: Copy>(data: &mut [T], width: usize, channels: usize) {
    for row in data.chunks_mut(width * channels) {
        for x in 0..width / 2 {
            for c in 0..channels {
                row.swap(x * channels + c, (width - 1 - x) * channels + c);
            }
        }
    }
}

/// Returns the augmented copy of `sample` (same size).
pub fn augment(sample: &Sample, draw: &AugmentDraw, target: DepthTarget) -> Sample {
    let (w, h) = (sample.width, sample.height);
    let mut out = sample.clone();
    if draw.scale > 1.0 {
        let cw = ((w as f64 / draw.scale).round() as usize).clamp(1, w);
        let ch = ((h as f64 / draw.scale).round() as usize).clamp(1, h);
        let x0 = ((draw.fx * (w - cw + 1) as f64) as usize).min(w - cw);
        let y0 = ((draw.fy * (h - ch + 1) as f64) as usize).min(h - ch);
        let image = crop(&sample.image, w, 3, x0, y0, cw, ch);
        out.image = resize_bilinear_u8(&image, cw, ch, 3, w, h);
        out.label = resize_nearest(&crop(&sample.label, w, 1, x0, y0, cw, ch), cw, ch, w, h);
        let factor = (w as f64 / cw as f64) as f32;
        let depth = resize_nearest(&crop(&sample.depth, w, 1, x0, y0, cw, ch), cw, ch, w, h);
        out.depth = match target {
            DepthTarget::Disparity => depth.into_iter().map(|d| d * factor).collect(),
            DepthTarget::Depth => depth.into_iter().map(|d| d / factor).collect(),
        };
    }
    if draw.flip {
        flip_rows(&mut out.image, w, 3);
        flip_rows(&mut out.label, w, 1);
        flip_rows(&mut out.depth, w, 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let (w, h) = (8, 4);
        Sample {
            id: "x".into(),
            height: h,
            width: w,
            image: (0..w * h * 3).map(|i| (i % 251) as u8).collect(),
            label: (0..w * h).map(|i| (i % w) as u8).collect(),
            depth: (0..w * h).map(|i| if i % 5 == 0 { 0.0 } else { 2.0 }).collect(),
        }
    }

    #[test]
    fn no_scale_and_no_flip_is_the_identity() {
        let s = sample();
        let a = augment(&s, &AugmentDraw { flip: false, scale: 1.0, fx: 0.3, fy: 0.7 }, DepthTarget::Disparity);
        assert_eq!(a, s);
    }

    #[test]
    fn flipping_mirrors_each_row() {
        let s = sample();
        let a = augment(&s, &AugmentDraw { flip: true, scale: 1.0, fx: 0.0, fy: 0.0 }, DepthTarget::Disparity);
        assert_eq!(&a.label[..8], &[7, 6, 5, 4, 3, 2, 1, 0]);
        assert_eq!(&a.image[..3], &s.image[7 * 3..8 * 3]);
    }

    #[test]
    fn zooming_in_by_two_doubles_disparity_and_halves_depth() {
        let s = sample();
        let draw = AugmentDraw { flip: false, scale: 2.0, fx: 0.0, fy: 0.0 };
        let disp = augment(&s, &draw, DepthTarget::Disparity);
        assert!(disp.depth.iter().all(|&d| d == 0.0 || d == 4.0));
        assert!(disp.depth.contains(&0.0), "invalid pixels stay invalid");
        let depth = augment(&s, &draw, DepthTarget::Depth);
        assert!(depth.depth.iter().all(|&d| d == 0.0 || d == 1.0));
        assert_eq!((disp.width, disp.height, disp.label.len()), (8, 4, 32));
        // The left half of the first row, stretched: labels 0,0,1,1,2,2,3,3.
        assert_eq!(&disp.label[..8], &[0, 0, 1, 1, 2, 2, 3, 3]);
    }
}
