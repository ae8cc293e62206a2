//! The Cityscapes folder layout: indexing a split and loading its samples.
//!
//! ```text
//! <root>/leftImg8bit/<split>/<city>/<id>_leftImg8bit.png      8-bit RGB
//! <root>/gtFine/<split>/<city>/<id>_gtFine_labelIds.png       8-bit ids 0..=33
//! <root>/disparity/<split>/<city>/<id>_disparity.png          16-bit, (p − 1)/256
//! <root>/camera/<split>/<city>/<id>_camera.json               baseline, fx
//! ```
//!
//! with `<id> = <city>_<seq>_<frame>`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::decode::{read_camera, read_disparity, read_label_ids, read_rgb};
use super::resize::{resize_bilinear_u8, resize_nearest};
use super::{DataError, DepthTarget, LabelSet, Sample, Split};

/// The suffix of the RGB images; what precedes it is the image id.
const IMAGE_SUFFIX: &str = "_leftImg8bit.png";

/// One image of a split and the paths of its three companion files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `<city>_<seq>_<frame>`.
    pub id: String,
    /// The city folder the image was found in.
    pub city: String,
    /// `leftImg8bit/<split>/<city>/<id>_leftImg8bit.png`.
    pub image: PathBuf,
    /// `gtFine/<split>/<city>/<id>_gtFine_labelIds.png`.
    pub label: PathBuf,
    /// `disparity/<split>/<city>/<id>_disparity.png`.
    pub disparity: PathBuf,
    /// `camera/<split>/<city>/<id>_camera.json`.
    pub camera: PathBuf,
}

impl Entry {
    /// The entry of image `id` in folder `city` of `split` under `root`.
    pub fn new(root: &Path, split: Split, city: &str, id: &str) -> Self {
        let folder = |kind: &str| root.join(kind).join(split.as_str()).join(city);
        Entry {
            id: id.to_string(),
            city: city.to_string(),
            image: folder("leftImg8bit").join(format!("{id}{IMAGE_SUFFIX}")),
            label: folder("gtFine").join(format!("{id}_gtFine_labelIds.png")),
            disparity: folder("disparity").join(format!("{id}_disparity.png")),
            camera: folder("camera").join(format!("{id}_camera.json")),
        }
    }
}

/// The images of one split of a Cityscapes-layout folder, sorted by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CityscapesIndex {
    pub root: PathBuf,
    pub split: Split,
    /// Sorted by id; never empty.
    pub entries: Vec<Entry>,
}

impl CityscapesIndex {
    /// Indexes `root` for `split`: every `leftImg8bit/<split>/<city>/*_leftImg8bit.png`
    /// (other files are ignored), sorted by id, each with its label,
    /// disparity and camera file, whose existence is checked.
    ///
    /// Errors: [`DataError::MissingRoot`] if `root` does not exist,
    /// [`DataError::NoImages`] if the split has no image,
    /// [`DataError::MissingFile`] for the first (by id) missing companion
    /// file, [`DataError::Invalid`] if two cities hold the same id.
    pub fn open(root: impl AsRef<Path>, split: Split) -> Result<Self, DataError> {
        let root = root.as_ref().to_path_buf();
        if !root.exists() {
            return Err(DataError::MissingRoot { path: root });
        }
        let images = root.join("leftImg8bit").join(split.as_str());
        let no_images = || DataError::NoImages { split: split.to_string(), path: images.clone() };
        if !images.is_dir() {
            return Err(no_images());
        }
        let mut entries = Vec::new();
        for city_dir in sorted_dir(&images)? {
            if !city_dir.is_dir() {
                continue;
            }
            let Some(city) = city_dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            for file in sorted_dir(&city_dir)? {
                let Some(id) = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(IMAGE_SUFFIX))
                    .filter(|id| !id.is_empty())
                else {
                    continue;
                };
                if file.is_file() {
                    entries.push(Entry::new(&root, split, city, id));
                }
            }
        }
        if entries.is_empty() {
            return Err(no_images());
        }
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        for pair in entries.windows(2) {
            if pair[0].id == pair[1].id {
                return Err(DataError::invalid(
                    &pair[1].image,
                    format!("image id {} also appears as {}", pair[1].id, pair[0].image.display()),
                ));
            }
        }
        for entry in &entries {
            for path in [&entry.label, &entry.disparity, &entry.camera] {
                if !path.is_file() {
                    return Err(DataError::MissingFile { path: path.clone(), id: entry.id.clone() });
                }
            }
        }
        tracing::debug!(root = %root.display(), %split, images = entries.len(), "indexed Cityscapes split");
        Ok(CityscapesIndex { root, split, entries })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index has no image (never true for an opened index).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The paths in a folder, sorted.
fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut paths = std::fs::read_dir(dir)
        .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect::<Result<Vec<_>, _>>())
        .map_err(|e| DataError::io(dir, e))?;
    paths.sort();
    Ok(paths)
}

