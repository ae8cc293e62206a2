//! Writing predictions in the Cityscapes formats, and scoring what was written.
//!
//! For image `<id>` of city `<city>` in split `<split>`, under the output
//! folder (one folder per kind, as Cityscapes keeps `gtFine/`, `disparity/`):
//!
//! ```text
//! labelIds/<split>/<city>/<id>_pred_labelIds.png    8-bit Cityscapes ids
//! color/<split>/<city>/<id>_pred_color.png          8-bit RGB, Cityscapes palette
//! disparity/<split>/<city>/<id>_pred_disparity.png  16-bit, p = d·256 + 1, 0 invalid
//! panel/<split>/<city>/<id>_panel.png               image | seg truth | seg pred | depth truth | depth pred
//! ```
//!
//! The first three have the size of the image's label file. `labelIds/` holds
//! exactly one file per image, so cityscapesScripts' evaluation runs on it as
//! it is (`CITYSCAPES_RESULTS=<out>/labelIds`): a 19-class model writes the
//! id of each train id; a 7-category model writes a representative id per
//! category ([`LabelSet::id_of_class`]: flat → road 7, construction →
//! building 11, object → pole 17, nature → vegetation 21, sky → sky 23,
//! human → person 24, vehicle → car 26), so only cityscapesScripts'
//! category scores mean something for it.
//!
//! The disparity file always holds disparity in pixels at the file's
//! resolution: a disparity model's output is scaled by the width ratio; a
//! metric-depth model's output (metres) becomes `baseline · fx / depth` with
//! the image's `camera.json`. Non-positive predictions are written as 0
//! (invalid), values above 255.99 px are clamped.

use std::path::{Path, PathBuf};

use image::{ImageBuffer, Luma, Rgb, RgbImage};

use super::panel::panel;
use super::{check_samples, forward_samples, PredictError, SamplePrediction};
use crate::data::cityscapes::{load_sample, parallel_map, CityscapesIndex, Entry, LoadOptions};
use crate::data::decode::{encode_disparity, read_camera, read_disparity, read_label_ids, read_png_header, Camera};
use crate::data::resize::resize_nearest;
use crate::data::{DataError, DepthTarget, LabelSet, Sample, Split};
use crate::metrics::{ConfusionMatrix, DepthAccumulator, EvalMetrics};
use crate::model::Model;

/// Where the files of one image go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPaths {
    pub label_ids: PathBuf,
    pub color: PathBuf,
    pub disparity: PathBuf,
    pub panel: PathBuf,
}

impl OutputPaths {
    /// The paths of `entry`'s files under `out` (see the module docs).
    pub fn new(out: &Path, split: Split, entry: &Entry) -> Self {
        let folder = |kind: &str| out.join(kind).join(split.as_str()).join(&entry.city);
        let id = &entry.id;
        OutputPaths {
            label_ids: folder("labelIds").join(format!("{id}_pred_labelIds.png")),
            color: folder("color").join(format!("{id}_pred_color.png")),
            disparity: folder("disparity").join(format!("{id}_pred_disparity.png")),
            panel: folder("panel").join(format!("{id}_panel.png")),
        }
    }
}

/// How [`predict_split`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictOptions {
    /// The output folder.
    pub out: PathBuf,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Decoding and encoding threads (0: all cores).
    pub threads: usize,
    /// Whether to write the panels.
    pub panels: bool,
}

/// What [`predict_split`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictReport {
    pub images: usize,
    /// The metrics of `dmtl eval`, computed from the written files against
    /// the label files at their resolution (depth: disparity in pixels of the
    /// file's resolution, or metres for a metric-depth model).
    pub metrics: EvalMetrics,
}

