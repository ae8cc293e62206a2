//! The qualitative figure of an experiment: the same few validation images
//! predicted by several models (one per method), side by side, so that
//! forgetting one task shows as a picture.
//!
//! ```text
//!             <id 1>                  <id 2>                 ...
//! image            [  image  ]             [  image  ]
//! truth       [seg truth][depth truth] [seg truth][depth truth]
//! full        [seg pred ][depth pred ] [seg pred ][depth pred ]
//! half        ...
//! <legend: class colours; depth: near is bright, one range per image>
//! ```
//!
//! Each image's depth colour range comes from its ground truth and is shared
//! by every row, so the rows can be compared.

use image::RgbImage;

use super::font::{draw_text, fit_text, text_width, LINE_HEIGHT};
use super::palette::{blit, canvas, depth_tile, image_tile, legend, seg_tile, DepthRange, INK};
use super::panel::{text_scale, tile_scale};
use super::{check_samples, forward_samples, PredictError};
use crate::config::DataConfig;
use crate::data::dataset::{index_split, load_options};
use crate::data::{cityscapes::load_sample, DataError, DepthTarget, LabelSet, Sample, Split};
use crate::model::Model;

/// How many validation images the experiment report shows.
pub const QUALITATIVE_IMAGES: usize = 4;

/// The positions of the images shown, in a split of `len` images sorted by
/// id: `count` positions at a fixed stride, `⌊i · len / count⌋` for
/// `i = 0 … count − 1` (all positions when `count ≥ len`). They depend only
/// on `len` and `count`, so every run of the same data shows the same images.
pub fn qualitative_indices(len: usize, count: usize) -> Vec<usize> {
    if count >= len {
        return (0..len).collect();
    }
    (0..count).map(|i| i * len / count).collect()
}

/// Loads the [`qualitative_indices`] images of the validation split of `data`
/// (cut to `data.val_limit` like every evaluation) at its resolution, with
/// its class set and depth target.
pub fn load_qualitative_samples(data: &DataConfig, count: usize) -> Result<Vec<Sample>, DataError> {
    let index = index_split(data, Split::Val)?;
    let opts = load_options(data);
    qualitative_indices(index.entries.len(), count).into_iter().map(|i| load_sample(&index.entries[i], &opts)).collect()
}

