//! Colours: the Cityscapes class palette, one colour map for depth, and the
//! tiles and legend strip that panels and the qualitative grid are made of.

use image::{Rgb, RgbImage};

use super::font::{draw_text, fit_text, text_width, LINE_HEIGHT};
use crate::data::{DepthTarget, LabelSet};

/// Figure background.
pub const BACKGROUND: [u8; 3] = [24, 24, 24];
/// Caption colour.
pub const INK: [u8; 3] = [235, 235, 235];
/// Pixels without a value: ignored labels, invalid depth.
pub const INVALID: [u8; 3] = [0, 0, 0];

/// Anchors of the depth colour map (viridis), evenly spaced from 0 to 1.
const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// The colour map at `t` in `[0, 1]` (clamped), linear between anchors.
pub fn colormap(t: f32) -> [u8; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (VIRIDIS.len() - 1) as f32;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f32;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    std::array::from_fn(|c| (f32::from(a[c]) + f * (f32::from(b[c]) - f32::from(a[c]))).round() as u8)
}

/// The value range that one colour map spans for one image, shared by its
/// ground truth and every prediction of it: the 1st to 99th percentile of
/// the valid (> 0) ground-truth values. Near is bright: high disparity, low
/// metric depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthRange {
    pub lo: f32,
    pub hi: f32,
    pub target: DepthTarget,
}

impl DepthRange {
    /// The range of the valid values of `truth` (`[0, 1]` when none is valid).
    pub fn of(truth: &[f32], target: DepthTarget) -> Self {
        let mut valid: Vec<f32> = truth.iter().copied().filter(|v| *v > 0.0 && v.is_finite()).collect();
        if valid.is_empty() {
            return DepthRange { lo: 0.0, hi: 1.0, target };
        }
        valid.sort_by(f32::total_cmp);
        let at = |q: f32| valid[((valid.len() - 1) as f32 * q).round() as usize];
        let (lo, hi) = (at(0.01), at(0.99));
        let hi = if hi > lo { hi } else { lo + 1.0 };
        DepthRange { lo, hi, target }
    }

    /// The colour of `value`; with `mask`, non-positive values are [`INVALID`].
    pub fn color(&self, value: f32, mask: bool) -> [u8; 3] {
        if (mask && value <= 0.0) || !value.is_finite() {
            return INVALID;
        }
        let t = (value - self.lo) / (self.hi - self.lo);
        colormap(match self.target {
            DepthTarget::Disparity => t,
            DepthTarget::Depth => 1.0 - t,
        })
    }

    fn unit(&self) -> &'static str {
        match self.target {
            DepthTarget::Disparity => "disparity px",
            DepthTarget::Depth => "depth m",
        }
    }
}

/// An RGB image `[h, w, 3]` as a tile, each pixel a `scale × scale` block.
pub fn image_tile(rgb: &[u8], width: usize, height: usize, scale: u32) -> RgbImage {
    scaled(width, height, scale, |i| [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]])
}

/// A class map (class indices, 255 ignored) in the Cityscapes palette.
pub fn seg_tile(classes: &[u8], width: usize, height: usize, set: LabelSet, scale: u32) -> RgbImage {
    scaled(width, height, scale, |i| set.color_of_class(classes[i]))
}

/// A depth map in the colour map of `range`; with `mask`, values ≤ 0 are black.
pub fn depth_tile(values: &[f32], width: usize, height: usize, range: &DepthRange, mask: bool, scale: u32) -> RgbImage {
    scaled(width, height, scale, |i| range.color(values[i], mask))
}

fn scaled(width: usize, height: usize, scale: u32, color: impl Fn(usize) -> [u8; 3]) -> RgbImage {
    let scale = scale.max(1);
    RgbImage::from_fn(width as u32 * scale, height as u32 * scale, |x, y| {
        Rgb(color((y / scale) as usize * width + (x / scale) as usize))
    })
}

/// Copies `tile` into `canvas` with its top-left corner at `(x, y)` (clipped).
pub fn blit(canvas: &mut RgbImage, tile: &RgbImage, x: u32, y: u32) {
    for (tx, ty, p) in tile.enumerate_pixels() {
        if x + tx < canvas.width() && y + ty < canvas.height() {
            canvas.put_pixel(x + tx, y + ty, *p);
        }
    }
}

/// A canvas of `width × height` filled with [`BACKGROUND`].
pub fn canvas(width: u32, height: u32) -> RgbImage {
    RgbImage::from_pixel(width, height, Rgb(BACKGROUND))
}

