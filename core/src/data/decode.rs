//! Decoding the four Cityscapes file kinds: the RGB image, the `labelIds`
//! image, the 16-bit disparity image and `camera.json`; and the disparity
//! encoding shared with the synthetic generator and prediction export.
//!
//! Every error names the file (and, for `camera.json`, the key).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use image::{DynamicImage, ImageFormat};

use super::DataError;

/// The camera parameters used to turn disparity into depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// Stereo baseline in metres (`extrinsic.baseline`), > 0.
    pub baseline: f64,
    /// Horizontal focal length in pixels at the file's resolution
    /// (`intrinsic.fx`), > 0.
    pub fx: f64,
}

impl Camera {
    /// Depth in metres for a disparity in pixels at the camera's resolution:
    /// `baseline · fx / d`, or 0 (invalid) when `d` is not positive.
    pub fn depth_of_disparity(&self, d: f32) -> f32 {
        if d > 0.0 && d.is_finite() {
            (self.baseline * self.fx / f64::from(d)) as f32
        } else {
            0.0
        }
    }
}

/// Encodes a disparity in pixels as a Cityscapes disparity PNG value:
/// `p = round(d · 256) + 1`, clamped to `u16::MAX`; 0 (invalid) for
/// `d ≤ 0` or a non-finite `d`.
pub fn encode_disparity(d: f32) -> u16 {
    if !d.is_finite() || d <= 0.0 {
        return 0;
    }
    let p = (f64::from(d) * 256.0).round() + 1.0;
    if p >= f64::from(u16::MAX) {
        u16::MAX
    } else {
        p as u16
    }
}

/// Decodes a Cityscapes disparity PNG value: `d = (p − 1) / 256` for `p > 0`,
/// and 0 (invalid) for `p = 0`.
pub fn decode_disparity(p: u16) -> f32 {
    if p == 0 {
        0.0
    } else {
        f32::from(p - 1) / 256.0
    }
}

/// What a PNG's `IHDR` chunk says about the stored pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PngHeader {
    pub width: u32,
    pub height: u32,
    /// Bits per sample: 1, 2, 4, 8 or 16.
    pub bit_depth: u8,
    /// PNG colour type: 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA.
    pub color_type: u8,
}

impl PngHeader {
    /// The number of bytes needed to parse the header.
    const LEN: usize = 26;

    /// Parses the signature and the `IHDR` chunk at the start of a PNG file.
    fn parse(bytes: &[u8], path: &Path) -> Result<Self, DataError> {
        const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
        if bytes.len() < Self::LEN || bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
            return Err(DataError::Decode {
                path: path.to_path_buf(),
                message: "not a PNG file (bad signature or header)".into(),
            });
        }
        let be32 = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        Ok(PngHeader { width: be32(16), height: be32(20), bit_depth: bytes[24], color_type: bytes[25] })
    }

    /// A readable description such as `16-bit RGB`.
    pub fn describe(&self) -> String {
        let kind = match self.color_type {
            0 => "grayscale",
            2 => "RGB",
            3 => "palette",
            4 => "grayscale+alpha",
            6 => "RGBA",
            _ => "unknown colour type",
        };
        format!("{}-bit {kind}", self.bit_depth)
    }

    fn is_gray(&self, bit_depth: u8) -> bool {
        self.color_type == 0 && self.bit_depth == bit_depth
    }
}

/// Reads only the header of a PNG file (its first 26 bytes).
pub fn read_png_header(path: &Path) -> Result<PngHeader, DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut bytes = Vec::with_capacity(PngHeader::LEN);
    file.by_ref().take(PngHeader::LEN as u64).read_to_end(&mut bytes).map_err(|e| DataError::io(path, e))?;
    PngHeader::parse(&bytes, path)
}

/// Reads a whole PNG file, returning its header and decoded pixels.
fn read_png(path: &Path) -> Result<(PngHeader, DynamicImage), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let header = PngHeader::parse(&bytes, path)?;
    let image = image::load_from_memory_with_format(&bytes, ImageFormat::Png)
        .map_err(|e| DataError::Decode { path: path.to_path_buf(), message: e.to_string() })?;
    Ok((header, image))
}

