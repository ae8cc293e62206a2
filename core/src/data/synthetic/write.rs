//! Writing scenes in the Cityscapes layout, with Cityscapes' file names:
//! `leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png` and the
//! matching `gtFine/…_gtFine_labelIds.png`, `disparity/…_disparity.png` and
//! `camera/…_camera.json`.

use std::path::{Path, PathBuf};

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, ImageError};
use serde::Serialize;

use super::render::Scene;
use crate::data::error::DataError;
use crate::data::sample::Split;

/// The synthetic cities of each split (val's differ from train's).
pub(crate) fn cities(split: Split) -> &'static [&'static str] {
    match split {
        Split::Train => &["synth_a", "synth_b", "synth_c", "synth_d", "synth_e"],
        Split::Val => &["synth_v"],
    }
}

/// The frame number of every image, as in Cityscapes' annotated frames.
pub(crate) const FRAME: &str = "000019";

/// The four files of an image: root folder and file-name suffix.
pub(crate) const FILES: [(&str, &str); 4] = [
    ("leftImg8bit", "_leftImg8bit.png"),
    ("gtFine", "_gtFine_labelIds.png"),
    ("disparity", "_disparity.png"),
    ("camera", "_camera.json"),
];

/// Image `index` of a split lives in city `index % cities` with sequence
/// number `index / cities`.
pub(crate) fn city_and_seq(split: Split, index: usize) -> (&'static str, usize) {
    let cities = cities(split);
    (cities[index % cities.len()], index / cities.len())
}

/// `<city>_<seq>_<frame>`, the image id shared by its four files.
pub(crate) fn stem(split: Split, index: usize) -> String {
    let (city, seq) = city_and_seq(split, index);
    format!("{city}_{seq:06}_{FRAME}")
}

/// The four paths of image `index`, in the order of [`FILES`].
pub(crate) fn paths(out: &Path, split: Split, index: usize) -> [PathBuf; 4] {
    let (city, _) = city_and_seq(split, index);
    let stem = stem(split, index);
    FILES.map(|(root, suffix)| out.join(root).join(split.as_str()).join(city).join(format!("{stem}{suffix}")))
}

/// Creates every city folder of the split.
pub(crate) fn create_dirs(out: &Path, split: Split) -> Result<(), DataError> {
    for (root, _) in FILES {
        for city in cities(split) {
            let dir = out.join(root).join(split.as_str()).join(city);
            std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        }
    }
    Ok(())
}

/// Removes files of an earlier, larger generation: files in the split's
/// city folders named like ours but with an index of `count` or more.
/// Nothing else is touched.
pub(crate) fn remove_stale(out: &Path, split: Split, count: usize) -> Result<(), DataError> {
    let n_cities = cities(split).len();
    for (root, suffix) in FILES {
        for (c, city) in cities(split).iter().enumerate() {
            let dir = out.join(root).join(split.as_str()).join(city);
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(DataError::io(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| DataError::io(&dir, e))?;
                let name = entry.file_name();
                let Some(seq) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix(city))
                    .and_then(|n| n.strip_prefix('_'))
                    .and_then(|n| n.strip_suffix(suffix))
                    .and_then(|n| n.strip_suffix(FRAME))
                    .and_then(|n| n.strip_suffix('_'))
                    .filter(|n| n.len() == 6)
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                if seq * n_cities + c >= count {
                    let path = entry.path();
                    std::fs::remove_file(&path).map_err(|e| DataError::io(&path, e))?;
                }
            }
        }
    }
    Ok(())
}

/// The 16-bit disparity PNG value of a disparity `d` in pixels:
/// `round(d·256) + 1`, or 0 for invalid (`d ≤ 0`), clamped to `u16`.
pub(crate) fn encode_disparity(d: f32) -> u16 {
    if d > 0.0 && d.is_finite() {
        ((d as f64 * 256.0).round() + 1.0).min(u16::MAX as f64) as u16
    } else {
        0
    }
}

#[derive(Serialize)]
struct Extrinsic {
    baseline: f64,
    pitch: f64,
    roll: f64,
    x: f64,
    y: f64,
    yaw: f64,
    z: f64,
}

#[derive(Serialize)]
struct Intrinsic {
    fx: f64,
    fy: f64,
    u0: f64,
    v0: f64,
}

#[derive(Serialize)]
struct CameraFile {
    extrinsic: Extrinsic,
    intrinsic: Intrinsic,
}

