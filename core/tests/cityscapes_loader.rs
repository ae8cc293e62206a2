//! The Cityscapes loader on a tiny dataset written into a temporary folder:
//! indexing, loading with resizing, both label sets, both depth targets,
//! statistics, and errors that name the offending file. Also checks the
//! resizers against PyTorch outputs stored in `tests/fixtures/`.

use std::path::{Path, PathBuf};

use dmtl_core::data::cityscapes::{load_all, load_sample, CityscapesIndex, Entry, LoadOptions};
use dmtl_core::data::decode::encode_disparity;
use dmtl_core::data::resize::{resize_bilinear_u8, resize_nearest};
use dmtl_core::data::stats::DataStats;
use dmtl_core::data::{DataError, DepthTarget, LabelSet, Split, IGNORE};
use image::{ImageBuffer, Luma, Rgb};

/// Source resolution of the tiny dataset.
const W: u32 = 64;
const H: u32 = 32;
/// Camera of every image.
const BASELINE: f64 = 0.25;
const FX: f64 = 1000.0;

/// The images, in id order: (city, id).
const IMAGES: [(&str, &str); 4] = [
    ("aachen", "aachen_000000_000019"),
    ("aachen", "aachen_000001_000019"),
    ("bremen", "bremen_000000_000019"),
    ("bremen", "bremen_000002_000019"),
];

/// The label id at (x, y), the same in every image: odd columns are bicycle
/// (33); in even columns the top half has four bands of road (7), parking
/// (9), sky (23) and car (26), and the bottom half is person (24).
fn label_id(x: u32, y: u32) -> u8 {
    if x % 2 == 1 {
        33
    } else if y < H / 2 {
        [7, 9, 23, 26][(x / 16) as usize]
    } else {
        24
    }
}

/// The disparity of image `k` at (x, y): invalid in the top 4 rows, else
/// `4 (k + 1) + x / 8` (exactly representable in the file).
fn disparity(k: usize, x: u32, y: u32) -> f32 {
    if y < 4 {
        0.0
    } else {
        4.0 * (k as f32 + 1.0) + x as f32 / 8.0
    }
}

/// The RGB colour of image `k` at (x, y).
fn colour(k: usize, x: u32, y: u32) -> [u8; 3] {
    [(x * 4) as u8, (y * 8) as u8, (k * 50) as u8]
}

fn camera_json(baseline: f64, fx: f64) -> String {
    format!(
        r#"{{"extrinsic": {{"baseline": {baseline}, "pitch": 0.0}}, "intrinsic": {{"fx": {fx}, "fy": {fx}, "u0": 32, "v0": 16}}}}"#
    )
}

/// Writes the tiny dataset (train split) and returns its folder.
fn write_dataset() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for (k, (city, id)) in IMAGES.iter().enumerate() {
        let entry = Entry::new(root, Split::Train, city, id);
        for path in [&entry.image, &entry.label, &entry.disparity, &entry.camera] {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        }
        ImageBuffer::from_fn(W, H, |x, y| Rgb(colour(k, x, y))).save(&entry.image).expect("image");
        ImageBuffer::from_fn(W, H, |x, y| Luma([label_id(x, y)])).save(&entry.label).expect("label");
        ImageBuffer::from_fn(W, H, |x, y| Luma([encode_disparity(disparity(k, x, y))]))
            .save(&entry.disparity)
            .expect("disparity");
        std::fs::write(&entry.camera, camera_json(BASELINE, FX)).expect("camera");
    }
    // Files that are not images are ignored.
    let images = root.join("leftImg8bit/train");
    std::fs::write(images.join(".DS_Store"), b"junk").expect("junk");
    std::fs::write(images.join("aachen/.DS_Store"), b"junk").expect("junk");
    std::fs::write(images.join("aachen/notes.txt"), b"junk").expect("junk");
    std::fs::write(images.join("bremen/bremen_000000_000019_leftImg8bit.png.bak"), b"junk").expect("junk");
    dir
}

fn options(classes: LabelSet, depth: DepthTarget) -> LoadOptions {
    LoadOptions { height: 16, width: 32, classes, depth }
}

