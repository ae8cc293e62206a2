//! Colours and procedural noise.
//!
//! All noise is a pure function of its coordinates and a seed (no state), so
//! a texture looks the same whatever order pixels are shaded in, and it is
//! anchored to the world: it shrinks with distance like real surface detail.

use rand::Rng;

/// A linear-ish RGB colour, each channel nominally in `0.0..=1.0`.
pub(crate) type Rgb = [f32; 3];

/// A 32-bit hash of three integer coordinates and a seed (SplitMix64 finaliser).
#[inline]
pub(crate) fn hash3(x: i32, y: i32, z: i32, seed: u32) -> u32 {
    let mut k = (x as u32 as u64) | ((y as u32 as u64) << 32);
    k ^= ((z as u32 as u64) << 17) ^ (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    k = (k ^ (k >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    k = (k ^ (k >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (k ^ (k >> 31)) as u32
}

/// [`hash3`] mapped to `0.0..1.0`.
#[inline]
pub(crate) fn hash01(x: i32, y: i32, z: i32, seed: u32) -> f32 {
    (hash3(x, y, z, seed) >> 8) as f32 * (1.0 / 16_777_216.0)
}

#[inline]
fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Smooth 2-D value noise in `0.0..1.0` with unit cell size.
pub(crate) fn noise2(x: f32, y: f32, seed: u32) -> f32 {
    let (fx, fy) = (x.floor(), y.floor());
    let (ix, iy) = (fx as i32, fy as i32);
    let (tx, ty) = (smooth(x - fx), smooth(y - fy));
    let c00 = hash01(ix, iy, 0, seed);
    let c10 = hash01(ix + 1, iy, 0, seed);
    let c01 = hash01(ix, iy + 1, 0, seed);
    let c11 = hash01(ix + 1, iy + 1, 0, seed);
    let top = c00 + (c10 - c00) * tx;
    let bottom = c01 + (c11 - c01) * tx;
    top + (bottom - top) * ty
}

/// Smooth 3-D value noise in `0.0..1.0` with unit cell size.
pub(crate) fn noise3(x: f32, y: f32, z: f32, seed: u32) -> f32 {
    let (fx, fy, fz) = (x.floor(), y.floor(), z.floor());
    let (ix, iy, iz) = (fx as i32, fy as i32, fz as i32);
    let (tx, ty, tz) = (smooth(x - fx), smooth(y - fy), smooth(z - fz));
    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
    let plane = |dz: i32| {
        let c00 = hash01(ix, iy, iz + dz, seed);
        let c10 = hash01(ix + 1, iy, iz + dz, seed);
        let c01 = hash01(ix, iy + 1, iz + dz, seed);
        let c11 = hash01(ix + 1, iy + 1, iz + dz, seed);
        lerp(lerp(c00, c10, tx), lerp(c01, c11, tx), ty)
    };
    lerp(plane(0), plane(1), tz)
}

/// Fractal sum of `octaves` layers of [`noise2`], normalised to `0.0..1.0`.
pub(crate) fn fbm2(x: f32, y: f32, seed: u32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut norm, mut freq) = (0.0, 1.0, 0.0, 1.0);
    for octave in 0..octaves {
        sum += amp * noise2(x * freq, y * freq, seed.wrapping_add(octave * 7919));
        norm += amp;
        amp *= 0.5;
        freq *= 2.03;
    }
    sum / norm
}

/// A colour from hue (degrees), saturation and value (both `0..=1`).
pub(crate) fn hsv(hue: f32, sat: f32, val: f32) -> Rgb {
    let h = hue.rem_euclid(360.0) / 60.0;
    let c = val * sat;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = val - c;
    [r + m, g + m, b + m]
}

/// Linear interpolation between two colours (`t = 0` gives `a`).
#[inline]
pub(crate) fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// A colour multiplied by a factor.
#[inline]
pub(crate) fn scale(c: Rgb, f: f32) -> Rgb {
    [c[0] * f, c[1] * f, c[2] * f]
}

/// A colour sampled around `(hue, sat, val)` with the given spreads.
pub(crate) fn hsv_jitter(rng: &mut impl Rng, hue: f32, sat: f32, val: f32, spread: [f32; 3]) -> Rgb {
    let h = hue + rng.random_range(-1.0..=1.0) * spread[0];
    let s = (sat + rng.random_range(-1.0..=1.0) * spread[1]).clamp(0.0, 1.0);
    let v = (val + rng.random_range(-1.0..=1.0) * spread[2]).clamp(0.02, 1.0);
    hsv(h, s, v)
}

/// A colour with each channel independently scaled by up to `±amount`.
pub(crate) fn tint(rng: &mut impl Rng, c: Rgb, amount: f32) -> Rgb {
    let mut out = c;
    for channel in out.iter_mut() {
        *channel *= 1.0 + rng.random_range(-amount..=amount);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_stays_in_the_unit_interval_and_is_deterministic() {
        for i in 0..500 {
            let (x, y, z) = (i as f32 * 0.37 - 50.0, i as f32 * 0.11, i as f32 * -0.73);
            let n2 = noise2(x, y, 3);
            let n3 = noise3(x, y, z, 3);
            let f = fbm2(x, y, 3, 3);
            for n in [n2, n3, f] {
                assert!((0.0..=1.0).contains(&n), "{n}");
            }
            assert_eq!(n2, noise2(x, y, 3));
            assert_eq!(n3, noise3(x, y, z, 3));
        }
    }

    #[test]
    fn noise_is_continuous_across_cell_borders() {
        let left = noise2(4.0 - 1e-4, 2.5, 9);
        let right = noise2(4.0 + 1e-4, 2.5, 9);
        assert!((left - right).abs() < 1e-2);
    }

    #[test]
    fn hashes_of_neighbouring_cells_look_uniform() {
        let n = 10_000;
        let mean: f32 = (0..n).map(|i| hash01(i, 0, 0, 1)).sum::<f32>() / n as f32;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }

    #[test]
    fn hsv_gives_the_primary_colours() {
        assert_eq!(hsv(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]);
        assert_eq!(hsv(120.0, 1.0, 1.0), [0.0, 1.0, 0.0]);
        assert_eq!(hsv(240.0, 1.0, 1.0), [0.0, 0.0, 1.0]);
        assert_eq!(hsv(77.0, 0.0, 0.5), [0.5, 0.5, 0.5]);
    }
}
