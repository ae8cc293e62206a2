//! A scene description, sampled from one RNG seeded by `(seed, split,
//! index)`: the camera, the street ([`street`]), what stands in it
//! ([`populate`]), sky and light ([`atmosphere`]) and the camera device
//! ([`Sensor`]).
//!
//! Everything is drawn from continuous distributions (and a few coin flips),
//! and the draws do not depend on the output size, so a scene is the same
//! street at every resolution.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::atmosphere::{self, Light, Sky};
use super::camera::{Camera, View};
use super::counts::Counts;
use super::district::{self, District};
use super::ground::Ground;
use super::objects::Rect;
use super::populate::populate;
use super::raster::Primitive;
use super::sensor::Sensor;
use super::street;
use crate::data::sample::Split;

/// Everything needed to render one scene.
#[derive(Debug, Clone)]
pub(crate) struct SceneDesc {
    pub view: View,
    pub ground: Ground,
    pub prims: Vec<Primitive>,
    /// Footprints of vehicles, darkened on the ground beneath them.
    pub shadows: Vec<Rect>,
    pub sky: Sky,
    pub light: Light,
    pub sensor: Sensor,
    /// The district's looks, applied to every surface's albedo.
    pub district: District,
    #[cfg_attr(not(test), allow(dead_code))]
    pub counts: Counts,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The RNG seed of image `index` of `split` for a dataset seed.
pub(crate) fn scene_seed(seed: u64, split: Split, index: usize) -> u64 {
    let tag = match split {
        Split::Train => 0x7472_6169_6e00_0001,
        Split::Val => 0x7661_6c00_0000_0002,
    };
    splitmix64(splitmix64(seed ^ tag) ^ index as u64)
}

/// Samples image `index` of `split` of the dataset `seed`, at `width`×`height`.
pub(crate) fn sample_scene(seed: u64, split: Split, index: usize, width: u32, height: u32) -> SceneDesc {
    let mut rng = ChaCha8Rng::seed_from_u64(scene_seed(seed, split, index));
    let district = District::new(seed, district::draw_rank(&mut rng));
    let camera = Camera::sample(&mut rng, width, height, (district.elevation, district.horizon));
    let urban: f32 = rng.random();
    let yaw = rng.random_range(-0.05..0.05) * if rng.random_bool(0.2) { 2.5 } else { 1.0 };
    // Sky first: windows and glass reflect it.
    let (sky, light) = atmosphere::sample(&mut rng, &district);
    let street = street::sample(&mut rng, urban);
    let population = populate(&mut rng, &street, sky.zenith, &district);
    let sensor = Sensor::sample(&mut rng);
    SceneDesc {
        view: View::new(camera, street.cam_s, yaw),
        ground: street.ground,
        prims: population.prims,
        shadows: population.shadows,
        sky,
        light,
        sensor,
        district,
        counts: population.counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_between_splits_and_indices() {
        let a = scene_seed(7, Split::Train, 0);
        assert_ne!(a, scene_seed(7, Split::Val, 0));
        assert_ne!(a, scene_seed(7, Split::Train, 1));
        assert_ne!(a, scene_seed(8, Split::Train, 0));
        assert_eq!(a, scene_seed(7, Split::Train, 0));
    }

    #[test]
    fn a_scene_is_the_same_street_at_every_resolution() {
        let small = sample_scene(3, Split::Train, 4, 128, 64);
        let large = sample_scene(3, Split::Train, 4, 256, 128);
        assert_eq!(small.prims, large.prims);
        assert_eq!(small.counts, large.counts);
        assert!((small.view.camera.v0 * 2.0 - large.view.camera.v0).abs() < 1e-9);
    }

    #[test]
    fn object_counts_vary_between_scenes() {
        let counts: Vec<Counts> = (0..40).map(|i| sample_scene(1, Split::Train, i, 64, 32).counts).collect();
        let things: Vec<usize> = counts.iter().map(Counts::things).collect();
        let distinct = things.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct >= 6, "{things:?}");
        assert!(things.contains(&0) || things.iter().min() < Some(&3), "{things:?}");
        assert!(counts.iter().any(|c| c.cars > 3), "{counts:?}");
        assert!(counts.iter().any(|c| c.people > 3), "{counts:?}");
        assert!(counts.iter().any(|c| c.trees > 0) && counts.iter().any(|c| c.trees == 0));
    }

    #[test]
    fn districts_repeat_at_the_head_and_rarely_in_the_tail() {
        let ranks: Vec<u32> = (0..2000).map(|i| sample_scene(5, Split::Train, i, 32, 16).district.rank).collect();
        let mut seen = std::collections::BTreeMap::new();
        for r in &ranks {
            *seen.entry(*r).or_insert(0usize) += 1;
        }
        // The commonest district holds a few per cent of the images, yet
        // most districts appear once: 1000 images see fewer than 2000 do.
        assert!(seen.get(&0).is_some_and(|&n| n > 60), "{:?}", seen.get(&0));
        let once = seen.values().filter(|&&n| n == 1).count();
        assert!(once > 600, "{once}");
        let half: std::collections::BTreeSet<_> = ranks[..1000].iter().collect();
        assert!(seen.len() as f32 > 1.5 * half.len() as f32, "{} vs {}", seen.len(), half.len());
    }

    #[test]
    fn the_district_sets_the_camera_rig() {
        let heights: Vec<f64> = (0..60).map(|i| sample_scene(2, Split::Val, i, 64, 32).view.camera.elevation).collect();
        assert!(heights.iter().any(|&h| h < 1.4) && heights.iter().any(|&h| h > 2.0), "{heights:?}");
        let a = sample_scene(2, Split::Val, 7, 64, 32);
        let d = District::new(2, a.district.rank);
        assert!((a.view.camera.elevation - d.elevation as f64).abs() <= 0.1 + 1e-6);
    }
}
