//! Shapes in the road frame and where a camera ray meets them.
//!
//! The road frame: `s` is the lateral position in metres (right positive, the
//! road's centre line at 0), `y` the height above the road surface, `z` the
//! depth along the camera's optical axis. The road may run at a small yaw to
//! the camera, so the frame is sheared: camera `x = s − cam_s + k·z`. Boxes
//! in this frame are therefore aligned with the road, not the image.
//!
//! A camera ray is the line `s = cam_s + a·z`, `y = h − b·z`, parametrised by
//! its depth `z`; every intersection returns that depth directly, which is
//! what the disparity needs (`d = fx·B/z`).

/// Nothing nearer than this (metres) is drawn.
pub(crate) const NEAR: f32 = 0.3;

/// The ray through one pixel, in the road frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ray {
    /// Lateral position of the camera.
    pub s0: f32,
    /// Lateral metres per metre of depth.
    pub a: f32,
    /// Camera height above the road.
    pub h: f32,
    /// Metres of descent per metre of depth (positive below the horizon).
    pub b: f32,
}

impl Ray {
    /// The road-frame point `[s, y, z]` at depth `z`.
    #[inline]
    pub fn at(&self, z: f32) -> [f32; 3] {
        [self.s0 + self.a * z, self.h - self.b * z, z]
    }
}

/// Which side of a shape a ray hit (a box face, or a curved surface).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Face {
    /// The face at the smaller `s` (normal pointing left).
    SNeg = 0,
    SPos = 1,
    /// The underside.
    YNeg = 2,
    /// The top.
    YPos = 3,
    /// The face nearest the camera (normal pointing at it).
    ZNeg = 4,
    ZPos = 5,
    Curved = 6,
}

impl Face {
    /// The face stored as `value as u8`.
    pub fn from_u8(value: u8) -> Face {
        match value {
            0 => Face::SNeg,
            1 => Face::SPos,
            2 => Face::YNeg,
            3 => Face::YPos,
            4 => Face::ZNeg,
            5 => Face::ZPos,
            _ => Face::Curved,
        }
    }

    /// The outward normal of a flat face (zero for [`Face::Curved`]).
    pub fn normal(self) -> [f32; 3] {
        match self {
            Face::SNeg => [-1.0, 0.0, 0.0],
            Face::SPos => [1.0, 0.0, 0.0],
            Face::YNeg => [0.0, -1.0, 0.0],
            Face::YPos => [0.0, 1.0, 0.0],
            Face::ZNeg => [0.0, 0.0, -1.0],
            Face::ZPos => [0.0, 0.0, 1.0],
            Face::Curved => [0.0, 0.0, 0.0],
        }
    }

    /// The in-plane horizontal texture coordinate of a point on this face:
    /// depth along a side face, lateral position across a front face.
    pub fn along(self, p: [f32; 3]) -> f32 {
        match self {
            Face::SNeg | Face::SPos => p[2],
            _ => p[0],
        }
    }
}

/// A solid in the road frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// An axis-aligned box, `lo` and `hi` as `[s, y, z]`.
    Box { lo: [f32; 3], hi: [f32; 3] },
    /// An axis-aligned ellipsoid with centre `c` and radii `r`.
    Ellipsoid { c: [f32; 3], r: [f32; 3] },
}

/// The depth range in which `origin + dir·z` lies in `lo..=hi`.
#[inline]
fn slab(origin: f32, dir: f32, lo: f32, hi: f32) -> Option<(f32, f32)> {
    if dir.abs() < 1e-9 {
        (lo..=hi).contains(&origin).then_some((f32::NEG_INFINITY, f32::INFINITY))
    } else {
        let t0 = (lo - origin) / dir;
        let t1 = (hi - origin) / dir;
        Some(if t0 < t1 { (t0, t1) } else { (t1, t0) })
    }
}

impl Shape {
    /// A box from its `s`, `y` and `z` ranges.
    pub fn cuboid(s: (f32, f32), y: (f32, f32), z: (f32, f32)) -> Shape {
        Shape::Box { lo: [s.0.min(s.1), y.0.min(y.1), z.0.min(z.1)], hi: [s.0.max(s.1), y.0.max(y.1), z.0.max(z.1)] }
    }