fn open(root: &Path) -> CityscapesIndex {
    CityscapesIndex::open(root, Split::Train).expect("open")
}

/// Asserts that `error` names `path`, and returns its message.
fn names(error: &DataError, path: &Path) -> String {
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "`{message}` does not name {}", path.display());
    message
}

#[test]
fn the_index_lists_images_sorted_by_id_with_their_companion_files() {
    let dir = write_dataset();
    let index = open(dir.path());
    assert_eq!(index.split, Split::Train);
    assert_eq!(index.root, dir.path());
    let ids: Vec<&str> = index.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, IMAGES.map(|(_, id)| id));
    let entry = &index.entries[2];
    assert_eq!(entry.city, "bremen");
    assert_eq!(entry.label, dir.path().join("gtFine/train/bremen/bremen_000000_000019_gtFine_labelIds.png"));
    assert_eq!(entry.disparity, dir.path().join("disparity/train/bremen/bremen_000000_000019_disparity.png"));
    assert_eq!(entry.camera, dir.path().join("camera/train/bremen/bremen_000000_000019_camera.json"));
}

#[test]
fn samples_are_resized_with_bilinear_images() {
    let dir = write_dataset();
    let index = open(dir.path());
    let sample = load_sample(&index.entries[1], &options(LabelSet::TrainIds19, DepthTarget::Disparity)).expect("load");
    assert_eq!((sample.id.as_str(), sample.height, sample.width), ("aachen_000001_000019", 16, 32));
    assert_eq!(sample.image.len(), 16 * 32 * 3);
    // Each output pixel blends a 2x2 block: red (4x, 4x + 4) and green
    // (8y, 8y + 8) average to 8x' + 2 and 16y' + 4.
    for y in 0..16 {
        for x in 0..32 {
            let at = (y * 32 + x) * 3;
            assert_eq!(&sample.image[at..at + 3], &[(8 * x + 2) as u8, (16 * y + 4) as u8, 50], "({x}, {y})");
        }
    }
}

/// The class expected at output pixel (x, y): nearest picks source (2x, 2y).
fn expected_class(classes: LabelSet, x: usize, y: usize) -> u8 {
    classes.class_of_id(label_id(2 * x as u32, 2 * y as u32))
}

#[test]
fn labels_are_mapped_to_train_ids_and_resized_nearest() {
    let dir = write_dataset();
    let index = open(dir.path());
    let sample = load_sample(&index.entries[0], &options(LabelSet::TrainIds19, DepthTarget::Disparity)).expect("load");
    // Top row: road, parking (ignored), sky, car in bands of 8; the odd-column
    // bicycles are never sampled.
    let top: Vec<u8> = [0, IGNORE, 10, 13].iter().flat_map(|&c| [c; 8]).collect();
    assert_eq!(&sample.label[..32], &top[..]);
    // Bottom half: person.
    assert!(sample.label[8 * 32..].iter().all(|&c| c == 11));
    for y in 0..16 {
        for x in 0..32 {
            assert_eq!(sample.label[y * 32 + x], expected_class(LabelSet::TrainIds19, x, y));
        }
    }
}

#[test]
fn labels_are_mapped_to_categories_with_seven_classes() {
    let dir = write_dataset();
    let index = open(dir.path());
    let sample = load_sample(&index.entries[3], &options(LabelSet::Categories7, DepthTarget::Disparity)).expect("load");
    // Road and parking are both flat (0), sky is 4, car is vehicle (6).
    let top: Vec<u8> = [0, 0, 4, 6].iter().flat_map(|&c| [c; 8]).collect();
    assert_eq!(&sample.label[..32], &top[..]);
    assert!(sample.label[8 * 32..].iter().all(|&c| c == 5), "person is human (5)");
}

#[test]
fn disparity_is_resized_nearest_and_scaled_by_the_width_ratio() {
    let dir = write_dataset();
    let index = open(dir.path());
    for (k, entry) in index.entries.iter().enumerate() {
        let sample = load_sample(entry, &options(LabelSet::TrainIds19, DepthTarget::Disparity)).expect("load");
        for y in 0..16 {
            for x in 0..32 {
                let expected = disparity(k, 2 * x as u32, 2 * y as u32) * 0.5;
                assert_eq!(sample.depth[y * 32 + x], expected, "image {k} ({x}, {y})");
            }
        }
        assert!(sample.depth[..2 * 32].iter().all(|&d| d == 0.0), "invalid rows stay 0");
    }
}

