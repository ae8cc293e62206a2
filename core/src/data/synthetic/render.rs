//! Rendering a scene description to an image, a label image and a disparity
//! map: z-buffer, shading with sun, sky light and cast shadows, haze; then
//! the sensor's bonnet, response and stereo holes.

use super::geometry::Face;
use super::ground::GroundPart;
use super::raster::{rasterize, GROUND, SKY};
use super::scene::{sample_scene, SceneDesc};
use super::shadow::Shadows;
use super::texture::{mix, Rgb};
use crate::data::labels::LABELS;
use crate::data::sample::Split;

/// Surfaces farther than this (metres) get no disparity: stereo matching
/// cannot resolve them.
pub(crate) const MAX_DEPTH: f32 = 300.0;

/// One rendered street scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
    /// RGB, row-major `[height, width, 3]`.
    pub rgb: Vec<u8>,
    /// Cityscapes id per pixel, `[height, width]`.
    pub label_ids: Vec<u8>,
    /// Disparity in pixels at this resolution, 0 = invalid; `[height, width]`.
    pub disparity: Vec<f32>,
    /// Stereo baseline, metres: `depth = baseline · fx / disparity`.
    pub baseline: f64,
    /// Focal lengths in pixels: Cityscapes' scaled to this size.
    pub fx: f64,
    pub fy: f64,
    /// The principal column, `width / 2`.
    pub u0: f64,
    /// The principal row, which is also the horizon (the optical axis is level).
    pub v0: f64,
    /// Height of the camera above the road, metres.
    pub camera_height: f64,
}

