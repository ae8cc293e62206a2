//! The camera as a device: its response (blur, exposure, colour cast, gamma,
//! contrast, vignetting, noise), where its stereo matching fails, and the
//! ego vehicle's bonnet in the bottom of the view.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::objects::car_paint;
use super::texture::{mix, scale, Rgb};
use crate::data::labels::LABELS;

/// Camera response and sensor effects applied to the rendered colours.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub exposure: f32,
    pub contrast: f32,
    /// Per-channel gain (a colour cast / white balance error).
    pub cast: Rgb,
    pub gamma: f32,
    /// Darkening of the corners, 0..1.
    pub vignette: f32,
    /// Weight of the 4 neighbours in a light optical blur, 0..0.5.
    pub blur: f32,
    /// Standard deviation of the sensor noise, in 0..1 intensity units.
    pub noise: f32,
}

/// Where stereo matching fails: a band at the left border, blobs, speckle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Holes {
    /// Width of the invalid band at the left border, as a fraction of the width.
    pub left_band: f32,
    /// Elliptic holes `(cx, cy, rx, ry)` as fractions of width and height.
    pub blobs: Vec<[f32; 4]>,
    /// Fraction of single pixels dropped at random.
    pub speckle: f32,
}

/// The bonnet of the ego vehicle at the bottom of the image.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bonnet {
    /// Height at the image centre, as a fraction of the image height.
    pub height: f32,
    /// How much lower it is at the image sides, as a fraction of `height`.
    pub curve: f32,
    pub paint: Rgb,
}

/// Everything about the camera device in one scene.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sensor {
    pub response: Response,
    pub holes: Holes,
    pub bonnet: Option<Bonnet>,
    /// Seed of the per-pixel noise and speckle.
    pub noise_seed: u64,
}

impl Sensor {
    pub fn sample(rng: &mut impl Rng) -> Sensor {
        let response = Response {
            exposure: rng.random_range(0.7..1.35),
            contrast: rng.random_range(0.8..1.25),
            cast: [rng.random_range(0.92..1.08), rng.random_range(0.95..1.05), rng.random_range(0.9..1.1)],
            gamma: rng.random_range(0.85..1.15),
            vignette: rng.random_range(0.0..0.35),
            blur: rng.random_range(0.0..0.45),
            noise: rng.random_range(0.003..0.03),
        };
        let left_band = if rng.random_bool(0.9) { rng.random_range(0.01..0.06) } else { 0.0 };
        let blobs = (0..rng.random_range(0..=5))
            .map(|_| {
                [
                    rng.random_range(0.0..1.0),
                    rng.random_range(0.35..1.0),
                    rng.random_range(0.01..0.06),
                    rng.random_range(0.01..0.05),
                ]
            })
            .collect();
        let holes = Holes { left_band, blobs, speckle: rng.random_range(0.0..0.01) };
        let bonnet = rng.random_bool(0.8).then(|| Bonnet {
            height: rng.random_range(0.04..0.12),
            curve: rng.random_range(0.2..0.6),
            paint: scale(car_paint(rng), rng.random_range(0.4..0.9)),
        });
        Sensor { response, holes, bonnet, noise_seed: rng.random() }
    }

    /// Paints the bonnet over the bottom rows: ego-vehicle id, no disparity,
    /// paint reflecting the sky near its edge.
    pub fn draw_bonnet(&self, colour: &mut [Rgb], labels: &mut [u8], disparity: &mut [f32], w: usize, sky: Rgb) {
        let Some(bonnet) = &self.bonnet else {
            return;
        };
        let h = colour.len() / w;
        let height_px = bonnet.height * h as f32;
        for x in 0..w {
            let xn = (x as f32 + 0.5) / w as f32 * 2.0 - 1.0;
            let top = h as f32 - height_px * (1.0 - bonnet.curve * xn * xn);
            for y in (top.max(0.0).ceil() as usize)..h {
                let i = y * w + x;
                let t = ((y as f32 - top) / height_px.max(1.0)).clamp(0.0, 1.0);
                let shade = mix(bonnet.paint, sky, 0.35 * (1.0 - t));
                colour[i] = mix(shade, [0.0; 3], 0.3 * t);
                labels[i] = LABELS[1].id;
                disparity[i] = 0.0;
            }
        }
    }

