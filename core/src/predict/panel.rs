//! The per-image panel: image | seg ground truth | seg prediction | depth
//! ground truth | depth prediction, captioned, with a legend strip (classes
//! and the depth colour bar). Drawn at the model's resolution, small images
//! enlarged by whole pixels.

use image::RgbImage;

use super::font::{draw_text, fit_text, LINE_HEIGHT};
use super::palette::{blit, canvas, depth_tile, image_tile, legend, seg_tile, DepthRange, INK};
use crate::data::{DepthTarget, LabelSet, Sample};

/// The whole-pixel enlargement of a tile `width` pixels wide: tiles are
/// drawn at least 256 pixels wide.
pub fn tile_scale(width: usize) -> u32 {
    (256 / width.max(1)).max(1) as u32
}

/// The text scale for tiles `tile_width` pixels wide.
pub fn text_scale(tile_width: u32) -> u32 {
    1 + tile_width / 600
}

/// The panel of one sample and the model's prediction of it (class indices
/// and depth values at the sample's resolution, in the model's class space
/// and depth target).
///
/// # Panics
/// If a prediction does not have the sample's size.
pub fn panel(sample: &Sample, pred_classes: &[u8], pred_depth: &[f32], set: LabelSet, target: DepthTarget) -> RgbImage {
    let (w, h) = (sample.width, sample.height);
    assert_eq!(pred_classes.len(), w * h, "panel: class map is not {h}x{w}");
    assert_eq!(pred_depth.len(), w * h, "panel: depth map is not {h}x{w}");
    let scale = tile_scale(w);
    let range = DepthRange::of(&sample.depth, target);
    let tiles = [
        ("image", image_tile(&sample.image, w, h, scale)),
        ("seg truth", seg_tile(&sample.label, w, h, set, scale)),
        ("seg prediction", seg_tile(pred_classes, w, h, set, scale)),
        ("depth truth", depth_tile(&sample.depth, w, h, &range, true, scale)),
        ("depth prediction", depth_tile(pred_depth, w, h, &range, false, scale)),
    ];
    let (tw, th) = tiles[0].1.dimensions();
    let ts = text_scale(tw);
    let pad = 4 * ts;
    let caption = LINE_HEIGHT * ts;
    let width = tiles.len() as u32 * (tw + pad) + pad;
    let strip = legend(width, set, Some(&range), ts);
    let mut out = canvas(width, pad + caption + th + strip.height());
    for (i, (name, tile)) in tiles.iter().enumerate() {
        let x = pad + i as u32 * (tw + pad);
        draw_text(&mut out, i64::from(x), i64::from(pad), &fit_text(name, tw, ts), INK, ts);
        blit(&mut out, tile, x, pad + caption);
    }
    blit(&mut out, &strip, 0, pad + caption + th);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(w: usize, h: usize) -> Sample {
        Sample {
            id: "a_000000_000001".into(),
            height: h,
            width: w,
            image: (0..w * h * 3).map(|i| (i % 251) as u8).collect(),
            label: (0..w * h).map(|i| (i % 7) as u8).collect(),
            depth: (0..w * h).map(|i| (i % 13) as f32).collect(),
        }
    }

    #[test]
    fn a_panel_holds_five_tiles_side_by_side_and_is_deterministic() {
        let s = sample(64, 32);
        let classes: Vec<u8> = s.label.iter().map(|c| (c + 1) % 7).collect();
        let depth: Vec<f32> = s.depth.iter().map(|d| d + 0.5).collect();
        let a = panel(&s, &classes, &depth, LabelSet::Categories7, DepthTarget::Disparity);
        let b = panel(&s, &classes, &depth, LabelSet::Categories7, DepthTarget::Disparity);
        assert_eq!(a, b);
        let tile = 64 * tile_scale(64);
        assert_eq!(a.width(), 5 * (tile + 4) + 4);
        assert!(a.height() > 32 * tile_scale(64));
        // The image tile's first pixel sits below the caption.
        let y = 4 + LINE_HEIGHT;
        assert_eq!(a.get_pixel(4, y).0, [0, 1, 2]);
    }
}
