//! Image resizing in pure Rust, with PyTorch's `F.interpolate` semantics.
//!
//! Buffers are row-major `[height, width, channels]`.
//!
//! * [`resize_bilinear_u8`] follows `mode="bilinear", align_corners=False`
//!   for `uint8` tensors on the CPU: the source coordinate of output pixel `i`
//!   is `(i + 0.5) · in/out − 0.5` (clamped at 0), and the two nearest source
//!   pixels are blended. Downscaling samples, it does not average areas (a
//!   2× downscale blends 2×2 pixels, a 4× downscale 2×2 of every 4×4).
//!   Like PyTorch's `uint8` kernel it is separable: the horizontal pass is
//!   rounded to `u8` before the vertical pass, rounding halves up. For integer
//!   ratios the result equals PyTorch's exactly; for other ratios it can
//!   differ by 1 where PyTorch's fixed-point weights round differently.
//! * [`resize_nearest`] follows `mode="nearest"`: source index
//!   `min(floor(i · in/out), in − 1)`, with the ratio in `f32` as PyTorch
//!   computes it.

/// One output coordinate of a bilinear pass: the two source indices and
/// their weights.
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w0: f64,
    w1: f64,
}

/// The bilinear taps (align_corners=False) of every output index.
fn bilinear_taps(input: usize, output: usize) -> Vec<Tap> {
    let scale = input as f64 / output as f64;
    (0..output)
        .map(|i| {
            let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(input - 1);
            let i1 = (i0 + 1).min(input - 1);
            let w1 = src - i0 as f64;
            Tap { i0, i1, w0: 1.0 - w1, w1 }
        })
        .collect()
}

/// Rounds a blended value to `u8`, halves up, as PyTorch's fixed-point kernel.
fn round_u8(value: f64) -> u8 {
    (value + 0.5).floor().clamp(0.0, 255.0) as u8
}

/// Bilinear resize of an 8-bit `[sh, sw, c]` buffer to `[dh, dw, c]`, with
/// PyTorch's `align_corners=False` semantics (see the module docs).
///
/// # Panics
/// If `src.len() != sw · sh · c`, or if the source is empty while the
/// destination is not.
pub fn resize_bilinear_u8(src: &[u8], sw: usize, sh: usize, c: usize, dw: usize, dh: usize) -> Vec<u8> {
    assert_eq!(src.len(), sw * sh * c, "resize_bilinear_u8: buffer is not {sh}x{sw}x{c}");
    if dw == 0 || dh == 0 || c == 0 {
        return Vec::new();
    }
    assert!(sw > 0 && sh > 0, "resize_bilinear_u8: cannot resize an empty image to {dh}x{dw}");
    // Horizontal pass: [sh, sw, c] -> [sh, dw, c].
    let horizontal = if dw == sw {
        src.to_vec()
    } else {
        let taps = bilinear_taps(sw, dw);
        let mut out = Vec::with_capacity(sh * dw * c);
        for row in src.chunks_exact(sw * c) {
            for tap in &taps {
                let (a, b) = (&row[tap.i0 * c..][..c], &row[tap.i1 * c..][..c]);
                out.extend(a.iter().zip(b).map(|(&a, &b)| round_u8(tap.w0 * f64::from(a) + tap.w1 * f64::from(b))));
            }
        }
        out
    };
    // Vertical pass: [sh, dw, c] -> [dh, dw, c].
    if dh == sh {
        return horizontal;
    }
    let stride = dw * c;
    let mut out = Vec::with_capacity(dh * stride);
    for tap in bilinear_taps(sh, dh) {
        let (a, b) = (&horizontal[tap.i0 * stride..][..stride], &horizontal[tap.i1 * stride..][..stride]);
        out.extend(a.iter().zip(b).map(|(&a, &b)| round_u8(tap.w0 * f64::from(a) + tap.w1 * f64::from(b))));
    }
    out
}

/// The source index of every output index for PyTorch's `mode="nearest"`.
fn nearest_indices(input: usize, output: usize) -> Vec<usize> {
    let scale = input as f32 / output as f32;
    (0..output).map(|i| ((i as f32 * scale).floor() as usize).min(input - 1)).collect()
}

