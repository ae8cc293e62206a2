//! Districts: the long tail of how streets look.
//!
//! Every image belongs to one district, drawn from a catalogue of
//! [`CATALOGUE`] districts with Zipf-like popularity (`P(k) ∝ 1/k`, so a few
//! districts are common and most are rare: the more images a training set
//! holds, the more of the tail it has seen). A district is sampled from its
//! own RNG, seeded by `(dataset seed, k)`, so train and val images of the
//! same dataset share districts. It fixes:
//! - a *look* per Cityscapes label: a hue rotation, a saturation shift, a
//!   brightness factor and a procedural surface pattern (stripes, blotches or
//!   grain at its own scale) applied to that label's albedo, from nearly the
//!   default palette to exotic ones (red roads, violet trees, green skies);
//! - the camera rig: its height above the road (cars to buses) and pitch
//!   (the horizon row), so the road's depth-per-row differs by district;
//! - how busy the streets are (people and traffic multipliers) and how tall
//!   the buildings are;
//! - the weather bias: haze visibility and the light's colour.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::texture::{hsv, noise3, Rgb};
use crate::data::labels::LABELS;

/// Number of districts in the catalogue.
pub(crate) const CATALOGUE: u32 = 100_000;

/// How one label's surfaces look in a district.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Look {
    /// Hue rotation, degrees.
    pub hue: f32,
    /// Saturation added (greys get the hue of `tint_hue`).
    pub sat: f32,
    /// Hue given to grey surfaces, degrees.
    pub tint_hue: f32,
    /// Brightness factor.
    pub val: f32,
    /// Pattern: 0 none, 1 stripes, 2 blotches, 3 grain.
    pub pattern: u8,
    /// Pattern strength, 0..1.
    pub amp: f32,
    /// Pattern frequency, cycles per metre.
    pub freq: f32,
    /// Pattern direction (stripes).
    pub dir: [f32; 3],
    pub seed: u32,
}

impl Look {
    const IDENTITY: Look = Look {
        hue: 0.0,
        sat: 0.0,
        tint_hue: 0.0,
        val: 1.0,
        pattern: 0,
        amp: 0.0,
        freq: 1.0,
        dir: [1.0, 0.0, 0.0],
        seed: 0,
    };

    fn sample(rng: &mut impl Rng, exotic: f32, base_hue: f32) -> Look {
        let e = exotic * rng.random_range(0.3f32..1.0);
        let pattern = if rng.random_bool(0.5 * exotic as f64) { rng.random_range(1..=3) } else { 0 };
        let dir = {
            let t = rng.random_range(0.0..std::f32::consts::TAU);
            let u = rng.random_range(-1.0f32..1.0);
            let r = (1.0 - u * u).sqrt();
            [r * t.cos(), u, r * t.sin()]
        };
        Look {
            hue: (base_hue + rng.random_range(-40.0..40.0)) * e,
            sat: e * rng.random_range(0.0..0.45),
            tint_hue: rng.random_range(0.0..360.0),
            val: (e * rng.random_range(-0.6f32..0.5)).exp(),
            pattern,
            amp: rng.random_range(0.1..0.45),
            freq: rng.random_range(0.3f32..6.0),
            dir,
            seed: rng.random(),
        }
    }

    /// `albedo` of a surface point `p` (road frame) seen with this look.
    pub fn apply(&self, albedo: Rgb, p: [f32; 3]) -> Rgb {
        if *self == Look::IDENTITY {
            return albedo;
        }
        let (h, s, v) = to_hsv(albedo);
        // Near-greys take the tint's hue as they gain saturation.
        let hue = if s < 0.08 { self.tint_hue } else { h + self.hue };
        let sat = (s + self.sat).clamp(0.0, 1.0);
        let mut val = v * self.val;
        if self.pattern != 0 {
            let f = self.freq;
            let n = match self.pattern {
                1 => {
                    let t = (p[0] * self.dir[0] + p[1] * self.dir[1] + p[2] * self.dir[2]) * f;
                    0.5 + 0.5 * (t * std::f32::consts::TAU).sin()
                }
                2 => noise3(p[0] * f * 0.5, p[1] * f * 0.5, p[2] * f * 0.5, self.seed),
                _ => noise3(p[0] * f * 4.0, p[1] * f * 4.0, p[2] * f * 4.0, self.seed),
            };
            val *= 1.0 + self.amp * (2.0 * n - 1.0);
        }
        hsv(hue, sat, val.clamp(0.0, 1.0))
    }
}

/// RGB (0..1) to hue (degrees), saturation and value.
fn to_hsv(c: Rgb) -> (f32, f32, f32) {
    let max = c[0].max(c[1]).max(c[2]);
    let min = c[0].min(c[1]).min(c[2]);
    let d = max - min;
    if max <= 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let s = d / max;
    if d < 1e-6 {
        return (0.0, 0.0, max);
    }
    let h = if max == c[0] {
        60.0 * ((c[1] - c[2]) / d).rem_euclid(6.0)
    } else if max == c[1] {
        60.0 * ((c[2] - c[0]) / d + 2.0)
    } else {
        60.0 * ((c[0] - c[1]) / d + 4.0)
    };
    (h, s, max)
}