/// Reads an image as 8-bit RGB: `(width, height, pixels)`, pixels row-major
/// `[height, width, 3]`. Grey, RGBA (alpha dropped) and 16-bit files are
/// converted.
pub fn read_rgb(path: &Path) -> Result<(u32, u32, Vec<u8>), DataError> {
    let (_, image) = read_png(path)?;
    let rgb = match image {
        DynamicImage::ImageRgb8(buffer) => buffer,
        other => other.to_rgb8(),
    };
    Ok((rgb.width(), rgb.height(), rgb.into_raw()))
}

/// Reads a `*_gtFine_labelIds.png`: `(width, height, ids)`, ids row-major
/// `[height, width]`. The file must be 8-bit single-channel.
pub fn read_label_ids(path: &Path) -> Result<(u32, u32, Vec<u8>), DataError> {
    let (header, image) = read_png(path)?;
    if !header.is_gray(8) {
        return Err(DataError::invalid(
            path,
            format!("a label image must be 8-bit grayscale (one id per pixel), but this one is {}", header.describe()),
        ));
    }
    let (width, height) = (image.width(), image.height());
    let ids = match image {
        DynamicImage::ImageLuma8(buffer) => buffer.into_raw(),
        // A grey image with a tRNS chunk is expanded to grey + alpha.
        DynamicImage::ImageLumaA8(buffer) => buffer.into_raw().chunks_exact(2).map(|p| p[0]).collect(),
        other => {
            return Err(DataError::invalid(
                path,
                format!("unexpected decoded layout {:?} for an 8-bit grayscale label image", other.color()),
            ))
        }
    };
    Ok((width, height, ids))
}

/// Reads a `*_disparity.png`: `(width, height, disparity)`, disparity in
/// pixels at the file's resolution, row-major `[height, width]`, 0 = invalid
/// (see [`decode_disparity`]). The file must be 16-bit single-channel.
pub fn read_disparity(path: &Path) -> Result<(u32, u32, Vec<f32>), DataError> {
    let (width, height, raw) = read_disparity_raw(path)?;
    Ok((width, height, raw.into_iter().map(decode_disparity).collect()))
}

/// Reads a `*_disparity.png` without decoding the values: `(width, height,
/// p)` with the stored 16-bit values. The file must be 16-bit single-channel.
pub fn read_disparity_raw(path: &Path) -> Result<(u32, u32, Vec<u16>), DataError> {
    let (header, image) = read_png(path)?;
    if !header.is_gray(16) {
        return Err(DataError::invalid(
            path,
            format!("a disparity image must be 16-bit grayscale, but this one is {}", header.describe()),
        ));
    }
    let (width, height) = (image.width(), image.height());
    let values = match image {
        DynamicImage::ImageLuma16(buffer) => buffer.into_raw(),
        DynamicImage::ImageLumaA16(buffer) => buffer.into_raw().chunks_exact(2).map(|p| p[0]).collect(),
        other => {
            return Err(DataError::invalid(
                path,
                format!("unexpected decoded layout {:?} for a 16-bit grayscale disparity image", other.color()),
            ))
        }
    };
    Ok((width, height, values))
}

/// Reads a `*_camera.json`: `extrinsic.baseline` and `intrinsic.fx`, both
/// finite and positive.
pub fn read_camera(path: &Path) -> Result<Camera, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| DataError::Decode { path: path.to_path_buf(), message: format!("invalid JSON: {e}") })?;
    Ok(Camera {
        baseline: positive_number(&json, path, "extrinsic", "baseline")?,
        fx: positive_number(&json, path, "intrinsic", "fx")?,
    })
}