#[test]
fn depth_mode_gives_baseline_times_fx_over_disparity_at_the_original_resolution() {
    let dir = write_dataset();
    let index = open(dir.path());
    let sample = load_sample(&index.entries[2], &options(LabelSet::TrainIds19, DepthTarget::Depth)).expect("load");
    for y in 0..16 {
        for x in 0..32 {
            let d = disparity(2, 2 * x as u32, 2 * y as u32);
            let expected = if d > 0.0 { (BASELINE * FX / f64::from(d)) as f32 } else { 0.0 };
            let got = sample.depth[y * 32 + x];
            assert!((got - expected).abs() <= 1e-5 * expected.max(1.0), "({x}, {y}): {got} vs {expected}");
        }
    }
    // 0.25 * 1000 / (12 + 0 / 8) at output (0, 2).
    assert!((sample.depth[2 * 32] - 250.0 / 12.0).abs() < 1e-4);
    assert_eq!(sample.depth[0], 0.0, "invalid disparity stays 0");
}

#[test]
fn load_all_keeps_index_order_and_respects_the_limit() {
    let dir = write_dataset();
    let index = open(dir.path());
    let opts = options(LabelSet::TrainIds19, DepthTarget::Disparity);
    let one_thread = load_all(&index, &opts, 1, None).expect("load");
    for threads in [0, 2, 3, 16] {
        assert_eq!(load_all(&index, &opts, threads, None).expect("load"), one_thread, "threads {threads}");
    }
    let ids: Vec<&str> = one_thread.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, IMAGES.map(|(_, id)| id));
    let limited = load_all(&index, &opts, 2, Some(2)).expect("load");
    assert_eq!(limited, one_thread[..2]);
    assert_eq!(load_all(&index, &opts, 2, Some(99)).expect("load").len(), 4);
}

#[test]
fn stats_count_class_pixels_and_valid_disparities_at_the_original_resolution() {
    let dir = write_dataset();
    let index = open(dir.path());
    let stats = DataStats::compute(&index, LabelSet::TrainIds19, 2).expect("stats");
    assert_eq!((stats.split, stats.images, stats.height, stats.width, stats.classes), (Split::Train, 4, 32, 64, 19));
    assert_eq!(stats.class_names[0], "road");
    // Per image: 32 odd columns of bicycle (1024 pixels); in the 32 even
    // columns, 16 rows of four 8-column bands (128 each) and 16 rows of person (512).
    let mut expected = vec![0u64; 19];
    expected[0] = 4 * 128; // road
    expected[10] = 4 * 128; // sky
    expected[13] = 4 * 128; // car
    expected[11] = 4 * 512; // person
    expected[18] = 4 * 1024; // bicycle
    assert_eq!(stats.class_pixels, expected);
    assert_eq!(stats.ignored_pixels, 4 * 128, "parking is not a train id");
    assert_eq!(stats.invalid_disparity_share, 4.0 / 32.0);
    assert_eq!(stats.disparity_min, 4.0);
    assert_eq!(stats.disparity_max, 16.0 + 63.0 / 8.0);
    assert!((stats.disparity_mean - (10.0 + 31.5 / 8.0)).abs() < 1e-9, "{}", stats.disparity_mean);

    let categories = DataStats::compute(&index, LabelSet::Categories7, 0).expect("stats");
    assert_eq!(categories.class_pixels, vec![4 * 256, 0, 0, 0, 4 * 128, 4 * 512, 4 * 1152]);
    assert_eq!(categories.ignored_pixels, 0);
    let table = categories.to_string();
    assert!(table.lines().any(|l| l.starts_with("vehicle") && l.contains("4608")), "{table}");
    let json = serde_json::to_value(&categories).expect("json");
    assert_eq!(json["class_names"][6], "vehicle");
}

// ---------------------------------------------------------------- errors

