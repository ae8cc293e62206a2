//! The pinhole camera: Cityscapes intrinsics scaled to the output size, and
//! the per-pixel rays in the road frame.
//!
//! The optical axis is level (parallel to the road), so the horizon is the
//! row `v0`; a camera pitched by a small angle is modelled, to first order,
//! by moving `v0` (the principal point) instead. Depth along the optical axis
//! is therefore exactly the `z` of the road frame and `d = fx·B/z`.

use rand::Rng;

use super::geometry::{Ray, NEAR};

/// Cityscapes' focal lengths and baseline at 2048×1024.
pub(crate) const CITYSCAPES_FX: f64 = 2262.52;
pub(crate) const CITYSCAPES_FY: f64 = 2265.30;
pub(crate) const CITYSCAPES_BASELINE: f64 = 0.209313;
pub(crate) const CITYSCAPES_WIDTH: f64 = 2048.0;
pub(crate) const CITYSCAPES_HEIGHT: f64 = 1024.0;

/// Intrinsics at the output resolution plus the stereo baseline and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Camera {
    pub width: u32,
    pub height: u32,
    pub fx: f64,
    pub fy: f64,
    pub u0: f64,
    /// The principal row, which is also the horizon.
    pub v0: f64,
    pub baseline: f64,
    /// Height of the optical centre above the road, metres.
    pub elevation: f64,
}

impl Camera {
    /// Samples a camera for an image of `width`×`height`: height above the
    /// road within ±0.1 m of `rig.0` (at least 0.9 m), horizon within ±3 % of
    /// the rows of `rig.1`, baseline within ±0.5 % of Cityscapes'. Uses a
    /// fixed number of draws, whatever the size.
    pub fn sample(rng: &mut impl Rng, width: u32, height: u32, rig: (f32, f32)) -> Camera {
        let elevation = (rig.0 as f64 + rng.random_range(-0.1..0.1)).max(0.9);
        let horizon = (rig.1 as f64 + rng.random_range(-0.03..0.03)).clamp(0.25, 0.65);
        let baseline = CITYSCAPES_BASELINE * (1.0 + rng.random_range(-0.005..0.005));
        Camera {
            width,
            height,
            fx: CITYSCAPES_FX * width as f64 / CITYSCAPES_WIDTH,
            fy: CITYSCAPES_FY * height as f64 / CITYSCAPES_HEIGHT,
            u0: width as f64 / 2.0,
            v0: horizon * height as f64,
            baseline,
            elevation,
        }
    }

    /// Disparity in pixels of a point at depth `z` metres.
    #[inline]
    pub fn disparity(&self, z: f32) -> f32 {
        (self.fx * self.baseline) as f32 / z
    }
}

/// The camera placed in the road frame: per-column and per-row ray slopes.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub camera: Camera,
    /// Lateral position of the camera in the road frame.
    pub cam_s: f32,
    /// Road yaw: lateral metres the road drifts right per metre of depth.
    pub yaw: f32,
    /// `a` of the ray through each column's centre.
    pub cols: Vec<f32>,
    /// `b` of the ray through each row's centre.
    pub rows: Vec<f32>,
}

impl View {
    pub fn new(camera: Camera, cam_s: f32, yaw: f32) -> View {
        let cols = (0..camera.width).map(|x| ((x as f64 + 0.5 - camera.u0) / camera.fx) as f32 - yaw).collect();
        let rows = (0..camera.height).map(|y| ((y as f64 + 0.5 - camera.v0) / camera.fy) as f32).collect();
        View { camera, cam_s, yaw, cols, rows }
    }

    /// The ray through the centre of pixel `(x, y)`.
    #[inline]
    pub fn ray(&self, x: usize, y: usize) -> Ray {
        Ray { s0: self.cam_s, a: self.cols[x], h: self.camera.elevation as f32, b: self.rows[y] }
    }