/// The figure: one row per `(label, model)` in the given order, under an
/// image row and a ground-truth row; one column pair (segmentation, depth)
/// per sample. `samples` are at the models' resolution, in class set `set`
/// and depth target `target` (as [`load_qualitative_samples`] gives them).
///
/// Errors: no samples, samples of different sizes or of a size the models
/// cannot take, or a model with another number of classes than `set`.
pub fn qualitative_grid(
    rows: &[(String, &Model)],
    samples: &[Sample],
    set: LabelSet,
    target: DepthTarget,
) -> Result<RgbImage, PredictError> {
    for (label, model) in rows {
        if model.classes != set.num_classes() {
            return Err(PredictError::Mismatch(format!(
                "model `{label}` predicts {} classes, the figure shows {}",
                model.classes,
                set.num_classes()
            )));
        }
        check_samples(model, samples)?;
    }
    let first = samples.first().ok_or_else(|| PredictError::Mismatch("no images for the figure".into()))?;
    let (w, h) = (first.width, first.height);
    let scale = tile_scale(w);
    let (tw, th) = (w as u32 * scale, h as u32 * scale);
    let ts = text_scale(tw);
    let pad = 4 * ts;
    let group = 2 * tw + pad;
    let line = LINE_HEIGHT * ts;
    let names: Vec<&str> = ["image", "truth"].into_iter().chain(rows.iter().map(|(l, _)| l.as_str())).collect();
    let label_width = names.iter().map(|n| text_width(n, ts)).max().unwrap_or(0) + 2 * pad;
    let width = label_width + samples.len() as u32 * (group + 3 * pad);
    let strip = legend(width, set, None, ts);
    let grid_top = pad + line;
    let row_step = th + pad;
    let note_top = grid_top + names.len() as u32 * row_step;
    let mut out = canvas(width, note_top + line + pad + strip.height());

    let ranges: Vec<DepthRange> = samples.iter().map(|s| DepthRange::of(&s.depth, target)).collect();
    let predictions: Vec<_> = rows.iter().map(|(_, model)| forward_samples(model, samples, samples.len())).collect();
    for (r, name) in names.iter().enumerate() {
        let y = grid_top + r as u32 * row_step;
        draw_text(&mut out, i64::from(pad), i64::from(y + th.saturating_sub(line) / 2), name, INK, ts);
    }
    for (i, sample) in samples.iter().enumerate() {
        let x = label_width + i as u32 * (group + 3 * pad);
        draw_text(&mut out, i64::from(x), i64::from(pad), &fit_text(&sample.id, group, ts), INK, ts);
        blit(&mut out, &image_tile(&sample.image, w, h, scale), x + (group - tw) / 2, grid_top);
        let mut pair = |row: usize, classes: &[u8], depth: &[f32], mask: bool| {
            let y = grid_top + row as u32 * row_step;
            blit(&mut out, &seg_tile(classes, w, h, set, scale), x, y);
            blit(&mut out, &depth_tile(depth, w, h, &ranges[i], mask, scale), x + tw + pad, y);
        };
        pair(1, &sample.label, &sample.depth, true);
        for (r, rows_predictions) in predictions.iter().enumerate() {
            pair(2 + r, &rows_predictions[i].classes, &rows_predictions[i].depth, false);
        }
    }
    let note = match target {
        DepthTarget::Disparity => "depth: disparity, near is bright; black: no label",
        DepthTarget::Depth => "depth: metres, near is bright; black: no label",
    };
    draw_text(&mut out, i64::from(pad), i64::from(note_top), &fit_text(note, width, ts), INK, ts);
    blit(&mut out, &strip, 0, note_top + line);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;

    #[test]
    fn the_fixed_ids_are_spread_at_a_stride_and_depend_only_on_the_sizes() {
        assert_eq!(qualitative_indices(500, 4), vec![0, 125, 250, 375]);
        assert_eq!(qualitative_indices(10, 3), vec![0, 3, 6]);
        assert_eq!(qualitative_indices(3, 4), vec![0, 1, 2]);
        assert_eq!(qualitative_indices(0, 4), Vec::<usize>::new());
        assert_eq!(qualitative_indices(7, 0), Vec::<usize>::new());
    }

    fn samples(n: usize, w: usize, h: usize) -> Vec<Sample> {
        (0..n)
            .map(|k| Sample {
                id: format!("city_{k:06}_000019"),
                height: h,
                width: w,
                image: (0..w * h * 3).map(|i| ((i * 7 + k * 31) % 256) as u8).collect(),
                label: (0..w * h).map(|i| if i % 11 == 0 { 255 } else { ((i / w + k) % 7) as u8 }).collect(),
                depth: (0..w * h).map(|i| ((i % w) as f32 + 1.0) * 0.5).collect(),
            })
            .collect()
    }

    fn model(seed: u64, classes: usize) -> Model {
        let cfg = ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 };
        Model::new(&cfg, classes, tch::Device::Cpu, seed)
    }

    #[test]
    fn the_grid_has_a_row_per_model_and_a_column_pair_per_image_and_is_deterministic() {
        let (a, b) = (model(1, 7), model(2, 7));
        let s = samples(3, 32, 16);
        let rows = vec![("full".to_string(), &a), ("masked-distill".to_string(), &b)];
        let grid = qualitative_grid(&rows, &s, LabelSet::Categories7, DepthTarget::Disparity).unwrap();
        let again = qualitative_grid(&rows, &s, LabelSet::Categories7, DepthTarget::Disparity).unwrap();
        assert_eq!(grid, again);
        let (tw, th) = (32 * tile_scale(32), 16 * tile_scale(32));
        assert!(grid.width() >= 3 * 2 * tw, "{}", grid.width());
        assert!(grid.height() >= 4 * th, "{}", grid.height());
        // Not blank: many colours.
        let mut colours: Vec<[u8; 3]> = grid.pixels().map(|p| p.0).collect();
        colours.sort();
        colours.dedup();
        assert!(colours.len() > 50, "{}", colours.len());
        // One more model, one more row.
        let rows3 = vec![rows[0].clone(), rows[1].clone(), ("half".to_string(), &a)];
        let taller = qualitative_grid(&rows3, &s, LabelSet::Categories7, DepthTarget::Disparity).unwrap();
        assert_eq!(taller.height(), grid.height() + th + 4);
        assert_eq!(taller.width(), grid.width());
    }

    #[test]
    fn mismatched_models_and_samples_are_errors() {
        let a = model(1, 19);
        let s = samples(2, 32, 16);
        let rows = vec![("full".to_string(), &a)];
        let e = qualitative_grid(&rows, &s, LabelSet::Categories7, DepthTarget::Disparity).unwrap_err().to_string();
        assert!(e.contains("full") && e.contains("19"), "{e}");
        let b = model(1, 7);
        let rows = vec![("half".to_string(), &b)];
        let mut mixed = samples(1, 32, 16);
        mixed.extend(samples(1, 64, 16));
        let e = qualitative_grid(&rows, &mixed, LabelSet::Categories7, DepthTarget::Disparity).unwrap_err().to_string();
        assert!(e.contains("one size"), "{e}");
        let e = qualitative_grid(&rows, &samples(1, 30, 16), LabelSet::Categories7, DepthTarget::Disparity)
            .unwrap_err()
            .to_string();
        assert!(e.contains("stride"), "{e}");
        assert!(qualitative_grid(&rows, &[], LabelSet::Categories7, DepthTarget::Disparity).is_err());
    }
}