#[test]
fn a_missing_root_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("no-such-dataset");
    let error = CityscapesIndex::open(&root, Split::Train).unwrap_err();
    assert!(matches!(error, DataError::MissingRoot { .. }), "{error:?}");
    names(&error, &root);
}

#[test]
fn a_split_without_images_is_named() {
    let dir = write_dataset();
    let error = CityscapesIndex::open(dir.path(), Split::Val).unwrap_err();
    assert!(matches!(error, DataError::NoImages { .. }), "{error:?}");
    names(&error, &dir.path().join("leftImg8bit/val"));
    // A split folder holding only non-images has no images either.
    std::fs::create_dir_all(dir.path().join("leftImg8bit/val/lindau")).expect("mkdir");
    std::fs::write(dir.path().join("leftImg8bit/val/lindau/.DS_Store"), b"junk").expect("junk");
    let error = CityscapesIndex::open(dir.path(), Split::Val).unwrap_err();
    assert!(matches!(error, DataError::NoImages { .. }), "{error:?}");
}

#[test]
fn a_missing_companion_file_is_named_with_its_image_id() {
    for pick in [0, 1, 2] {
        let dir = write_dataset();
        let entry = open(dir.path()).entries[2].clone();
        let missing = [&entry.label, &entry.disparity, &entry.camera][pick];
        std::fs::remove_file(missing).expect("remove");
        let error = CityscapesIndex::open(dir.path(), Split::Train).unwrap_err();
        assert!(matches!(error, DataError::MissingFile { .. }), "{error:?}");
        let message = names(&error, missing);
        assert!(message.contains("bremen_000000_000019"), "{message}");
    }
}

#[test]
fn a_corrupt_png_is_a_decode_error_naming_it() {
    let dir = write_dataset();
    let index = open(dir.path());
    let opts = options(LabelSet::TrainIds19, DepthTarget::Disparity);
    for path in [&index.entries[1].image, &index.entries[1].label, &index.entries[1].disparity] {
        let good = std::fs::read(path).expect("read");
        std::fs::write(path, b"\x89PNG garbage garbage garbage garbage garbage").expect("write");
        let error = load_sample(&index.entries[1], &opts).unwrap_err();
        assert!(matches!(error, DataError::Decode { .. }), "{error:?}");
        names(&error, path);
        let error = load_all(&index, &opts, 3, None).unwrap_err();
        names(&error, path);
        std::fs::write(path, good).expect("restore");
    }
}

#[test]
fn load_all_reports_the_first_bad_image_in_index_order() {
    let dir = write_dataset();
    let index = open(dir.path());
    for k in [1, 3] {
        std::fs::write(&index.entries[k].image, b"not a png").expect("write");
    }
    for threads in [1, 2, 4] {
        let error =
            load_all(&index, &options(LabelSet::TrainIds19, DepthTarget::Disparity), threads, None).unwrap_err();
        names(&error, &index.entries[1].image);
    }
    // Within the limit, the second bad image is never read.
    let loaded = load_all(&index, &options(LabelSet::TrainIds19, DepthTarget::Disparity), 2, Some(1));
    assert_eq!(loaded.expect("the first image is fine").len(), 1);
}

#[test]
fn a_label_or_disparity_of_another_size_is_a_size_mismatch_naming_it() {
    let dir = write_dataset();
    let index = open(dir.path());
    let entry = &index.entries[0];
    let opts = options(LabelSet::TrainIds19, DepthTarget::Disparity);
    ImageBuffer::from_pixel(W / 2, H / 2, Luma([7u8])).save(&entry.label).expect("label");
    let error = load_sample(entry, &opts).unwrap_err();
    assert!(
        matches!(error, DataError::SizeMismatch { got_width: 32, got_height: 16, width: 64, height: 32, .. }),
        "{error:?}"
    );
    names(&error, &entry.label);
    names(&DataStats::compute(&index, LabelSet::TrainIds19, 1).unwrap_err(), &entry.label);

    let entry = &index.entries[1];
    ImageBuffer::from_pixel(W, H + 1, Luma([300u16])).save(&entry.disparity).expect("disparity");
    let error = load_sample(entry, &opts).unwrap_err();
    assert!(matches!(error, DataError::SizeMismatch { .. }), "{error:?}");
    names(&error, &entry.disparity);
}