/// How samples are loaded: the training resolution and targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Output height in pixels.
    pub height: usize,
    /// Output width in pixels.
    pub width: usize,
    /// Which class space the label ids are mapped to.
    pub classes: LabelSet,
    /// Whether the depth channel holds disparity or metric depth.
    pub depth: DepthTarget,
}

/// Loads one image with its labels at `opts`' resolution.
///
/// The image is resized bilinearly; label ids are mapped to classes (ignored
/// ids to [`super::IGNORE`]) and then resized nearest. The depth channel is
/// resized nearest: disparity is multiplied by `width / original width`;
/// depth (`baseline · fx / d`, read from camera.json only in that mode) is
/// computed at the original resolution and needs no scaling. Invalid pixels
/// (disparity 0) stay 0.
///
/// Errors name the offending file; a label or disparity image whose size
/// differs from the image's is [`DataError::SizeMismatch`].
pub fn load_sample(entry: &Entry, opts: &LoadOptions) -> Result<Sample, DataError> {
    let (height, width) = (opts.height, opts.width);
    if height == 0 || width == 0 {
        return Err(DataError::invalid(&entry.image, format!("cannot load at a size of {width}x{height}")));
    }
    let (w, h, rgb) = read_rgb(&entry.image)?;
    let check_size = |path: &Path, got_width: u32, got_height: u32| {
        if (got_width, got_height) == (w, h) {
            Ok(())
        } else {
            Err(DataError::SizeMismatch { path: path.to_path_buf(), got_width, got_height, width: w, height: h })
        }
    };
    let (lw, lh, ids) = read_label_ids(&entry.label)?;
    check_size(&entry.label, lw, lh)?;
    let (dw, dh, disparity) = read_disparity(&entry.disparity)?;
    check_size(&entry.disparity, dw, dh)?;
    let (w, h) = (w as usize, h as usize);

    let image = resize_bilinear_u8(&rgb, w, h, 3, width, height);
    let lut = opts.classes.lut();
    let classes: Vec<u8> = ids.iter().map(|&id| lut[id as usize]).collect();
    let label = resize_nearest(&classes, w, h, width, height);
    let depth = match opts.depth {
        DepthTarget::Disparity => {
            let ratio = width as f32 / w as f32;
            let mut depth = resize_nearest(&disparity, w, h, width, height);
            depth.iter_mut().for_each(|d| *d *= ratio);
            depth
        }
        DepthTarget::Depth => {
            let camera = read_camera(&entry.camera)?;
            let depth: Vec<f32> = disparity.iter().map(|&d| camera.depth_of_disparity(d)).collect();
            resize_nearest(&depth, w, h, width, height)
        }
    };
    Ok(Sample { id: entry.id.clone(), height, width, image, label, depth })
}