    /// The image position `(u, v)` of a road-frame point with `z > 0`.
    pub fn project(&self, p: [f32; 3]) -> (f32, f32) {
        let x = p[0] - self.cam_s + self.yaw * p[2];
        let u = self.camera.u0 as f32 + self.camera.fx as f32 * x / p[2];
        let v = self.camera.v0 as f32 + self.camera.fy as f32 * (self.camera.elevation as f32 - p[1]) / p[2];
        (u, v)
    }

    /// The pixel rectangle `(x0, x1, y0, y1)` (exclusive ends) that can
    /// contain the image of the box `lo..hi`, or `None` when it is behind the
    /// camera or off screen. The projection of a convex solid in front of the
    /// camera lies in the hull of its projected corners.
    pub fn screen_rect(&self, lo: [f32; 3], hi: [f32; 3]) -> Option<(usize, usize, usize, usize)> {
        if hi[2] < NEAR {
            return None;
        }
        let z0 = lo[2].max(NEAR);
        let (mut u_min, mut u_max, mut v_min, mut v_max) =
            (f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY);
        for &s in &[lo[0], hi[0]] {
            for &y in &[lo[1], hi[1]] {
                for &z in &[z0, hi[2]] {
                    let (u, v) = self.project([s, y, z]);
                    u_min = u_min.min(u);
                    u_max = u_max.max(u);
                    v_min = v_min.min(v);
                    v_max = v_max.max(v);
                }
            }
        }
        let (w, h) = (self.camera.width as f32, self.camera.height as f32);
        let x0 = (u_min - 1.0).floor().max(0.0);
        let x1 = (u_max + 1.0).ceil().min(w);
        let y0 = (v_min - 1.0).floor().max(0.0);
        let y1 = (v_max + 1.0).ceil().min(h);
        (x0 < x1 && y0 < y1).then_some((x0 as usize, x1 as usize, y0 as usize, y1 as usize))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn camera() -> Camera {
        Camera::sample(&mut ChaCha8Rng::seed_from_u64(1), 256, 128, (1.4, 0.44))
    }

    #[test]
    fn the_focal_length_is_cityscapes_scaled_to_the_width() {
        let cam = camera();
        assert!((cam.fx - 2262.52 * 256.0 / 2048.0).abs() < 1e-9);
        assert!((cam.u0 - 128.0).abs() < 1e-9);
        assert!((cam.baseline - 0.209313).abs() < 0.002);
        assert!((1.3..1.5).contains(&cam.elevation));
        assert!((0.41 * 128.0..0.47 * 128.0).contains(&cam.v0));
    }

    #[test]
    fn the_rig_sets_height_and_horizon() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let bus = Camera::sample(&mut rng, 256, 128, (2.8, 0.56));
        assert!((2.7..2.9).contains(&bus.elevation));
        assert!((0.53 * 128.0..0.59 * 128.0).contains(&bus.v0));
    }

    #[test]
    fn a_projected_point_lies_on_the_ray_through_its_pixel() {
        let view = View::new(camera(), -1.5, 0.03);
        let p = [2.0, 0.8, 17.0];
        let (u, v) = view.project(p);
        let (x, y) = (u.floor() as usize, v.floor() as usize);
        let ray = view.ray(x, y);
        let q = ray.at(p[2]);
        // Within one pixel's footprint at that depth.
        let px = p[2] / view.camera.fx as f32;
        assert!((q[0] - p[0]).abs() <= px * 1.01, "{q:?} {p:?}");
        assert!((q[1] - p[1]).abs() <= px * 1.01, "{q:?} {p:?}");
    }

    #[test]
    fn a_box_behind_the_camera_has_no_screen_rect() {
        let view = View::new(camera(), 0.0, 0.0);
        assert!(view.screen_rect([-1.0, 0.0, -9.0], [1.0, 2.0, -1.0]).is_none());
        assert!(view.screen_rect([-1.0, 0.0, 9.0], [1.0, 2.0, 11.0]).is_some());
    }
}