/// Predicts every image of `index` with `model` at `load`'s resolution, writes
/// the files of [`OutputPaths`], reads the label-id and disparity files back
/// and scores them. `progress(done, total)` is called after each batch.
///
/// On data at the model's resolution the segmentation metrics equal `dmtl
/// eval`'s and the depth metrics differ only by the file encoding (1/256 px
/// steps, non-positive predictions stored as invalid 0).
pub fn predict_split(
    model: &Model,
    index: &CityscapesIndex,
    load: &LoadOptions,
    opts: &PredictOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<PredictReport, PredictError> {
    if model.classes != load.classes.num_classes() {
        return Err(PredictError::Mismatch(format!(
            "the model predicts {} classes, the data is loaded as {} classes",
            model.classes,
            load.classes.num_classes()
        )));
    }
    let mut cm = ConfusionMatrix::new(model.classes);
    let mut depth = DepthAccumulator::default();
    let mut done = 0;
    for chunk in index.entries.chunks(opts.batch_size.max(1)) {
        let samples = parallel_map(chunk, opts.threads, |entry| load_sample(entry, load))?;
        check_samples(model, &samples)?;
        let predictions = forward_samples(model, &samples, samples.len());
        let items: Vec<(&Entry, &Sample, &SamplePrediction)> =
            chunk.iter().zip(&samples).zip(&predictions).map(|((e, s), p)| (e, s, p)).collect();
        let scored = parallel_map(&items, opts.threads, |(entry, sample, prediction)| {
            Ok(export_one(entry, sample, prediction, index.split, load, opts))
        })?;
        for result in scored {
            let (image_cm, image_depth) = result?;
            cm.merge(&image_cm);
            depth.merge(&image_depth);
        }
        done += chunk.len();
        progress(done, index.entries.len());
    }
    Ok(PredictReport { images: done, metrics: EvalMetrics { seg: cm.metrics(), depth: depth.metrics() } })
}

/// Writes one image's files and scores the written label ids and disparity.
fn export_one(
    entry: &Entry,
    sample: &Sample,
    prediction: &SamplePrediction,
    split: Split,
    load: &LoadOptions,
    opts: &PredictOptions,
) -> Result<(ConfusionMatrix, DepthAccumulator), PredictError> {
    let paths = OutputPaths::new(&opts.out, split, entry);
    let header = read_png_header(&entry.label)?;
    let (width, height) = (header.width as usize, header.height as usize);
    let (w, h) = (sample.width, sample.height);
    let classes = resize_nearest(&prediction.classes, w, h, width, height);
    let camera = match load.depth {
        DepthTarget::Depth => Some(read_camera(&entry.camera)?),
        DepthTarget::Disparity => None,
    };
    let depth = resize_bilinear_f32(&prediction.depth, w, h, width, height);
    let disparity = file_disparity(&depth, load.depth, width as f32 / w as f32, camera.as_ref());

    write_png(&paths.label_ids, label_ids_image(&classes, width, height, load.classes))?;
    write_png(&paths.color, color_image(&classes, width, height, load.classes))?;
    write_png(&paths.disparity, disparity_image(&disparity, width, height))?;
    if opts.panels {
        write_png(&paths.panel, panel(sample, &prediction.classes, &prediction.depth, load.classes, load.depth))?;
    }
    score_files(entry, &paths, load.classes, camera.as_ref())
}

/// Disparity in pixels at the file's resolution from the depth head's output
/// resized to that resolution: disparity scaled by `ratio` (file width /
/// model width), or `baseline · fx / depth` for metric depth.
fn file_disparity(depth: &[f32], target: DepthTarget, ratio: f32, camera: Option<&Camera>) -> Vec<f32> {
    match (target, camera) {
        (DepthTarget::Depth, Some(camera)) => depth
            .iter()
            .map(|&z| if z > 0.0 && z.is_finite() { (camera.baseline * camera.fx / f64::from(z)) as f32 } else { 0.0 })
            .collect(),
        _ => depth.iter().map(|&d| d * ratio).collect(),
    }
}

/// The 8-bit label-id image of a class map: each class's Cityscapes id
/// ([`LabelSet::id_of_class`]), 0 (unlabeled) for an ignored pixel.
pub fn label_ids_image(classes: &[u8], width: usize, height: usize, set: LabelSet) -> ImageBuffer<Luma<u8>, Vec<u8>> {
    let mut ids = [0u8; 256];
    for class in 0..set.num_classes() as u8 {
        ids[class as usize] = set.id_of_class(class);
    }
    let raw = classes.iter().map(|&c| ids[c as usize]).collect();
    ImageBuffer::from_raw(width as u32, height as u32, raw).expect("a class map of the given size")
}

/// The class map in the Cityscapes colour palette.
pub fn color_image(classes: &[u8], width: usize, height: usize, set: LabelSet) -> RgbImage {
    RgbImage::from_fn(width as u32, height as u32, |x, y| {
        Rgb(set.color_of_class(classes[y as usize * width + x as usize]))
    })
}

/// The 16-bit Cityscapes disparity image ([`encode_disparity`]) of disparity in pixels.
pub fn disparity_image(disparity: &[f32], width: usize, height: usize) -> ImageBuffer<Luma<u16>, Vec<u16>> {
    let raw = disparity.iter().map(|&d| encode_disparity(d)).collect();
    ImageBuffer::from_raw(width as u32, height as u32, raw).expect("a disparity map of the given size")
}

fn write_png<P, C>(path: &Path, image: ImageBuffer<P, C>) -> Result<(), PredictError>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let fail = |message: String| PredictError::Write { path: path.to_path_buf(), message };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    image.save_with_format(path, image::ImageFormat::Png).map_err(|e| fail(e.to_string()))
}

