//! Writing a whole dataset: every image of both splits, rendered by worker
//! threads in any order (the bytes do not depend on it), stale files of a
//! larger earlier run removed, and `<out>/.complete` written last.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::render::render_scene;
use super::spec::{GenerateSummary, SyntheticSpec, COMPLETE_MARKER};
use super::write;
use crate::data::error::DataError;
use crate::data::sample::Split;

/// Writes every file of the dataset, then `<out>/.complete` (the spec as
/// JSON) last, so a half-written folder is recognisable: an old marker is
/// removed first, and files of an earlier, larger run with our names are
/// deleted. `progress` is called with the number of images written so far,
/// from the worker threads, in any order.
pub fn generate(spec: &SyntheticSpec, progress: &(dyn Fn(usize) + Sync)) -> Result<GenerateSummary, DataError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    generate_with_threads(spec, progress, threads)
}

/// [`generate`] with `threads` workers; the output does not depend on it.
pub(crate) fn generate_with_threads(
    spec: &SyntheticSpec,
    progress: &(dyn Fn(usize) + Sync),
    threads: usize,
) -> Result<GenerateSummary, DataError> {
    spec.validate()?;
    let start = Instant::now();
    let out = spec.out.as_path();
    std::fs::create_dir_all(out).map_err(|e| DataError::io(out, e))?;
    let marker = out.join(COMPLETE_MARKER);
    match std::fs::remove_file(&marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(DataError::io(&marker, e)),
    }
    let jobs: Vec<(Split, usize)> =
        (0..spec.train).map(|i| (Split::Train, i)).chain((0..spec.val).map(|i| (Split::Val, i))).collect();
    for (split, count) in [(Split::Train, spec.train), (Split::Val, spec.val)] {
        write::create_dirs(out, split)?;
        write::remove_stale(out, split, count)?;
    }
    tracing::info!(out = %out.display(), train = spec.train, val = spec.val, threads, "generating synthetic data");

    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<DataError>> = Mutex::new(None);
    let worker = || {
        while !failed.load(Ordering::Relaxed) {
            let job = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(split, index)) = jobs.get(job) else {
                break;
            };
            let scene = render_scene(spec.seed, split, index, spec.height, spec.width);
            if let Err(e) = write::write_scene(out, split, index, &scene) {
                failed.store(true, Ordering::Relaxed);
                let mut slot = first_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                slot.get_or_insert(e);
                break;
            }
            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.len()) {
            scope.spawn(worker);
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()) {
        return Err(e);
    }
    write_marker(&marker, spec)?;
    let summary = GenerateSummary { images: jobs.len(), wall_s: start.elapsed().as_secs_f64() };
    tracing::info!(images = summary.images, wall_s = summary.wall_s, "synthetic data complete");
    Ok(summary)
}

