//! Dataset statistics (`dmtl data-stats`): class pixel counts and the
//! disparity range of a split, read at the files' original resolution.

use std::fmt;

use serde::Serialize;

use super::cityscapes::{parallel_map, CityscapesIndex, Entry};
use super::decode::{read_disparity_raw, read_label_ids, read_png_header};
use super::{DataError, LabelSet, Split};

/// Statistics of one split, at the files' original resolution.
///
/// A disparity pixel is valid when its decoded disparity is positive
/// (stored value `p ≥ 2`): `p = 0` is invalid by the Cityscapes convention
/// and `p = 1` decodes to 0, which the loader and the losses also treat as
/// invalid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataStats {
    pub split: Split,
    /// The number of images.
    pub images: usize,
    /// Height of the first image, in pixels.
    pub height: usize,
    /// Width of the first image, in pixels.
    pub width: usize,
    /// The number of classes of the label set.
    pub classes: usize,
    /// The class names, indexed by class.
    pub class_names: Vec<String>,
    /// Pixels of each class over all label images, indexed by class.
    pub class_pixels: Vec<u64>,
    /// Pixels whose id maps to no class.
    pub ignored_pixels: u64,
    /// The share (0..=1) of disparity pixels that are invalid.
    pub invalid_disparity_share: f64,
    /// The smallest valid disparity in pixels (0 if none is valid).
    pub disparity_min: f64,
    /// The mean valid disparity in pixels (0 if none is valid).
    pub disparity_mean: f64,
    /// The largest valid disparity in pixels (0 if none is valid).
    pub disparity_max: f64,
}

/// Counts of one image, merged into [`DataStats`].
#[derive(Debug, Clone)]
struct Counts {
    width: u32,
    height: u32,
    class_pixels: Vec<u64>,
    ignored_pixels: u64,
    disparity_pixels: u64,
    valid_pixels: u64,
    /// Sum of `p − 1` over valid pixels (exact; the disparity is that / 256).
    valid_sum: u64,
    /// Smallest and largest stored value over valid pixels.
    valid_range: Option<(u16, u16)>,
}

/// Reads one image's label and disparity files and counts them.
fn count(entry: &Entry, classes: LabelSet) -> Result<Counts, DataError> {
    let header = read_png_header(&entry.image)?;
    let check_size = |path: &std::path::Path, got_width: u32, got_height: u32| {
        if (got_width, got_height) == (header.width, header.height) {
            Ok(())
        } else {
            Err(DataError::SizeMismatch {
                path: path.to_path_buf(),
                got_width,
                got_height,
                width: header.width,
                height: header.height,
            })
        }
    };
    let (lw, lh, ids) = read_label_ids(&entry.label)?;
    check_size(&entry.label, lw, lh)?;
    let (dw, dh, disparity) = read_disparity_raw(&entry.disparity)?;
    check_size(&entry.disparity, dw, dh)?;

    let mut per_id = [0u64; 256];
    for &id in &ids {
        per_id[id as usize] += 1;
    }
    let lut = classes.lut();
    let mut class_pixels = vec![0u64; classes.num_classes()];
    let mut ignored_pixels = 0;
    for (id, &n) in per_id.iter().enumerate() {
        match class_pixels.get_mut(lut[id] as usize) {
            Some(slot) => *slot += n,
            None => ignored_pixels += n,
        }
    }

    let (mut valid_pixels, mut valid_sum, mut valid_range) = (0u64, 0u64, None::<(u16, u16)>);
    for &p in disparity.iter().filter(|&&p| p >= 2) {
        valid_pixels += 1;
        valid_sum += u64::from(p - 1);
        valid_range = Some(valid_range.map_or((p, p), |(lo, hi)| (lo.min(p), hi.max(p))));
    }
    Ok(Counts {
        width: header.width,
        height: header.height,
        class_pixels,
        ignored_pixels,
        disparity_pixels: disparity.len() as u64,
        valid_pixels,
        valid_sum,
        valid_range,
    })
}

/// Computes the statistics of `index`; see [`DataStats::compute`].
pub fn compute(index: &CityscapesIndex, classes: LabelSet, threads: usize) -> Result<DataStats, DataError> {
    DataStats::compute(index, classes, threads)
}