/// One district of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct District {
    /// Rank in the catalogue (0 = the most common).
    pub rank: u32,
    /// Look per Cityscapes id (index = id).
    looks: Vec<Look>,
    /// Camera height above the road, metres (±0.1 per image).
    pub elevation: f32,
    /// Horizon row as a fraction of the height (±0.03 per image).
    pub horizon: f32,
    /// Multiplier of the number of pedestrians.
    pub people: f32,
    /// Multiplier of the number of vehicles.
    pub traffic: f32,
    /// Multiplier of building heights.
    pub storeys: f32,
    /// Multiplier of haze visibility.
    pub visibility: f32,
    /// Colour the light is multiplied by.
    pub light: Rgb,
}

/// The rank of the district of one image: log-uniform over the catalogue,
/// i.e. `P(k) ∝ 1/(k + 1)`.
pub(crate) fn draw_rank(rng: &mut impl Rng) -> u32 {
    let u: f64 = rng.random();
    ((CATALOGUE as f64 + 1.0).powf(u) - 1.0).floor().min(CATALOGUE as f64 - 1.0) as u32
}

impl District {
    /// District `rank` of the dataset `seed`.
    pub fn new(seed: u64, rank: u32) -> District {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd157_71c7_0000_0000 ^ (rank as u64).wrapping_mul(0x9E37_79B9));
        // How far from the default palette the district strays.
        let exotic: f32 = rng.random::<f32>().powf(0.7);
        let cat_hue: Vec<f32> = (0..8).map(|_| rng.random_range(-180.0..180.0)).collect();
        let looks = LABELS
            .iter()
            .map(|l| {
                if l.category_id == 0 {
                    Look::IDENTITY
                } else {
                    Look::sample(&mut rng, exotic, cat_hue[l.category_id as usize])
                }
            })
            .collect();
        let elevation = 1.1 + 1.9 * rng.random::<f32>().powi(2);
        let horizon = rng.random_range(0.33..0.56);
        let people = rng.random_range(-1.2f32..1.0).exp();
        let traffic = rng.random_range(-1.2f32..0.8).exp();
        let storeys = rng.random_range(-0.7f32..0.5).exp();
        let visibility = rng.random_range(-1.5f32..0.5).exp();
        let warm = rng.random_range(0.0f32..1.0) * exotic;
        let light = hsv(rng.random_range(0.0..360.0), 0.35 * warm, 1.0);
        District { rank, looks, elevation, horizon, people, traffic, storeys, visibility, light }
    }

    /// This district with the default palette (every look the identity).
    #[cfg(test)]
    pub fn plain(&self) -> District {
        District { looks: vec![Look::IDENTITY; self.looks.len()], ..self.clone() }
    }

    /// The look of Cityscapes id `label`.
    #[inline]
    pub fn look(&self, label: u8) -> &Look {
        &self.looks[label as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_have_a_long_tail() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ranks: Vec<u32> = (0..4000).map(|_| draw_rank(&mut rng)).collect();
        let first = ranks.iter().filter(|&&r| r == 0).count();
        let distinct = ranks.iter().collect::<std::collections::BTreeSet<_>>().len();
        // P(0) = ln 2 / ln(100 001) ≈ 6 %; most draws are distinct districts.
        assert!((150..350).contains(&first), "{first}");
        assert!(distinct > 1500, "{distinct}");
        assert!(ranks.iter().all(|&r| r < CATALOGUE));
    }

    #[test]
    fn a_district_is_fixed_by_seed_and_rank_and_districts_differ() {
        assert_eq!(District::new(3, 17), District::new(3, 17));
        assert_ne!(District::new(3, 17), District::new(3, 18));
        assert_ne!(District::new(3, 17), District::new(4, 17));
        let d: Vec<District> = (0..50).map(|k| District::new(9, k)).collect();
        let road = |d: &District| d.look(7).apply([0.3, 0.3, 0.32], [1.0, 0.0, 5.0]);
        let reddish = d.iter().filter(|d| road(d)[0] > road(d)[2] + 0.03).count();
        assert!(reddish > 3, "{reddish}");
        let heights: Vec<f32> = d.iter().map(|d| d.elevation).collect();
        assert!(heights.iter().any(|&h| h < 1.4) && heights.iter().any(|&h| h > 2.2), "{heights:?}");
    }

    #[test]
    fn hsv_round_trips() {
        for c in [[0.2, 0.5, 0.7], [0.9, 0.1, 0.1], [0.4, 0.4, 0.4], [0.1, 0.8, 0.3]] {
            let (h, s, v) = to_hsv(c);
            let back = hsv(h, s, v);
            for k in 0..3 {
                assert!((back[k] - c[k]).abs() < 1e-5, "{c:?} {back:?}");
            }
        }
    }

    #[test]
    fn void_labels_keep_their_colour() {
        let d = District::new(1, 5);
        assert_eq!(d.look(1).apply([0.2, 0.3, 0.4], [0.0; 3]), [0.2, 0.3, 0.4]);
    }
}