fn write_marker(marker: &Path, spec: &SyntheticSpec) -> Result<(), DataError> {
    let mut json = serde_json::to_string_pretty(spec)
        .map_err(|e| DataError::invalid(marker, format!("cannot encode JSON: {e}")))?;
    json.push('\n');
    std::fs::write(marker, json).map_err(|e| DataError::io(marker, e))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use std::path::PathBuf;

    use image::ColorType;

    use super::*;

    fn spec(out: &Path, train: usize, val: usize) -> SyntheticSpec {
        SyntheticSpec { out: out.to_path_buf(), train, val, height: 64, width: 128, seed: 42 }
    }

    /// Every file under `root` (relative path → bytes).
    fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(root).expect("prefix").to_path_buf();
                    files.insert(rel, std::fs::read(&path).expect("read"));
                }
            }
        }
        files
    }

    #[test]
    fn generate_writes_exactly_the_cityscapes_files_and_the_marker_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("synthetic");
        let marker = out.join(COMPLETE_MARKER);
        let calls = AtomicUsize::new(0);
        let summary = generate_with_threads(
            &spec(&out, 7, 2),
            &|n| {
                assert!(!marker.exists(), "the marker exists before image {n}");
                assert!((1..=9).contains(&n));
                calls.fetch_add(1, Ordering::Relaxed);
            },
            2,
        )
        .expect("generate");
        assert_eq!(summary.images, 9);
        assert_eq!(calls.into_inner(), 9);

        let files = tree(&out);
        assert_eq!(files.len(), 9 * 4 + 1);
        let count = |prefix: &str| files.keys().filter(|p| p.starts_with(prefix)).count();
        for root in ["leftImg8bit", "gtFine", "disparity", "camera"] {
            assert_eq!(count(&format!("{root}/train/synth_a")), 2, "{root}");
            assert_eq!(count(&format!("{root}/train/synth_b")), 2, "{root}");
            assert_eq!(count(&format!("{root}/train/synth_c")), 1, "{root}");
            assert_eq!(count(&format!("{root}/train/synth_e")), 1, "{root}");
            assert_eq!(count(&format!("{root}/val/synth_v")), 2, "{root}");
        }
        for name in [
            "leftImg8bit/train/synth_b/synth_b_000001_000019_leftImg8bit.png",
            "gtFine/train/synth_b/synth_b_000001_000019_gtFine_labelIds.png",
            "disparity/train/synth_b/synth_b_000001_000019_disparity.png",
            "camera/train/synth_b/synth_b_000001_000019_camera.json",
            "leftImg8bit/val/synth_v/synth_v_000001_000019_leftImg8bit.png",
            "camera/val/synth_v/synth_v_000000_000019_camera.json",
        ] {
            assert!(files.contains_key(Path::new(name)), "{name}");
        }

        let marker_time = std::fs::metadata(&marker).and_then(|m| m.modified()).expect("marker");
        for path in files.keys() {
            let time = std::fs::metadata(out.join(path)).and_then(|m| m.modified()).expect("mtime");
            assert!(time <= marker_time, "{} is newer than the marker", path.display());
        }
        let written: SyntheticSpec = serde_json::from_slice(&files[Path::new(COMPLETE_MARKER)]).expect("marker json");
        assert_eq!(written, spec(&out, 7, 2));
    }

    #[test]
    fn generated_pngs_have_cityscapes_bit_depths_and_the_requested_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate_with_threads(&spec(dir.path(), 1, 1), &|_| {}, 1).expect("generate");
        let stem =
            |root: &str, suffix: &str| dir.path().join(format!("{root}/val/synth_v/synth_v_000000_000019{suffix}"));
        for (path, colour) in [
            (stem("leftImg8bit", "_leftImg8bit.png"), ColorType::Rgb8),
            (stem("gtFine", "_gtFine_labelIds.png"), ColorType::L8),
            (stem("disparity", "_disparity.png"), ColorType::L16),
        ] {
            let img = image::open(&path).expect("decode");
            assert_eq!(img.color(), colour, "{}", path.display());
            assert_eq!((img.width(), img.height()), (128, 64), "{}", path.display());
        }

        let camera: serde_json::Value =
            serde_json::from_slice(&std::fs::read(stem("camera", "_camera.json")).expect("read")).expect("json");
        for key in ["baseline", "pitch", "roll", "x", "y", "yaw", "z"] {
            assert!(camera["extrinsic"][key].is_f64(), "extrinsic.{key}");
        }
        for key in ["fx", "fy", "u0", "v0"] {
            assert!(camera["intrinsic"][key].is_f64(), "intrinsic.{key}");
        }
        let fx = camera["intrinsic"]["fx"].as_f64().unwrap_or_default();
        assert!((fx - 2262.52 * 128.0 / 2048.0).abs() < 1e-9);
        assert_eq!(camera["intrinsic"]["u0"].as_f64(), Some(64.0));
        let baseline = camera["extrinsic"]["baseline"].as_f64().unwrap_or_default();
        assert!((baseline - 0.209313).abs() < 0.002);
    }

    #[test]
    fn decoding_the_disparity_png_gives_back_the_rendered_disparity() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate_with_threads(&spec(dir.path(), 3, 1), &|_| {}, 2).expect("generate");
        let scene = render_scene(42, Split::Train, 2, 64, 128);
        let path = dir.path().join("disparity/train/synth_c/synth_c_000000_000019_disparity.png");
        let decoded = image::open(&path).expect("decode").into_luma16();
        let mut valid = 0;
        for (p, &d) in decoded.as_raw().iter().zip(&scene.disparity) {
            if d == 0.0 {
                assert_eq!(*p, 0);
            } else {
                assert!(*p > 0);
                let back = (*p as f32 - 1.0) / 256.0;
                assert!((back - d).abs() <= 1.0 / 256.0, "{back} vs {d}");
                valid += 1;
            }
        }
        assert!(valid > 64 * 128 / 4, "{valid}");
        let labels = image::open(dir.path().join("gtFine/train/synth_c/synth_c_000000_000019_gtFine_labelIds.png"))
            .expect("decode")
            .into_luma8();
        assert_eq!(labels.as_raw(), &scene.label_ids);
    }

    #[test]
    fn output_is_identical_with_one_thread_and_with_two() {
        let one = tempfile::tempdir().expect("tempdir");
        let two = tempfile::tempdir().expect("tempdir");
        generate_with_threads(&spec(one.path(), 5, 2), &|_| {}, 1).expect("one thread");
        generate_with_threads(&spec(two.path(), 5, 2), &|_| {}, 2).expect("two threads");
        let (mut a, mut b) = (tree(one.path()), tree(two.path()));
        // The marker names the output folder, which differs.
        a.remove(Path::new(COMPLETE_MARKER));
        b.remove(Path::new(COMPLETE_MARKER));
        assert_eq!(a.len(), 7 * 4);
        assert!(a == b, "the two outputs differ");
    }

    #[test]
    fn regenerating_smaller_removes_the_extra_images_of_the_larger_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate_with_threads(&spec(dir.path(), 7, 2), &|_| {}, 2).expect("first");
        generate_with_threads(&spec(dir.path(), 3, 1), &|_| {}, 2).expect("second");
        assert_eq!(tree(dir.path()).len(), 4 * 4 + 1);
    }

    #[test]
    fn a_bad_spec_is_refused_with_the_option_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = spec(dir.path(), 1, 1);
        for (bad, option) in [
            (SyntheticSpec { height: 10, ..good.clone() }, "--height"),
            (SyntheticSpec { height: 72, ..good.clone() }, "--height"),
            (SyntheticSpec { width: 120, ..good.clone() }, "--width"),
            (SyntheticSpec { width: 0, ..good.clone() }, "--width"),
            (SyntheticSpec { train: 0, ..good.clone() }, "--train"),
            (SyntheticSpec { val: 0, ..good.clone() }, "--val"),
        ] {
            let err = generate(&bad, &|_| {}).expect_err("refused");
            assert!(matches!(err, DataError::Invalid { .. }), "{err}");
            assert!(err.to_string().contains(option), "{err}");
        }
        assert!(tree(dir.path()).is_empty(), "nothing is written for a bad spec");
        assert!(good.validate().is_ok());
    }
}