    /// The camera's response to the scene's colours, as 8-bit RGB.
    pub fn develop(&self, colour: &[Rgb], w: usize) -> Vec<u8> {
        let post = &self.response;
        let h = colour.len() / w;
        let mut rng = ChaCha8Rng::seed_from_u64(self.noise_seed);
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let neighbours = [
                    colour[y * w + x.saturating_sub(1)],
                    colour[y * w + (x + 1).min(w - 1)],
                    colour[y.saturating_sub(1) * w + x],
                    colour[(y + 1).min(h - 1) * w + x],
                ];
                let xn = (x as f32 + 0.5) / w as f32 * 2.0 - 1.0;
                let yn = (y as f32 + 0.5) / h as f32 * 2.0 - 1.0;
                let vignette = 1.0 - post.vignette * (xn * xn + yn * yn) / 2.0;
                for k in 0..3 {
                    let around = neighbours.iter().map(|n| n[k]).sum::<f32>() / 4.0;
                    let c = colour[i][k] * (1.0 - post.blur) + around * post.blur;
                    let c = (c * post.exposure * post.cast[k]).max(0.0).powf(post.gamma);
                    let c = ((c - 0.5) * post.contrast + 0.5) * vignette;
                    // Four uniforms give a near-Gaussian of unit variance.
                    let gauss = (rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>()
                        - 2.0)
                        * 1.732;
                    let c = c + post.noise * gauss;
                    rgb[i * 3 + k] = (c * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
                }
            }
        }
        rgb
    }

    /// Invalidates disparity where stereo matching fails: the left border
    /// band, elliptic blobs and random speckle.
    pub fn punch_holes(&self, disparity: &mut [f32], w: usize) {
        let holes = &self.holes;
        let h = disparity.len() / w;
        let mut rng = ChaCha8Rng::seed_from_u64(self.noise_seed ^ 0x686f_6c65);
        let band = (holes.left_band * w as f32).round() as usize;
        for y in 0..h {
            for x in 0..w {
                let (u, v) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
                let in_blob =
                    holes.blobs.iter().any(|[cx, cy, rx, ry]| ((u - cx) / rx).powi(2) + ((v - cy) / ry).powi(2) < 1.0);
                let speckle = rng.random::<f32>() < holes.speckle;
                if x < band || in_blob || speckle {
                    disparity[y * w + x] = 0.0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensor() -> Sensor {
        Sensor {
            response: Response {
                exposure: 1.0,
                contrast: 1.0,
                cast: [1.0; 3],
                gamma: 1.0,
                vignette: 0.0,
                blur: 0.0,
                noise: 0.0,
            },
            holes: Holes { left_band: 0.25, blobs: vec![], speckle: 0.0 },
            bonnet: Some(Bonnet { height: 0.25, curve: 0.0, paint: [0.2; 3] }),
            noise_seed: 0,
        }
    }

    #[test]
    fn a_neutral_response_maps_colours_straight_to_bytes() {
        let rgb = sensor().develop(&[[0.0, 0.5, 1.0]; 4], 2);
        assert_eq!(&rgb[..3], &[0, 128, 255]);
    }

    #[test]
    fn the_left_band_loses_its_disparity() {
        let mut d = vec![1.0f32; 8 * 2];
        sensor().punch_holes(&mut d, 8);
        assert_eq!(&d[..8], &[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn the_bonnet_covers_the_bottom_rows_as_ego_vehicle_without_disparity() {
        let (w, h) = (4, 8);
        let mut colour = vec![[1.0; 3]; w * h];
        let mut labels = vec![7u8; w * h];
        let mut d = vec![3.0f32; w * h];
        sensor().draw_bonnet(&mut colour, &mut labels, &mut d, w, [0.5; 3]);
        assert!(labels[..w * 6].iter().all(|&l| l == 7));
        assert!(labels[w * 6..].iter().all(|&l| l == 1));
        assert!(d[w * 6..].iter().all(|&v| v == 0.0));
    }
}