/// Scores the written label-id and disparity files of one image against its
/// label files, at the label files' resolution.
fn score_files(
    entry: &Entry,
    paths: &OutputPaths,
    set: LabelSet,
    camera: Option<&Camera>,
) -> Result<(ConfusionMatrix, DepthAccumulator), PredictError> {
    let lut = set.lut();
    let (_, _, truth_ids) = read_label_ids(&entry.label)?;
    let (_, _, pred_ids) = read_label_ids(&paths.label_ids)?;
    let mut cm = ConfusionMatrix::new(set.num_classes());
    cm.add_pairs(truth_ids.iter().zip(&pred_ids).map(|(&t, &p)| (lut[t as usize], lut[p as usize])));

    let (width, height, truth) = read_disparity(&entry.disparity)?;
    let (pw, ph, pred) = read_disparity(&paths.disparity)?;
    if (pw, ph) != (width, height) {
        return Err(DataError::SizeMismatch {
            path: paths.disparity.clone(),
            got_width: pw,
            got_height: ph,
            width,
            height,
        }
        .into());
    }
    let (truth, pred) = match camera {
        Some(camera) => (
            truth.iter().map(|&d| camera.depth_of_disparity(d)).collect(),
            pred.iter().map(|&d| camera.depth_of_disparity(d)).collect(),
        ),
        None => (truth, pred),
    };
    let shape = [1, 1, i64::from(height), i64::from(width)];
    let mut depth = DepthAccumulator::default();
    depth.add(&tch::Tensor::from_slice(&pred).reshape(shape), &tch::Tensor::from_slice(&truth).reshape(shape));
    Ok((cm, depth))
}