    /// The depth and face where `ray` first enters the shape, if it does so
    /// beyond [`NEAR`].
    pub fn intersect(&self, ray: &Ray) -> Option<(f32, Face)> {
        match self {
            Shape::Box { lo, hi } => {
                let (s_in, s_out) = slab(ray.s0, ray.a, lo[0], hi[0])?;
                let (y_in, y_out) = slab(ray.h, -ray.b, lo[1], hi[1])?;
                let (z_in, z_out) = (lo[2], hi[2]);
                let exit = s_out.min(y_out).min(z_out);
                let (entry, face) = if s_in >= y_in && s_in >= z_in {
                    (s_in, if ray.a > 0.0 { Face::SNeg } else { Face::SPos })
                } else if y_in >= z_in {
                    (y_in, if ray.b < 0.0 { Face::YNeg } else { Face::YPos })
                } else {
                    (z_in, Face::ZNeg)
                };
                (entry <= exit && entry >= NEAR).then_some((entry, face))
            }
            Shape::Ellipsoid { c, r } => {
                let terms = [
                    (ray.a / r[0], (ray.s0 - c[0]) / r[0]),
                    (-ray.b / r[1], (ray.h - c[1]) / r[1]),
                    (1.0 / r[2], -c[2] / r[2]),
                ];
                let qa: f32 = terms.iter().map(|(al, _)| al * al).sum();
                let qb: f32 = 2.0 * terms.iter().map(|(al, be)| al * be).sum::<f32>();
                let qc: f32 = terms.iter().map(|(_, be)| be * be).sum::<f32>() - 1.0;
                let disc = qb * qb - 4.0 * qa * qc;
                if disc < 0.0 {
                    return None;
                }
                let z = (-qb - disc.sqrt()) / (2.0 * qa);
                (z >= NEAR).then_some((z, Face::Curved))
            }
        }
    }

    /// The outward unit normal at a surface point hit on `face`.
    pub fn normal(&self, p: [f32; 3], face: Face) -> [f32; 3] {
        match self {
            Shape::Box { .. } => face.normal(),
            Shape::Ellipsoid { c, r } => {
                let g = [(p[0] - c[0]) / (r[0] * r[0]), (p[1] - c[1]) / (r[1] * r[1]), (p[2] - c[2]) / (r[2] * r[2])];
                let n = (g[0] * g[0] + g[1] * g[1] + g[2] * g[2]).sqrt().max(1e-9);
                [g[0] / n, g[1] / n, g[2] / n]
            }
        }
    }

    /// The axis-aligned bounds `(lo, hi)` in the road frame.
    pub fn bounds(&self) -> ([f32; 3], [f32; 3]) {
        match self {
            Shape::Box { lo, hi } => (*lo, *hi),
            Shape::Ellipsoid { c, r } => {
                ([c[0] - r[0], c[1] - r[1], c[2] - r[2]], [c[0] + r[0], c[1] + r[1], c[2] + r[2]])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ray_towards(p: [f32; 3], s0: f32, h: f32) -> Ray {
        Ray { s0, a: (p[0] - s0) / p[2], h, b: (h - p[1]) / p[2] }
    }

    #[test]
    fn a_ray_hits_the_front_face_of_a_box_ahead_at_its_depth() {
        let shape = Shape::cuboid((-1.0, 1.0), (0.0, 1.5), (10.0, 14.0));
        let ray = ray_towards([0.2, 0.7, 10.0], 0.0, 1.4);
        let (z, face) = shape.intersect(&ray).expect("hit");
        assert!((z - 10.0).abs() < 1e-4);
        assert_eq!(face, Face::ZNeg);
    }

    #[test]
    fn a_ray_hits_the_side_face_of_a_box_beside_the_camera() {
        // A façade to the right, running from behind the camera far ahead.
        let shape = Shape::cuboid((5.0, 15.0), (0.0, 20.0), (-10.0, 50.0));
        let ray = ray_towards([5.0, 3.0, 20.0], 0.0, 1.4);
        let (z, face) = shape.intersect(&ray).expect("hit");
        assert!((z - 20.0).abs() < 1e-3);
        assert_eq!(face, Face::SNeg);
        assert!((ray.at(z)[1] - 3.0).abs() < 1e-3);
    }

    #[test]
    fn a_ray_passing_beside_a_box_misses_it() {
        let shape = Shape::cuboid((2.0, 3.0), (0.0, 1.0), (10.0, 12.0));
        let ray = ray_towards([0.0, 0.5, 11.0], 0.0, 1.4);
        assert!(shape.intersect(&ray).is_none());
    }

    #[test]
    fn a_box_behind_the_camera_is_not_hit() {
        let shape = Shape::cuboid((-1.0, 1.0), (0.0, 3.0), (-10.0, -5.0));
        let ray = Ray { s0: 0.0, a: 0.0, h: 1.4, b: 0.0 };
        assert!(shape.intersect(&ray).is_none());
    }

    #[test]
    fn a_ray_hits_an_ellipsoid_on_its_near_surface() {
        let shape = Shape::Ellipsoid { c: [0.0, 3.0, 20.0], r: [2.0, 1.0, 3.0] };
        let ray = ray_towards([0.0, 3.0, 17.0], 0.0, 3.0);
        let (z, face) = shape.intersect(&ray).expect("hit");
        assert!((z - 17.0).abs() < 1e-3, "{z}");
        assert_eq!(face, Face::Curved);
        let n = shape.normal(ray.at(z), face);
        assert!((n[2] + 1.0).abs() < 1e-3, "{n:?}");
    }
}