/// Renders image `index` of `split` of the synthetic dataset `seed` at
/// `width`×`height`. The same arguments always give the same bytes.
pub fn render_scene(seed: u64, split: Split, index: usize, height: u32, width: u32) -> Scene {
    render(&sample_scene(seed, split, index, width, height))
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Renders a sampled description.
pub(crate) fn render(desc: &SceneDesc) -> Scene {
    let view = &desc.view;
    let raster = rasterize(view, &desc.ground, &desc.prims);
    let (w, h) = (raster.width, raster.height);
    let camera = view.camera;
    let light = &desc.light;
    let mut colour: Vec<Rgb> = vec![[0.0; 3]; w * h];
    let mut label_ids = vec![0u8; w * h];
    let mut disparity = vec![0f32; w * h];
    let sunny = light.sun.iter().any(|&c| c > 0.02);
    let shadows = sunny.then(|| Shadows::new(&desc.prims, light.dir));
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let ray = view.ray(x, y);
            let z = raster.depth[i];
            if raster.owner[i] == SKY {
                colour[i] = desc.sky.colour(ray.a + view.yaw, ray.b);
                label_ids[i] = LABELS[23].id;
                continue;
            }
            let p = ray.at(z);
            let (albedo, normal, label, shadow) = match raster.owner[i] {
                GROUND => {
                    let part = GroundPart::from_u8(raster.part[i]);
                    let under = part == GroundPart::Road || matches!(part, GroundPart::Left(_) | GroundPart::Right(_));
                    let shadow = under && desc.shadows.iter().any(|r| r.contains(p[0], p[2], 0.15));
                    (desc.ground.albedo(part, p), desc.ground.normal(part), desc.ground.label(part, p), shadow)
                }
                index => {
                    let prim = &desc.prims[index as usize];
                    let face = Face::from_u8(raster.part[i]);
                    (prim.material.albedo(p, face), prim.shape.normal(p, face), prim.label, false)
                }
            };
            let albedo = desc.district.look(label).apply(albedo, p);
            let mut sun = dot(normal, light.dir).max(0.0);
            if let (Some(shadows), true) = (&shadows, sun > 0.0) {
                let lifted = [p[0] + 0.02 * normal[0], p[1] + 0.02 * normal[1], p[2] + 0.02 * normal[2]];
                if !shadows.lit(lifted) {
                    sun = 0.0;
                }
            }
            let sky_light = 0.75 + 0.25 * normal[1];
            let mut c = [0.0; 3];
            for k in 0..3 {
                c[k] = albedo[k] * (light.ambient[k] * sky_light + light.sun[k] * sun);
            }
            if shadow {
                c = mix(c, [0.0; 3], light.contact_shadow);
            }
            let haze = 1.0 - (-z / light.visibility).exp();
            colour[i] = mix(c, light.haze, haze);
            label_ids[i] = label;
            if z < MAX_DEPTH {
                disparity[i] = camera.disparity(z);
            }
        }
    }
    let sensor = &desc.sensor;
    sensor.draw_bonnet(&mut colour, &mut label_ids, &mut disparity, w, desc.sky.horizon);
    let rgb = sensor.develop(&colour, w);
    sensor.punch_holes(&mut disparity, w);
    Scene {
        height: h as u32,
        width: w as u32,
        rgb,
        label_ids,
        disparity,
        baseline: camera.baseline,
        fx: camera.fx,
        fy: camera.fy,
        u0: camera.u0,
        v0: camera.v0,
        camera_height: camera.elevation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROAD: u8 = 7;
    const SKY_ID: u8 = 23;
    const CAR: u8 = 26;

    fn scenes(n: usize) -> impl Iterator<Item = Scene> {
        (0..n).map(|i| render_scene(11, Split::Train, i, 64, 128))
    }

    #[test]
    fn the_same_seed_renders_byte_identical_scenes() {
        let a = render_scene(5, Split::Val, 3, 64, 128);
        let b = render_scene(5, Split::Val, 3, 64, 128);
        assert_eq!(a, b);
    }

    #[test]
    fn different_indices_and_splits_render_different_scenes() {
        let a = render_scene(5, Split::Train, 3, 64, 128);
        let b = render_scene(5, Split::Train, 4, 64, 128);
        let c = render_scene(5, Split::Val, 3, 64, 128);
        assert_ne!(a.rgb, b.rgb);
        assert_ne!(a.label_ids, b.label_ids);
        assert_ne!(a.rgb, c.rgb);
    }

    #[test]
    fn the_district_palette_changes_colours_but_not_labels_or_disparity() {
        let mut recoloured = 0;
        for i in 0..6 {
            let desc = sample_scene(4, Split::Train, i, 128, 64);
            let plain = SceneDesc { district: desc.district.plain(), ..desc.clone() };
            let (a, b) = (render(&desc), render(&plain));
            assert_eq!(a.label_ids, b.label_ids);
            assert_eq!(a.disparity, b.disparity);
            recoloured += usize::from(a.rgb != b.rgb);
        }
        assert!(recoloured >= 4, "{recoloured}");
    }

    #[test]
    fn buffers_have_the_requested_size() {
        let s = render_scene(1, Split::Train, 0, 32, 80);
        assert_eq!((s.width, s.height), (80, 32));
        assert_eq!(s.rgb.len(), 80 * 32 * 3);
        assert_eq!(s.label_ids.len(), 80 * 32);
        assert_eq!(s.disparity.len(), 80 * 32);
    }

    #[test]
    fn sky_pixels_have_invalid_disparity() {
        let mut sky = 0;
        for s in scenes(10) {
            for (label, d) in s.label_ids.iter().zip(&s.disparity) {
                if *label == SKY_ID {
                    assert_eq!(*d, 0.0);
                    sky += 1;
                }
            }
        }
        assert!(sky > 1000, "{sky}");
    }

    #[test]
    fn every_label_written_is_a_cityscapes_id() {
        for s in scenes(10) {
            for &id in &s.label_ids {
                assert!(LABELS.iter().any(|l| l.id == id), "id {id}");
            }
        }
    }

    #[test]
    fn road_disparity_grows_toward_the_bottom_and_matches_the_flat_road() {
        let mut pairs = 0;
        for s in scenes(10) {
            let w = s.width as usize;
            for y in 0..s.height as usize - 1 {
                for x in 0..w {
                    let (i, j) = (y * w + x, (y + 1) * w + x);
                    if s.label_ids[i] == ROAD && s.label_ids[j] == ROAD && s.disparity[i] > 0.0 && s.disparity[j] > 0.0
                    {
                        assert!(s.disparity[j] > s.disparity[i], "({x},{y})");
                        pairs += 1;
                    }
                }
                // A flat road at the camera's height: d = fx·B·(v − v0)/(fy·h).
                let i = y * w + w / 2;
                if s.label_ids[i] == ROAD && s.disparity[i] > 0.0 {
                    let expected = s.fx * s.baseline * (y as f64 + 0.5 - s.v0) / (s.fy * s.camera_height);
                    assert!(
                        (s.disparity[i] as f64 - expected).abs() < 1e-3 * expected.max(1.0),
                        "{} {expected}",
                        s.disparity[i]
                    );
                }
            }
        }
        assert!(pairs > 1000);
    }

    #[test]
    fn a_car_is_nearer_than_the_road_seen_just_above_it() {
        let mut checked = 0;
        for s in (0..30).map(|i| render_scene(2, Split::Train, i, 64, 128)) {
            let w = s.width as usize;
            for y in 1..s.height as usize {
                for x in 0..w {
                    let (above, here) = ((y - 1) * w + x, y * w + x);
                    if s.label_ids[here] == CAR
                        && s.label_ids[above] == ROAD
                        && s.disparity[here] > 0.0
                        && s.disparity[above] > 0.0
                    {
                        assert!(s.disparity[here] > s.disparity[above]);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 5, "{checked}");
    }

    #[test]
    fn depth_from_disparity_uses_the_scene_camera() {
        let s = render_scene(9, Split::Train, 1, 64, 128);
        for &d in s.disparity.iter().filter(|d| **d > 0.0) {
            let depth = s.baseline * s.fx / d as f64;
            assert!(depth > 0.29 && depth <= MAX_DEPTH as f64 + 1e-3, "{depth}");
        }
    }

    #[test]
    fn invalid_disparity_covers_a_minority_of_the_ground_and_objects() {
        for s in scenes(10) {
            let (mut solid, mut invalid) = (0usize, 0usize);
            for (label, d) in s.label_ids.iter().zip(&s.disparity) {
                if *label != SKY_ID && *label != 1 {
                    solid += 1;
                    invalid += usize::from(*d == 0.0);
                }
            }
            assert!((invalid as f64) < 0.35 * solid as f64, "{invalid}/{solid}");
        }
    }

    #[test]
    fn scenes_vary_in_class_shares_and_brightness() {
        let n = 50;
        let mut shares: Vec<[f64; 4]> = Vec::new();
        let mut brightness = Vec::new();
        for s in (0..n).map(|i| render_scene(4, Split::Train, i, 32, 64)) {
            let total = s.label_ids.len() as f64;
            let share = |ids: &[u8]| s.label_ids.iter().filter(|l| ids.contains(l)).count() as f64 / total;
            shares.push([share(&[7]), share(&[11]), share(&[21, 22]), share(&[24, 25, 26, 27, 28, 33])]);
            brightness.push(s.rgb.iter().map(|&v| v as f64).sum::<f64>() / s.rgb.len() as f64);
        }
        let std = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        for (k, name) in ["road", "building", "nature", "things"].iter().enumerate() {
            let column: Vec<f64> = shares.iter().map(|s| s[k]).collect();
            assert!(std(&column) > 0.02, "{name}: {column:?}");
        }
        assert!(std(&brightness) > 8.0, "{brightness:?}");
    }
}