/// Bilinear resize of a `[sh, sw]` float map to `[dh, dw]` with PyTorch's
/// `align_corners=False` semantics.
pub fn resize_bilinear_f32(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    assert_eq!(src.len(), sw * sh, "resize_bilinear_f32: buffer is not {sh}x{sw}");
    if (sw, sh) == (dw, dh) {
        return src.to_vec();
    }
    let taps = |input: usize, output: usize| -> Vec<(usize, usize, f32)> {
        let scale = input as f64 / output as f64;
        (0..output)
            .map(|i| {
                let s = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (s.floor() as usize).min(input - 1);
                (i0, (i0 + 1).min(input - 1), (s - i0 as f64) as f32)
            })
            .collect()
    };
    let (xs, ys) = (taps(sw, dw), taps(sh, dh));
    let mut out = Vec::with_capacity(dw * dh);
    for &(y0, y1, fy) in &ys {
        for &(x0, x1, fx) in &xs {
            let top = src[y0 * sw + x0] * (1.0 - fx) + src[y0 * sw + x1] * fx;
            let bottom = src[y1 * sw + x0] * (1.0 - fx) + src[y1 * sw + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::decode::{decode_disparity, read_disparity_raw};
    use crate::data::IGNORE;

    #[test]
    fn output_paths_follow_the_cityscapes_naming_one_folder_per_kind() {
        let entry = Entry::new(Path::new("/data"), Split::Val, "lindau", "lindau_000001_000019");
        let p = OutputPaths::new(Path::new("/out"), Split::Val, &entry);
        assert_eq!(p.label_ids, Path::new("/out/labelIds/val/lindau/lindau_000001_000019_pred_labelIds.png"));
        assert_eq!(p.color, Path::new("/out/color/val/lindau/lindau_000001_000019_pred_color.png"));
        assert_eq!(p.disparity, Path::new("/out/disparity/val/lindau/lindau_000001_000019_pred_disparity.png"));
        assert_eq!(p.panel, Path::new("/out/panel/val/lindau/lindau_000001_000019_panel.png"));
    }

    #[test]
    fn a_label_image_survives_train_id_to_id_to_train_id() {
        for set in [LabelSet::TrainIds19, LabelSet::Categories7] {
            let n = set.num_classes() as u8;
            let classes: Vec<u8> =
                (0..64u32).map(|i| if i % 9 == 8 { IGNORE } else { (i % u32::from(n)) as u8 }).collect();
            let ids = label_ids_image(&classes, 16, 4, set);
            let lut = set.lut();
            let back: Vec<u8> = ids.as_raw().iter().map(|&id| lut[id as usize]).collect();
            assert_eq!(back, classes, "{set:?}");
        }
    }

    #[test]
    fn seven_categories_are_written_as_their_documented_ids() {
        let ids = label_ids_image(&[0, 1, 2, 3, 4, 5, 6], 7, 1, LabelSet::Categories7);
        assert_eq!(ids.as_raw(), &vec![7, 11, 17, 21, 23, 24, 26]);
    }

    #[test]
    fn written_files_have_the_right_bit_depth_and_size_and_disparity_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (20usize, 6usize);
        let disparity: Vec<f32> = (0..w * h).map(|i| i as f32 * 0.731 - 3.0).collect();
        let path = dir.path().join("a/b_pred_disparity.png");
        write_png(&path, disparity_image(&disparity, w, h)).unwrap();
        let header = read_png_header(&path).unwrap();
        assert_eq!((header.width, header.height, header.describe().as_str()), (20, 6, "16-bit grayscale"));
        let (_, _, raw) = read_disparity_raw(&path).unwrap();
        for (&d, &p) in disparity.iter().zip(&raw) {
            if d <= 0.0 {
                assert_eq!(p, 0, "non-positive disparity is invalid");
            } else {
                assert!((decode_disparity(p) - d).abs() <= 1.0 / 256.0, "{d} -> {p}");
            }
        }
        let classes: Vec<u8> = (0..w * h).map(|i| (i % 7) as u8).collect();
        let ids_path = dir.path().join("a/b_pred_labelIds.png");
        write_png(&ids_path, label_ids_image(&classes, w, h, LabelSet::Categories7)).unwrap();
        assert_eq!(read_png_header(&ids_path).unwrap().describe(), "8-bit grayscale");
        let color_path = dir.path().join("a/b_pred_color.png");
        write_png(&color_path, color_image(&classes, w, h, LabelSet::Categories7)).unwrap();
        let header = read_png_header(&color_path).unwrap();
        assert_eq!((header.width, header.height, header.describe().as_str()), (20, 6, "8-bit RGB"));
    }

    #[test]
    fn metric_depth_is_written_as_disparity_through_the_camera() {
        let camera = Camera { baseline: 0.2, fx: 1000.0 };
        let d = file_disparity(&[10.0, 0.0, -1.0], DepthTarget::Depth, 0.5, Some(&camera));
        assert_eq!(d, vec![20.0, 0.0, 0.0]);
        let d = file_disparity(&[10.0, 0.0], DepthTarget::Disparity, 4.0, None);
        assert_eq!(d, vec![40.0, 0.0]);
    }

    #[test]
    fn bilinear_float_resize_keeps_constants_and_interpolates() {
        assert_eq!(resize_bilinear_f32(&[2.0; 6], 3, 2, 12, 8), vec![2.0; 96]);
        // Upscaling [0, 1] by 2 (align_corners=False): 0, 0.25, 0.75, 1.
        assert_eq!(resize_bilinear_f32(&[0.0, 1.0], 2, 1, 4, 1), vec![0.0, 0.25, 0.75, 1.0]);
        assert_eq!(resize_bilinear_f32(&[1.0, 2.0, 3.0], 3, 1, 3, 1), vec![1.0, 2.0, 3.0]);
    }
}