/// A legend strip `width` pixels wide: a colour swatch and the name of every
/// class of `set`, wrapped onto as many lines as needed, then (with a depth
/// range) a colour bar from its low to its high value.
pub fn legend(width: u32, set: LabelSet, depth: Option<&DepthRange>, scale: u32) -> RgbImage {
    let scale = scale.max(1);
    let line = LINE_HEIGHT * scale;
    let pad = 4 * scale;
    let swatch = line - 2 * scale;
    // Lay the entries out first to know the height.
    let mut placed = Vec::new();
    let (mut x, mut y) = (pad, pad);
    for (class, name) in set.class_names().into_iter().enumerate() {
        let name = fit_text(name, width.saturating_sub(2 * pad + swatch + 3 * scale), scale);
        let entry = swatch + 3 * scale + text_width(&name, scale);
        if x > pad && x + entry + pad > width {
            x = pad;
            y += line;
        }
        placed.push((x, y, class as u8, name));
        x += entry + 3 * pad;
    }
    let mut height = y + line + pad;
    let bar_y = height;
    if depth.is_some() {
        height += line + pad;
    }
    let mut strip = canvas(width, height);
    for (x, y, class, name) in placed {
        let color = Rgb(set.color_of_class(class));
        for dy in 0..swatch {
            for dx in 0..swatch {
                if x + dx < width {
                    strip.put_pixel(x + dx, y + dy, color);
                }
            }
        }
        draw_text(&mut strip, i64::from(x + swatch + 3 * scale), i64::from(y), &name, INK, scale);
    }
    if let Some(range) = depth {
        let low = format!("{}: {}", range.unit(), short(range.lo));
        let high = short(range.hi);
        let left = pad + text_width(&low, scale) + 3 * scale;
        let right = width.saturating_sub(pad + text_width(&high, scale) + 3 * scale);
        draw_text(&mut strip, i64::from(pad), i64::from(bar_y), &low, INK, scale);
        if right > left {
            for bx in left..right {
                let t = (bx - left) as f32 / (right - left).max(2).saturating_sub(1) as f32;
                let value = range.lo + t * (range.hi - range.lo);
                for dy in 0..swatch {
                    strip.put_pixel(bx, bar_y + dy, Rgb(range.color(value, false)));
                }
            }
            draw_text(&mut strip, i64::from(right + 3 * scale), i64::from(bar_y), &high, INK, scale);
        }
    }
    strip
}

/// A number in at most 4 significant digits.
fn short(v: f32) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colour_map_runs_from_its_first_to_its_last_anchor() {
        assert_eq!(colormap(0.0), VIRIDIS[0]);
        assert_eq!(colormap(1.0), VIRIDIS[8]);
        assert_eq!(colormap(-3.0), VIRIDIS[0]);
        assert_eq!(colormap(f32::NAN), VIRIDIS[0]);
        assert_eq!(colormap(0.5), VIRIDIS[4]);
    }

    #[test]
    fn near_is_bright_for_disparity_and_for_depth() {
        let brightness = |c: [u8; 3]| c.iter().map(|&v| u32::from(v)).sum::<u32>();
        let values: Vec<f32> = (1..=100).map(|v| v as f32).collect();
        let disparity = DepthRange::of(&values, DepthTarget::Disparity);
        assert!(brightness(disparity.color(99.0, true)) > brightness(disparity.color(2.0, true)));
        let depth = DepthRange::of(&values, DepthTarget::Depth);
        assert!(brightness(depth.color(2.0, true)) > brightness(depth.color(99.0, true)));
        assert_eq!(depth.color(0.0, true), INVALID);
        assert_ne!(depth.color(0.0, false), INVALID);
    }

    #[test]
    fn a_range_without_valid_values_is_still_usable() {
        let r = DepthRange::of(&[0.0, 0.0], DepthTarget::Disparity);
        assert!(r.hi > r.lo);
        let flat = DepthRange::of(&[3.0, 3.0], DepthTarget::Disparity);
        assert!(flat.hi > flat.lo);
    }

    #[test]
    fn tiles_are_scaled_by_whole_pixels() {
        let tile = seg_tile(&[0, 255], 2, 1, LabelSet::TrainIds19, 3);
        assert_eq!(tile.dimensions(), (6, 3));
        assert_eq!(tile.get_pixel(2, 2).0, [128, 64, 128]);
        assert_eq!(tile.get_pixel(3, 0).0, INVALID);
    }

    #[test]
    fn the_legend_wraps_to_its_width_and_shows_every_class() {
        for set in [LabelSet::Categories7, LabelSet::TrainIds19] {
            let range = DepthRange::of(&[1.0, 50.0], DepthTarget::Disparity);
            let strip = legend(200, set, Some(&range), 1);
            assert_eq!(strip.width(), 200);
            for class in 0..set.num_classes() as u8 {
                let color = set.color_of_class(class);
                assert!(strip.pixels().any(|p| p.0 == color), "{set:?} class {class}");
            }
        }
        let narrow = legend(200, LabelSet::TrainIds19, None, 1);
        let wide = legend(2000, LabelSet::TrainIds19, None, 1);
        assert!(narrow.height() > wide.height());
    }
}
