//! Sky and light: a sky gradient with clouds, ambient light, the sun (its
//! colour, strength and direction) and haze.

use rand::Rng;

use super::district::District;
use super::texture::{fbm2, hsv, hsv_jitter, mix, scale, Rgb};

/// Cityscapes id of the sky.
const SKY_ID: u8 = 23;

/// The sky: a gradient from horizon to zenith with clouds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sky {
    pub zenith: Rgb,
    pub horizon: Rgb,
    pub cloud: Rgb,
    /// Fraction of the sky covered by clouds, 0..1.
    pub cover: f32,
    /// Cloud size, metres on a cloud plane 1 km up.
    pub cloud_scale: f32,
    pub seed: u32,
}

/// Global lighting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Light {
    pub ambient: Rgb,
    pub sun: Rgb,
    /// Unit vector towards the sun, road frame.
    pub dir: [f32; 3],
    /// Colour of the haze that distant surfaces fade into.
    pub haze: Rgb,
    /// Distance (metres) at which haze covers 63 %.
    pub visibility: f32,
    /// Darkening under vehicles, 0 (none) to 1 (black).
    pub contact_shadow: f32,
}

impl Sky {
    /// The colour seen along a ray with lateral slope `a` (in camera
    /// coordinates) and descent `b` (negative above the horizon).
    pub fn colour(&self, a: f32, b: f32) -> Rgb {
        let up = (-b).max(0.0);
        let base = mix(self.horizon, self.zenith, (up / 0.5).min(1.0).powf(0.6));
        if up < 1e-3 {
            return base;
        }
        // Clouds on a plane 1 km up, in metres.
        let z = 1000.0 / up;
        let s = a * z;
        let n = fbm2(s / self.cloud_scale, z / self.cloud_scale, self.seed, 3);
        let cover = ((n - (1.0 - self.cover)) * 4.0).clamp(0.0, 1.0);
        mix(base, self.cloud, cover * 0.9)
    }
}

/// Samples the weather: clear (blue sky, sun, shadows) to overcast (grey,
/// no sun, shorter visibility), on a continuous scale; the district tints
/// the light and scales the visibility, and its sky look recolours the sky
/// and the haze.
pub(crate) fn sample(rng: &mut impl Rng, district: &District) -> (Sky, Light) {
    let overcast: f32 = rng.random();
    let sky = if overcast > 0.6 {
        let grey = hsv_jitter(rng, 215.0, 0.06, 0.78, [20.0, 0.05, 0.15]);
        Sky {
            zenith: scale(grey, 0.9),
            horizon: scale(grey, 1.08),
            cloud: scale(grey, rng.random_range(0.8..1.1)),
            cover: rng.random_range(0.5..1.0),
            cloud_scale: rng.random_range(300.0..1500.0),
            seed: rng.random(),
        }
    } else {
        let zenith = hsv_jitter(rng, 212.0, 0.55, 0.78, [12.0, 0.2, 0.15]);
        Sky {
            zenith,
            horizon: mix(zenith, [0.92, 0.93, 0.95], rng.random_range(0.4..0.85)),
            cloud: hsv_jitter(rng, 220.0, 0.04, 0.92, [30.0, 0.04, 0.07]),
            cover: rng.random_range(0.0..0.6),
            cloud_scale: rng.random_range(300.0..1500.0),
            seed: rng.random(),
        }
    };
    let sun_strength = (1.0 - overcast) * rng.random_range(0.4..0.9);
    let azimuth = rng.random_range(0.0..std::f32::consts::TAU);
    let elevation = rng.random_range(0.2f32..1.1);
    let ambient = rng.random_range(0.45..0.7) + 0.25 * overcast;
    let sun_colour = hsv(rng.random_range(25.0..50.0), rng.random_range(0.0..0.3), 1.0);
    let look = district.look(SKY_ID);
    let sky = Sky {
        zenith: look.apply(sky.zenith, [0.0; 3]),
        horizon: look.apply(sky.horizon, [0.0; 3]),
        cloud: look.apply(sky.cloud, [0.0; 3]),
        ..sky
    };
    let tinted = |c: Rgb| [c[0] * district.light[0], c[1] * district.light[1], c[2] * district.light[2]];
    let light = Light {
        ambient: tinted(scale(mix([1.0, 1.0, 1.0], sky.zenith, 0.25), ambient)),
        sun: tinted(scale(sun_colour, sun_strength)),
        dir: [elevation.cos() * azimuth.sin(), elevation.sin(), elevation.cos() * azimuth.cos()],
        haze: sky.horizon,
        visibility: rng.random_range(150.0..900.0) * (1.0 - 0.5 * overcast) * district.visibility,
        contact_shadow: rng.random_range(0.3..0.7),
    };
    (sky, light)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn the_sun_is_above_the_horizon_and_its_direction_is_a_unit_vector() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let (_, light) = sample(&mut rng, &District::new(0, 0));
            let d = light.dir;
            assert!(d[1] > 0.19);
            assert!(((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn the_sky_is_the_horizon_colour_at_the_horizon() {
        let (sky, _) = sample(&mut ChaCha8Rng::seed_from_u64(2), &District::new(0, 3));
        assert_eq!(sky.colour(0.1, 0.0), sky.horizon);
    }
}