/// The finite, positive number at `json[section][key]`.
fn positive_number(json: &serde_json::Value, path: &Path, section: &str, key: &str) -> Result<f64, DataError> {
    let value = json
        .get(section)
        .and_then(|s| s.get(key))
        .ok_or_else(|| DataError::invalid(path, format!("missing key `{section}.{key}`")))?;
    let number = value
        .as_f64()
        .ok_or_else(|| DataError::invalid(path, format!("`{section}.{key}` is not a number (got {value})")))?;
    if !number.is_finite() || number <= 0.0 {
        return Err(DataError::invalid(path, format!("`{section}.{key}` must be a positive number (got {number})")));
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgb, Rgba};

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn disparity_zero_is_invalid() {
        assert_eq!(decode_disparity(0), 0.0);
        assert_eq!(encode_disparity(0.0), 0);
        assert_eq!(encode_disparity(-3.0), 0);
        assert_eq!(encode_disparity(f32::NAN), 0);
        assert_eq!(encode_disparity(f32::INFINITY), 0);
    }

    #[test]
    fn disparity_decodes_as_p_minus_one_over_256() {
        assert_eq!(decode_disparity(1), 0.0);
        assert_eq!(decode_disparity(257), 1.0);
        assert_eq!(decode_disparity(12_801), 50.0);
        assert_eq!(decode_disparity(u16::MAX), 65_534.0 / 256.0);
    }

    #[test]
    fn disparity_encoding_rounds_and_clamps() {
        assert_eq!(encode_disparity(1.0), 257);
        assert_eq!(encode_disparity(0.5 / 256.0 + 1e-6), 2);
        assert_eq!(encode_disparity(10.0 + 0.4 / 256.0), 2561);
        assert_eq!(encode_disparity(1.0e6), u16::MAX);
    }

    #[test]
    fn disparity_round_trips_within_half_a_step() {
        // The largest storable disparity is 65534 / 256 ≈ 255.99.
        for i in 1..1860 {
            let d = i as f32 * 0.137;
            let back = decode_disparity(encode_disparity(d));
            assert!((back - d).abs() <= 0.5 / 256.0 + 1e-4, "{d} -> {back}");
        }
    }

    #[test]
    fn every_stored_value_survives_decode_then_encode() {
        for p in 1..=u16::MAX {
            assert_eq!(encode_disparity(decode_disparity(p)).max(1), p, "p = {p}");
        }
    }

    #[test]
    fn depth_is_baseline_times_fx_over_disparity() {
        let camera = Camera { baseline: 0.2, fx: 2000.0 };
        assert!((camera.depth_of_disparity(40.0) - 10.0).abs() < 1e-6);
        assert_eq!(camera.depth_of_disparity(0.0), 0.0);
    }

    #[test]
    fn rgb_images_read_as_rgb8() {
        let dir = temp();
        let path = dir.path().join("rgb.png");
        ImageBuffer::from_fn(3, 2, |x, y| Rgb([x as u8, y as u8, 7])).save(&path).expect("save");
        let (w, h, pixels) = read_rgb(&path).expect("read");
        assert_eq!((w, h), (3, 2));
        assert_eq!(&pixels[..6], &[0, 0, 7, 1, 0, 7]);
        assert_eq!(&pixels[9..12], &[0, 1, 7]);
    }

    #[test]
    fn rgba_and_16_bit_images_are_converted_to_rgb8() {
        let dir = temp();
        let rgba = dir.path().join("rgba.png");
        ImageBuffer::from_pixel(2, 2, Rgba([10u8, 20, 30, 40])).save(&rgba).expect("save");
        assert_eq!(read_rgb(&rgba).expect("rgba").2, [10, 20, 30].repeat(4));
        let deep = dir.path().join("deep.png");
        ImageBuffer::from_pixel(2, 1, Rgb([65_535u16, 0, 257 * 100])).save(&deep).expect("save");
        assert_eq!(read_rgb(&deep).expect("16-bit").2, [255, 0, 100].repeat(2));
    }

    #[test]
    fn label_ids_are_read_unchanged() {
        let dir = temp();
        let path = dir.path().join("labels.png");
        ImageBuffer::from_fn(4, 1, |x, _| Luma([[0u8, 7, 33, 200][x as usize]])).save(&path).expect("save");
        assert_eq!(read_label_ids(&path).expect("read"), (4, 1, vec![0, 7, 33, 200]));
    }

    #[test]
    fn an_rgb_label_image_is_an_error_naming_the_file() {
        let dir = temp();
        let path = dir.path().join("labels_rgb.png");
        ImageBuffer::from_pixel(2, 2, Rgb([7u8, 7, 7])).save(&path).expect("save");
        let message = read_label_ids(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("8-bit RGB"), "{message}");
    }

    #[test]
    fn a_16_bit_label_image_is_an_error() {
        let dir = temp();
        let path = dir.path().join("labels16.png");
        ImageBuffer::from_pixel(2, 2, Luma([7u16])).save(&path).expect("save");
        let message = read_label_ids(&path).unwrap_err().to_string();
        assert!(message.contains("16-bit grayscale"), "{message}");
    }

    #[test]
    fn disparity_is_decoded_at_the_file_resolution() {
        let dir = temp();
        let path = dir.path().join("disparity.png");
        ImageBuffer::from_fn(3, 1, |x, _| Luma([[0u16, 257, 513][x as usize]])).save(&path).expect("save");
        assert_eq!(read_disparity(&path).expect("read"), (3, 1, vec![0.0, 1.0, 2.0]));
    }

    #[test]
    fn an_8_bit_disparity_image_is_an_error() {
        let dir = temp();
        let path = dir.path().join("disparity8.png");
        ImageBuffer::from_pixel(2, 2, Luma([7u8])).save(&path).expect("save");
        let message = read_disparity(&path).unwrap_err().to_string();
        assert!(message.contains("must be 16-bit grayscale"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = temp();
        let path = dir.path().join("nope.png");
        let error = read_rgb(&path).unwrap_err();
        assert!(matches!(error, DataError::Io { .. }), "{error:?}");
        assert!(error.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn garbage_bytes_are_a_decode_error_naming_the_file() {
        let dir = temp();
        let path = dir.path().join("garbage.png");
        std::fs::write(&path, b"this is not a png at all, not even close").expect("write");
        for error in
            [read_rgb(&path).unwrap_err(), read_label_ids(&path).unwrap_err(), read_disparity(&path).unwrap_err()]
        {
            assert!(matches!(error, DataError::Decode { .. }), "{error:?}");
            assert!(error.to_string().contains(&path.display().to_string()));
        }
    }

    #[test]
    fn a_truncated_png_is_a_decode_error() {
        let dir = temp();
        let path = dir.path().join("truncated.png");
        ImageBuffer::from_fn(64, 64, |x, y| Rgb([x as u8, y as u8, (x * y) as u8])).save(&path).expect("save");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
        let error = read_rgb(&path).unwrap_err();
        assert!(matches!(error, DataError::Decode { .. }), "{error:?}");
    }

    #[test]
    fn the_png_header_gives_size_and_format_without_decoding() {
        let dir = temp();
        let path = dir.path().join("disparity.png");
        ImageBuffer::from_pixel(5, 3, Luma([1u16])).save(&path).expect("save");
        let header = read_png_header(&path).expect("header");
        assert_eq!((header.width, header.height, header.describe().as_str()), (5, 3, "16-bit grayscale"));
    }

    fn camera_file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("camera.json");
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn camera_reads_baseline_and_fx() {
        let dir = temp();
        let path = camera_file(
            &dir,
            r#"{"extrinsic": {"baseline": 0.209313, "pitch": 0.038}, "intrinsic": {"fx": 2262.52, "fy": 2265.3}}"#,
        );
        assert_eq!(read_camera(&path).expect("read"), Camera { baseline: 0.209313, fx: 2262.52 });
    }

    #[test]
    fn a_missing_camera_key_is_named_with_the_file() {
        let dir = temp();
        let path = camera_file(&dir, r#"{"extrinsic": {"baseline": 0.2}, "intrinsic": {"fy": 2000}}"#);
        let message = read_camera(&path).unwrap_err().to_string();
        assert!(message.contains("intrinsic.fx"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        let path = camera_file(&dir, r#"{"intrinsic": {"fx": 2000}}"#);
        assert!(read_camera(&path).unwrap_err().to_string().contains("extrinsic.baseline"));
    }

    #[test]
    fn non_positive_or_non_numeric_camera_values_are_rejected() {
        let dir = temp();
        for text in [
            r#"{"extrinsic": {"baseline": 0}, "intrinsic": {"fx": 2000}}"#,
            r#"{"extrinsic": {"baseline": -0.2}, "intrinsic": {"fx": 2000}}"#,
            r#"{"extrinsic": {"baseline": "0.2"}, "intrinsic": {"fx": 2000}}"#,
        ] {
            let path = camera_file(&dir, text);
            let message = read_camera(&path).unwrap_err().to_string();
            assert!(message.contains("extrinsic.baseline"), "{message}");
        }
    }

    #[test]
    fn unparsable_camera_json_is_a_decode_error() {
        let dir = temp();
        let path = camera_file(&dir, "{ not json");
        let error = read_camera(&path).unwrap_err();
        assert!(matches!(error, DataError::Decode { .. }), "{error:?}");
        assert!(error.to_string().contains(&path.display().to_string()));
    }
}