#[test]
fn an_rgb_label_image_is_rejected_naming_it() {
    let dir = write_dataset();
    let index = open(dir.path());
    let entry = &index.entries[3];
    ImageBuffer::from_pixel(W, H, Rgb([7u8, 7, 7])).save(&entry.label).expect("label");
    let error = load_sample(entry, &options(LabelSet::TrainIds19, DepthTarget::Disparity)).unwrap_err();
    let message = names(&error, &entry.label);
    assert!(message.contains("8-bit grayscale"), "{message}");
    names(&DataStats::compute(&index, LabelSet::Categories7, 2).unwrap_err(), &entry.label);
}

#[test]
fn camera_json_is_read_only_for_depth_and_its_errors_name_file_and_key() {
    let dir = write_dataset();
    let index = open(dir.path());
    let entry = &index.entries[0];
    let disparity = options(LabelSet::TrainIds19, DepthTarget::Disparity);
    let depth = options(LabelSet::TrainIds19, DepthTarget::Depth);

    std::fs::write(&entry.camera, r#"{"extrinsic": {"baseline": 0.2}, "intrinsic": {"fy": 1000}}"#).expect("write");
    let message = names(&load_sample(entry, &depth).unwrap_err(), &entry.camera);
    assert!(message.contains("intrinsic.fx"), "{message}");
    assert!(load_sample(entry, &disparity).is_ok(), "disparity mode does not read camera.json");

    std::fs::write(&entry.camera, "{ this is not json").expect("write");
    let error = load_sample(entry, &depth).unwrap_err();
    assert!(matches!(error, DataError::Decode { .. }), "{error:?}");
    names(&error, &entry.camera);

    // Unreadable: a folder where the file should be.
    std::fs::remove_file(&entry.camera).expect("remove");
    std::fs::create_dir(&entry.camera).expect("mkdir");
    let error = load_sample(entry, &depth).unwrap_err();
    assert!(matches!(error, DataError::Io { .. }), "{error:?}");
    names(&error, &entry.camera);
}

// ------------------------------------------------------ PyTorch cross-check

#[derive(serde::Deserialize)]
struct Fixture {
    torch: String,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    height: usize,
    width: usize,
    channels: usize,
    out_height: usize,
    out_width: usize,
    integer_ratio: bool,
    image: Vec<u8>,
    bilinear: Vec<u8>,
    nearest: Vec<u8>,
}

fn fixture() -> Fixture {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", "resize_torch.json"].iter().collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn bilinear_resize_matches_pytorch_exactly_for_integer_ratios_and_within_one_otherwise() {
    let fixture = fixture();
    assert!(fixture.cases.iter().any(|c| c.integer_ratio) && fixture.cases.iter().any(|c| !c.integer_ratio));
    for case in &fixture.cases {
        let ours =
            resize_bilinear_u8(&case.image, case.width, case.height, case.channels, case.out_width, case.out_height);
        let shape = format!(
            "{}x{}x{} -> {}x{} (torch {})",
            case.height, case.width, case.channels, case.out_height, case.out_width, fixture.torch
        );
        assert_eq!(ours.len(), case.bilinear.len(), "{shape}");
        if case.integer_ratio {
            assert_eq!(ours, case.bilinear, "{shape}");
        } else {
            for (i, (&a, &b)) in ours.iter().zip(&case.bilinear).enumerate() {
                assert!(a.abs_diff(b) <= 1, "{shape}: element {i}: {a} vs torch {b}");
            }
        }
    }
}

#[test]
fn nearest_resize_matches_pytorch_exactly() {
    let fixture = fixture();
    for case in &fixture.cases {
        let first_channel: Vec<u8> = case.image.iter().step_by(case.channels).copied().collect();
        let ours = resize_nearest(&first_channel, case.width, case.height, case.out_width, case.out_height);
        assert_eq!(ours, case.nearest, "{}x{} -> {}x{}", case.height, case.width, case.out_height, case.out_width);
    }
}