/// Nearest-neighbour resize of a single-channel `[sh, sw]` buffer to
/// `[dh, dw]`, with PyTorch's `mode="nearest"` semantics: source index
/// `floor(i · src/dst)`.
///
/// # Panics
/// If `src.len() != sw · sh`, or if the source is empty while the
/// destination is not.
pub fn resize_nearest<T: Copy>(src: &[T], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<T> {
    assert_eq!(src.len(), sw * sh, "resize_nearest: buffer is not {sh}x{sw}");
    if dw == 0 || dh == 0 {
        return Vec::new();
    }
    assert!(sw > 0 && sh > 0, "resize_nearest: cannot resize an empty image to {dh}x{dw}");
    if dw == sw && dh == sh {
        return src.to_vec();
    }
    let columns = nearest_indices(sw, dw);
    let mut out = Vec::with_capacity(dw * dh);
    for y in nearest_indices(sh, dh) {
        let row = &src[y * sw..][..sw];
        out.extend(columns.iter().map(|&x| row[x]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_to_the_same_size_is_the_identity() {
        let src: Vec<u8> = (0..5 * 7 * 3).map(|v| (v * 37 % 256) as u8).collect();
        assert_eq!(resize_bilinear_u8(&src, 7, 5, 3, 7, 5), src);
    }

    #[test]
    fn bilinear_downscale_by_two_matches_pytorch() {
        // F.interpolate(x, size=(1, 2), mode="bilinear", align_corners=False)
        // on uint8 [[[[10, 20, 31, 40], [50, 60, 70, 80]]]] gives [[35, 56]]
        // (torch 2.13): each output blends a 2x2 block, rows first (10,20 ->
        // 15; 50,60 -> 55; then 15,55 -> 35) and halves round up (31,40 ->
        // 35.5 -> 36; 70,80 -> 75; then 36,75 -> 55.5 -> 56).
        let src = [10, 20, 31, 40, 50, 60, 70, 80];
        assert_eq!(resize_bilinear_u8(&src, 4, 2, 1, 2, 1), vec![35, 56]);
    }

    #[test]
    fn bilinear_rounds_the_horizontal_pass_before_the_vertical_one() {
        // PyTorch uint8 gives 1 for [[1, 0], [0, 0]] -> 1x1 (0.5 -> 1, then
        // (1 + 0) / 2 -> 1), not round(0.25) = 0.
        assert_eq!(resize_bilinear_u8(&[1, 0, 0, 0], 2, 2, 1, 1, 1), vec![1]);
    }

    #[test]
    fn bilinear_downscale_is_sampling_not_area_averaging() {
        // 4x downscale of a row: output i reads source 4i + 1.5, i.e. the
        // mean of pixels 4i+1 and 4i+2 only.
        let src = [100, 0, 50, 200, 8, 2, 4, 6];
        assert_eq!(resize_bilinear_u8(&src, 8, 1, 1, 2, 1), vec![25, 3]);
    }

    #[test]
    fn bilinear_upscale_by_two_uses_quarter_weights_and_clamps_edges() {
        // Sources for 2 -> 4: -0.25 (clamped to 0), 0.25, 0.75, 1.25 (-> pixel 1).
        let src = [0, 100];
        assert_eq!(resize_bilinear_u8(&src, 2, 1, 1, 4, 1), vec![0, 25, 75, 100]);
    }

    #[test]
    fn bilinear_keeps_channels_apart() {
        let src = [0, 255, 10, 100, 55, 20];
        assert_eq!(resize_bilinear_u8(&src, 2, 1, 3, 1, 1), vec![50, 155, 15]);
    }

    #[test]
    fn nearest_picks_floor_of_index_times_ratio() {
        let src: Vec<u16> = (0..6).collect();
        // 6 -> 4: ratio 1.5, sources 0, 1, 3, 4.
        assert_eq!(resize_nearest(&src, 6, 1, 4, 1), vec![0, 1, 3, 4]);
        // 3 -> 7: ratio 3/7, sources 0, 0, 0, 1, 1, 2, 2.
        assert_eq!(resize_nearest(&src[..3], 3, 1, 7, 1), vec![0, 0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn nearest_downscale_by_two_keeps_the_top_left_pixel_of_each_block() {
        let src: Vec<u8> = (0..16).collect();
        assert_eq!(resize_nearest(&src, 4, 4, 2, 2), vec![0, 2, 8, 10]);
    }

    #[test]
    fn nearest_works_on_floats() {
        let src = [0.0f32, 1.5, 2.5, 3.5];
        assert_eq!(resize_nearest(&src, 2, 2, 4, 4).len(), 16);
        assert_eq!(resize_nearest(&src, 2, 2, 1, 1), vec![0.0]);
    }

    #[test]
    fn resizing_to_zero_gives_an_empty_buffer() {
        assert!(resize_bilinear_u8(&[1, 2], 2, 1, 1, 0, 3).is_empty());
        assert!(resize_nearest(&[1, 2], 2, 1, 3, 0).is_empty());
    }

    #[test]
    #[should_panic(expected = "buffer is not")]
    fn a_buffer_of_the_wrong_size_panics() {
        let _ = resize_nearest(&[1u8, 2, 3], 2, 2, 1, 1);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn bilinear_stays_within_the_source_range(
                (sw, sh, src) in (1usize..9, 1usize..9).prop_flat_map(|(w, h)| {
                    (Just(w), Just(h), proptest::collection::vec(any::<u8>(), w * h))
                }),
                dw in 1usize..12,
                dh in 1usize..12,
            ) {
                let out = resize_bilinear_u8(&src, sw, sh, 1, dw, dh);
                prop_assert_eq!(out.len(), dw * dh);
                let (lo, hi) = (src.iter().min().copied(), src.iter().max().copied());
                for v in out {
                    prop_assert!(Some(v) >= lo && Some(v) <= hi);
                }
            }

            #[test]
            fn nearest_only_copies_source_values(
                (sw, sh, src) in (1usize..9, 1usize..9).prop_flat_map(|(w, h)| {
                    (Just(w), Just(h), proptest::collection::vec(any::<u32>(), w * h))
                }),
                dw in 1usize..12,
                dh in 1usize..12,
            ) {
                let out = resize_nearest(&src, sw, sh, dw, dh);
                prop_assert_eq!(out.len(), dw * dh);
                for v in out {
                    prop_assert!(src.contains(&v));
                }
            }
        }
    }
}