/// Loads the first `limit` images of `index` (all if `None`) with
/// [`load_sample`] on `threads` threads (0: as many as the machine has),
/// returning them in index order. On failure, the error of the first failing
/// image in index order is returned.
pub fn load_all(
    index: &CityscapesIndex,
    opts: &LoadOptions,
    threads: usize,
    limit: Option<usize>,
) -> Result<Vec<Sample>, DataError> {
    let entries = &index.entries[..limit.map_or(index.entries.len(), |n| n.min(index.entries.len()))];
    let started = std::time::Instant::now();
    let samples = parallel_map(entries, threads, |entry| load_sample(entry, opts))?;
    tracing::info!(
        split = %index.split,
        images = samples.len(),
        height = opts.height,
        width = opts.width,
        seconds = started.elapsed().as_secs_f32(),
        "loaded Cityscapes samples"
    );
    Ok(samples)
}

/// Applies `f` to every item on up to `threads` scoped threads (0: the
/// machine's parallelism) and returns the results in item order, or the error
/// of the first failing item in item order. After a failure, items after it
/// are skipped; items before it are still processed, so that the reported
/// error does not depend on thread timing.
pub(crate) fn parallel_map<I, T, F>(items: &[I], threads: usize, f: F) -> Result<Vec<T>, DataError>
where
    I: Sync,
    T: Send,
    F: Fn(&I) -> Result<T, DataError> + Sync,
{
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(items.len())
    .max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let first_failure = AtomicUsize::new(usize::MAX);
    let error: Mutex<Option<(usize, DataError)>> = Mutex::new(None);
    let mut slots: Vec<Option<T>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let done: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= items.len() || i > first_failure.load(Ordering::Relaxed) {
                            break;
                        }
                        match f(&items[i]) {
                            Ok(value) => done.push((i, value)),
                            Err(e) => {
                                first_failure.fetch_min(i, Ordering::Relaxed);
                                let mut slot = error.lock().unwrap_or_else(|p| p.into_inner());
                                if slot.as_ref().is_none_or(|(j, _)| i < *j) {
                                    *slot = Some((i, e));
                                }
                            }
                        }
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    if let Some((_, e)) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    for (i, value) in done.into_iter().flatten() {
        slots[i] = Some(value);
    }
    Ok(slots.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_follow_the_cityscapes_layout() {
        let entry = Entry::new(Path::new("/d"), Split::Val, "lindau", "lindau_000001_000019");
        assert_eq!(entry.image, Path::new("/d/leftImg8bit/val/lindau/lindau_000001_000019_leftImg8bit.png"));
        assert_eq!(entry.label, Path::new("/d/gtFine/val/lindau/lindau_000001_000019_gtFine_labelIds.png"));
        assert_eq!(entry.disparity, Path::new("/d/disparity/val/lindau/lindau_000001_000019_disparity.png"));
        assert_eq!(entry.camera, Path::new("/d/camera/val/lindau/lindau_000001_000019_camera.json"));
    }

    #[test]
    fn parallel_map_keeps_item_order() {
        let items: Vec<usize> = (0..100).collect();
        for threads in [0, 1, 3, 8, 200] {
            let out = parallel_map(&items, threads, |&i| Ok(i * 2)).expect("map");
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn parallel_map_reports_the_first_failing_item() {
        let items: Vec<usize> = (0..200).collect();
        for threads in [1, 2, 7] {
            let error = parallel_map(&items, threads, |&i| {
                if i % 50 == 37 {
                    Err(DataError::invalid(format!("item{i}"), "bad"))
                } else {
                    Ok(i)
                }
            })
            .unwrap_err();
            assert_eq!(error.to_string(), "item37: bad", "threads {threads}");
        }
    }

    #[test]
    fn parallel_map_of_nothing_is_empty() {
        let items: Vec<u8> = Vec::new();
        assert!(parallel_map(&items, 4, |&i| Ok(i)).expect("map").is_empty());
    }
}