impl DataStats {
    /// Reads every label and disparity file of `index` at its original
    /// resolution, on `threads` threads (0: as many as the machine has), and
    /// counts class pixels (ids mapped through `classes`) and valid
    /// disparities. Label and disparity sizes are checked against the image's
    /// (read from its PNG header only).
    pub fn compute(index: &CityscapesIndex, classes: LabelSet, threads: usize) -> Result<Self, DataError> {
        let counts = parallel_map(&index.entries, threads, |entry| count(entry, classes))?;
        let mut class_pixels = vec![0u64; classes.num_classes()];
        let (mut ignored_pixels, mut disparity_pixels, mut valid_pixels, mut valid_sum) = (0, 0, 0, 0);
        let mut valid_range: Option<(u16, u16)> = None;
        for c in &counts {
            class_pixels.iter_mut().zip(&c.class_pixels).for_each(|(total, n)| *total += n);
            ignored_pixels += c.ignored_pixels;
            disparity_pixels += c.disparity_pixels;
            valid_pixels += c.valid_pixels;
            valid_sum += c.valid_sum;
            if let Some((lo, hi)) = c.valid_range {
                valid_range = Some(valid_range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
        }
        let decode = |p: u16| f64::from(p - 1) / 256.0;
        let (disparity_min, disparity_max) = valid_range.map_or((0.0, 0.0), |(lo, hi)| (decode(lo), decode(hi)));
        let disparity_mean = if valid_pixels > 0 { valid_sum as f64 / 256.0 / valid_pixels as f64 } else { 0.0 };
        let invalid_disparity_share =
            if disparity_pixels > 0 { (disparity_pixels - valid_pixels) as f64 / disparity_pixels as f64 } else { 0.0 };
        let first = counts.first();
        Ok(DataStats {
            split: index.split,
            images: counts.len(),
            height: first.map_or(0, |c| c.height as usize),
            width: first.map_or(0, |c| c.width as usize),
            classes: classes.num_classes(),
            class_names: classes.class_names().into_iter().map(String::from).collect(),
            class_pixels,
            ignored_pixels,
            invalid_disparity_share,
            disparity_min,
            disparity_mean,
            disparity_max,
        })
    }

    /// All label pixels, classes and ignored together.
    pub fn total_pixels(&self) -> u64 {
        self.class_pixels.iter().sum::<u64>() + self.ignored_pixels
    }
}

impl fmt::Display for DataStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "split {}: {} images, {}x{} (width x height of the first image), {} classes",
            self.split, self.images, self.width, self.height, self.classes
        )?;
        let total = self.total_pixels();
        let share = |n: u64| {
            if total > 0 {
                100.0 * n as f64 / total as f64
            } else {
                0.0
            }
        };
        let name_width = self.class_names.iter().map(String::len).max().unwrap_or(0).max("(ignored)".len());
        writeln!(f, "{:<name_width$}  {:>14}  {:>8}", "class", "pixels", "share %")?;
        for (name, &n) in self.class_names.iter().zip(&self.class_pixels) {
            writeln!(f, "{name:<name_width$}  {n:>14}  {:>8.2}", share(n))?;
        }
        writeln!(f, "{:<name_width$}  {:>14}  {:>8.2}", "(ignored)", self.ignored_pixels, share(self.ignored_pixels))?;
        write!(
            f,
            "disparity: {:.2} % invalid; valid pixels min {:.3}, mean {:.3}, max {:.3} px",
            100.0 * self.invalid_disparity_share,
            self.disparity_min,
            self.disparity_mean,
            self.disparity_max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> DataStats {
        DataStats {
            split: Split::Val,
            images: 2,
            height: 4,
            width: 8,
            classes: 2,
            class_names: vec!["road".into(), "sky".into()],
            class_pixels: vec![30, 10],
            ignored_pixels: 60,
            invalid_disparity_share: 0.25,
            disparity_min: 1.0,
            disparity_mean: 2.5,
            disparity_max: 4.0,
        }
    }

    #[test]
    fn the_table_lists_every_class_with_its_share() {
        let text = stats().to_string();
        assert!(text.contains("split val: 2 images, 8x4"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("road") && l.contains(" 30 ") && l.ends_with("30.00")), "{text}");
        assert!(text.lines().any(|l| l.starts_with("sky") && l.ends_with("10.00")), "{text}");
        assert!(text.lines().any(|l| l.starts_with("(ignored)") && l.ends_with("60.00")), "{text}");
        assert!(text.contains("25.00 % invalid"), "{text}");
    }

    #[test]
    fn stats_serialize_to_json_with_named_fields() {
        let json = serde_json::to_value(stats()).expect("json");
        assert_eq!(json["split"], "val");
        assert_eq!(json["class_pixels"][0], 30);
        assert_eq!(json["invalid_disparity_share"], 0.25);
    }

    #[test]
    fn shares_of_an_empty_dataset_are_zero() {
        let mut empty = stats();
        empty.class_pixels = vec![0, 0];
        empty.ignored_pixels = 0;
        assert!(empty.to_string().contains("0.00"));
    }
}