/// The `camera.json` of a scene, in Cityscapes' format. The mounting
/// position (`x`, `y`) is Cityscapes'; `z` is the scene's camera height and
/// the pitch is 0 because the optical axis is level (the horizon is `v0`).
pub(crate) fn camera_json(scene: &Scene) -> serde_json::Result<String> {
    let file = CameraFile {
        extrinsic: Extrinsic {
            baseline: scene.baseline,
            pitch: 0.0,
            roll: 0.0,
            x: 1.7,
            y: 0.1,
            yaw: 0.0,
            z: scene.camera_height,
        },
        intrinsic: Intrinsic { fx: scene.fx, fy: scene.fy, u0: scene.u0, v0: scene.v0 },
    };
    let mut text = serde_json::to_string_pretty(&file)?;
    text.push('\n');
    Ok(text)
}

fn encode_png(
    path: &Path,
    bytes: &[u8],
    width: u32,
    height: u32,
    colour: ExtendedColorType,
) -> Result<Vec<u8>, DataError> {
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Adaptive)
        .write_image(bytes, width, height, colour)
        .map_err(|e| match e {
            ImageError::IoError(e) => DataError::io(path, e),
            other => DataError::invalid(path, format!("cannot encode PNG: {other}")),
        })?;
    Ok(png)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))
}

/// Writes the four files of image `index` (its folders must exist).
pub(crate) fn write_scene(out: &Path, split: Split, index: usize, scene: &Scene) -> Result<(), DataError> {
    let [image, labels, disparity, camera] = paths(out, split, index);
    let (w, h) = (scene.width, scene.height);
    write_file(&image, &encode_png(&image, &scene.rgb, w, h, ExtendedColorType::Rgb8)?)?;
    write_file(&labels, &encode_png(&labels, &scene.label_ids, w, h, ExtendedColorType::L8)?)?;
    let raw: Vec<u8> = scene.disparity.iter().flat_map(|&d| encode_disparity(d).to_ne_bytes()).collect();
    write_file(&disparity, &encode_png(&disparity, &raw, w, h, ExtendedColorType::L16)?)?;
    let json = camera_json(scene).map_err(|e| DataError::invalid(&camera, format!("cannot encode JSON: {e}")))?;
    write_file(&camera, json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_cityscapes_pattern() {
        let out = Path::new("/data");
        let [image, labels, disparity, camera] = paths(out, Split::Train, 7);
        assert_eq!(image, Path::new("/data/leftImg8bit/train/synth_c/synth_c_000001_000019_leftImg8bit.png"));
        assert_eq!(labels, Path::new("/data/gtFine/train/synth_c/synth_c_000001_000019_gtFine_labelIds.png"));
        assert_eq!(disparity, Path::new("/data/disparity/train/synth_c/synth_c_000001_000019_disparity.png"));
        assert_eq!(camera, Path::new("/data/camera/train/synth_c/synth_c_000001_000019_camera.json"));
        assert_eq!(stem(Split::Val, 12), "synth_v_000012_000019");
    }

    #[test]
    fn train_and_val_cities_are_distinct() {
        for city in cities(Split::Val) {
            assert!(!cities(Split::Train).contains(city));
        }
    }

    #[test]
    fn disparity_is_encoded_as_256_d_plus_1_and_0_for_invalid() {
        assert_eq!(encode_disparity(0.0), 0);
        assert_eq!(encode_disparity(-1.0), 0);
        assert_eq!(encode_disparity(f32::NAN), 0);
        assert_eq!(encode_disparity(1.0), 257);
        assert_eq!(encode_disparity(0.5 / 256.0), 2);
        assert_eq!(encode_disparity(1e6), u16::MAX);
    }

    #[test]
    fn stale_files_beyond_the_count_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        create_dirs(dir.path(), Split::Val).expect("dirs");
        let city = dir.path().join("camera/val/synth_v");
        for name in ["synth_v_000000_000019_camera.json", "synth_v_000003_000019_camera.json", "notes.txt"] {
            std::fs::write(city.join(name), "x").expect("write");
        }
        remove_stale(dir.path(), Split::Val, 2).expect("clean");
        assert!(city.join("synth_v_000000_000019_camera.json").exists());
        assert!(!city.join("synth_v_000003_000019_camera.json").exists());
        assert!(city.join("notes.txt").exists());
    }
}
