//! The ground: a flat road, raised strips (sidewalk, grass) on both sides
//! behind a kerb, and optionally a cross street where the road runs across
//! the whole width.

use super::geometry::Ray;
use super::texture::{fbm2, hash01, mix, noise2, scale, Rgb};
use crate::data::labels::LABELS;

/// What a raised strip beside the road is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZoneKind {
    Sidewalk,
    Terrain,
}

impl ZoneKind {
    /// The Cityscapes id of the strip.
    pub fn label(self) -> u8 {
        match self {
            ZoneKind::Sidewalk => LABELS[8].id,
            ZoneKind::Terrain => LABELS[22].id,
        }
    }
}

/// One strip beside the road, `width` metres wide; the outermost strip of a
/// side extends forever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Zone {
    pub kind: ZoneKind,
    pub width: f32,
}

/// A painted line along the road.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LaneLine {
    pub s: f32,
    pub dashed: bool,
    pub double: bool,
}

/// The colours of the ground.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroundLook {
    pub asphalt: Rgb,
    pub asphalt_noise: f32,
    /// Strength of darker repair patches and wear, 0..1.
    pub patches: f32,
    pub marking: Rgb,
    pub paving: Rgb,
    pub joint: Rgb,
    /// Paving stone size, metres.
    pub tile: f32,
    pub grass: Rgb,
    pub soil: Rgb,
    pub kerb_stone: Rgb,
    /// Length of one dash period and of its painted part, metres.
    pub dash: (f32, f32),
    pub seed: u32,
}

/// The ground of one scene.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ground {
    /// Lateral positions of the left and right road edge.
    pub road: (f32, f32),
    /// Height of everything beside the road (the kerb), metres.
    pub kerb: f32,
    /// Strips beyond each edge, from the road outward.
    pub left: Vec<Zone>,
    pub right: Vec<Zone>,
    /// Depth range of a cross street (road over the whole width).
    pub crossing: Option<(f32, f32)>,
    /// Depth range of zebra stripes.
    pub crosswalk: Option<(f32, f32)>,
    pub lines: Vec<LaneLine>,
    /// Solid lines near both road edges.
    pub edge_lines: bool,
    pub look: GroundLook,
}

/// What part of the ground a ray hit (stored per pixel as a byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroundPart {
    Road,
    /// The vertical kerb face along the left or right road edge.
    KerbLeft,
    KerbRight,
    /// The kerb facing the camera at the far side of a cross street.
    KerbFar,
    /// Strip `index` on the left or right.
    Left(u8),
    Right(u8),
}

impl GroundPart {
    pub fn to_u8(self) -> u8 {
        match self {
            GroundPart::Road => 0,
            GroundPart::KerbLeft => 1,
            GroundPart::KerbRight => 2,
            GroundPart::KerbFar => 3,
            GroundPart::Left(i) => 16 + i.min(15),
            GroundPart::Right(i) => 32 + i.min(15),
        }
    }

    pub fn from_u8(value: u8) -> GroundPart {
        match value {
            1 => GroundPart::KerbLeft,
            2 => GroundPart::KerbRight,
            3 => GroundPart::KerbFar,
            16..=31 => GroundPart::Left(value - 16),
            32..=47 => GroundPart::Right(value - 32),
            _ => GroundPart::Road,
        }
    }
}

impl Ground {
    /// Whether the ground at `(s, z)` is road level.
    #[inline]
    fn is_road(&self, s: f32, z: f32) -> bool {
        (self.road.0..=self.road.1).contains(&s) || self.crossing.is_some_and(|(z0, z1)| (z0..=z1).contains(&z))
    }

    /// The strip at lateral position `s` off the road.
    fn zone_at(&self, s: f32) -> GroundPart {
        let (zones, mut d, right) =
            if s > self.road.1 { (&self.right, s - self.road.1, true) } else { (&self.left, self.road.0 - s, false) };
        let mut index = 0;
        for (i, zone) in zones.iter().enumerate() {
            index = i;
            if d < zone.width {
                break;
            }
            d -= zone.width;
        }
        if right {
            GroundPart::Right(index as u8)
        } else {
            GroundPart::Left(index as u8)
        }
    }

    /// The depth and part where a ray meets the ground, if it points down.
    pub fn intersect(&self, ray: &Ray) -> Option<(f32, GroundPart)> {
        if ray.b <= 0.0 {
            return None;
        }
        let z_top = (ray.h - self.kerb) / ray.b;
        let s_top = ray.s0 + ray.a * z_top;
        if !self.is_road(s_top, z_top) {
            return Some((z_top, self.zone_at(s_top)));
        }
        let z_road = ray.h / ray.b;
        // Between z_top and z_road the ray is below kerb height: it stops at
        // the first kerb face it meets.
        let mut candidates: [(f32, GroundPart); 3] = [(f32::INFINITY, GroundPart::Road); 3];
        if ray.a.abs() > 1e-9 {
            candidates[0] = ((self.road.0 - ray.s0) / ray.a, GroundPart::KerbLeft);
            candidates[1] = ((self.road.1 - ray.s0) / ray.a, GroundPart::KerbRight);
        }
        if let Some((_, z1)) = self.crossing {
            candidates[2] = (z1, GroundPart::KerbFar);
        }
        candidates.sort_by(|x, y| x.0.total_cmp(&y.0));
        for (z, part) in candidates {
            if z <= z_top || z >= z_road {
                continue;
            }
            let after = z + 1e-3;
            if !self.is_road(ray.s0 + ray.a * after, after) {
                return Some((z, part));
            }
        }
        Some((z_road, GroundPart::Road))
    }

    /// The strip kind under a raised part (the kerb takes its strip's kind).
    fn kind(&self, part: GroundPart, p: [f32; 3]) -> ZoneKind {
        let zone = match part {
            GroundPart::Road => return ZoneKind::Sidewalk,
            GroundPart::Left(i) => self.left.get(i as usize),
            GroundPart::Right(i) => self.right.get(i as usize),
            GroundPart::KerbLeft => self.left.first(),
            GroundPart::KerbRight => self.right.first(),
            GroundPart::KerbFar => {
                if p[0] > (self.road.0 + self.road.1) / 2.0 {
                    self.right.first()
                } else {
                    self.left.first()
                }
            }
        };
        zone.map_or(ZoneKind::Sidewalk, |z| z.kind)
    }

    /// The Cityscapes id of a ground part at point `p`.
    pub fn label(&self, part: GroundPart, p: [f32; 3]) -> u8 {
        match part {
            GroundPart::Road => LABELS[7].id,
            other => self.kind(other, p).label(),
        }
    }

    /// The surface normal of a ground part.
    pub fn normal(&self, part: GroundPart) -> [f32; 3] {
        match part {
            GroundPart::KerbLeft => [1.0, 0.0, 0.0],
            GroundPart::KerbRight => [-1.0, 0.0, 0.0],
            GroundPart::KerbFar => [0.0, 0.0, -1.0],
            _ => [0.0, 1.0, 0.0],
        }
    }

    /// The colour of the ground at `p`, before lighting.
    pub fn albedo(&self, part: GroundPart, p: [f32; 3]) -> Rgb {
        let look = &self.look;
        let (s, z) = (p[0], p[2]);
        match part {
            GroundPart::Road => self.road_albedo(s, z),
            GroundPart::KerbLeft | GroundPart::KerbRight | GroundPart::KerbFar => {
                scale(look.kerb_stone, 0.85 + 0.3 * noise2(s + z, p[1] * 8.0, look.seed))
            }
            _ => match self.kind(part, p) {
                ZoneKind::Sidewalk => {
                    let (u, v) = (s / look.tile, z / look.tile);
                    let (fu, fv) = (u - u.floor(), v - v.floor());
                    if fu < 0.07 || fv < 0.07 {
                        return look.joint;
                    }
                    let stone = hash01(u.floor() as i32, v.floor() as i32, 3, look.seed);
                    let grain = fbm2(s * 3.0, z * 3.0, look.seed ^ 0x55, 2);
                    scale(look.paving, 0.85 + 0.2 * stone + 0.15 * grain)
                }
                ZoneKind::Terrain => {
                    let blades = fbm2(s * 4.0, z * 4.0, look.seed ^ 0x77, 2);
                    let bare = fbm2(s * 0.3, z * 0.3, look.seed ^ 0x99, 2);
                    let c = mix(look.grass, look.soil, ((bare - 0.55) * 3.0).clamp(0.0, 1.0));
                    scale(c, 0.65 + 0.7 * blades)
                }
            },
        }
    }

    fn road_albedo(&self, s: f32, z: f32) -> Rgb {
        let look = &self.look;
        let grain = fbm2(s * 2.0, z * 2.0, look.seed, 2);
        let patch = fbm2(s * 0.15, z * 0.15, look.seed ^ 0x33, 2);
        let mut shade = 1.0 + look.asphalt_noise * (grain - 0.5) * 2.0;
        shade *= 1.0 - look.patches * ((patch - 0.5) * 2.5).clamp(0.0, 1.0) * 0.5;
        let asphalt = scale(look.asphalt, shade);
        let wear = noise2(s * 2.5, z * 0.7, look.seed ^ 0x11);
        let paint = mix(asphalt, look.marking, 0.55 + 0.45 * wear);
        let in_road = (self.road.0..=self.road.1).contains(&s);
        let in_crossing = self.crossing.is_some_and(|(z0, z1)| (z0..=z1).contains(&z));
        if let Some((z0, z1)) = self.crosswalk {
            if (z0..=z1).contains(&z) && in_road && s.rem_euclid(1.0) < 0.5 {
                return paint;
            }
        }
        if !in_road || in_crossing {
            return asphalt;
        }
        let (period, length) = look.dash;
        let dash_on = z.rem_euclid(period) < length;
        for line in &self.lines {
            let d = (s - line.s).abs();
            let hit = if line.double { (0.07..0.19).contains(&d) } else { d < 0.07 };
            if hit && (!line.dashed || dash_on) {
                return paint;
            }
        }
        if self.edge_lines && ((s - self.road.0 - 0.35).abs() < 0.07 || (self.road.1 - 0.35 - s).abs() < 0.07) {
            return paint;
        }
        asphalt
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 10 m road with sidewalks, grass and a cross street at 30–40 m.
    pub(crate) fn ground() -> Ground {
        Ground {
            road: (-5.0, 5.0),
            kerb: 0.15,
            left: vec![Zone { kind: ZoneKind::Sidewalk, width: 3.0 }, Zone { kind: ZoneKind::Terrain, width: 2.0 }],
            right: vec![Zone { kind: ZoneKind::Terrain, width: 1.0 }, Zone { kind: ZoneKind::Sidewalk, width: 3.0 }],
            crossing: Some((30.0, 40.0)),
            crosswalk: None,
            lines: vec![],
            edge_lines: false,
            look: GroundLook {
                asphalt: [0.3; 3],
                asphalt_noise: 0.1,
                patches: 0.3,
                marking: [0.9; 3],
                paving: [0.6; 3],
                joint: [0.4; 3],
                tile: 0.5,
                grass: [0.2, 0.5, 0.1],
                soil: [0.4, 0.3, 0.2],
                kerb_stone: [0.7; 3],
                dash: (6.0, 3.0),
                seed: 1,
            },
        }
    }

    fn ray_to(s: f32, y: f32, z: f32) -> Ray {
        Ray { s0: 0.0, a: s / z, h: 1.4, b: (1.4 - y) / z }
    }

    #[test]
    fn a_ray_down_the_lane_meets_the_road_at_its_depth() {
        let (z, part) = ground().intersect(&ray_to(1.0, 0.0, 12.0)).expect("hit");
        assert_eq!(part, GroundPart::Road);
        assert!((z - 12.0).abs() < 1e-3);
    }

    #[test]
    fn a_ray_to_the_sidewalk_meets_it_at_kerb_height() {
        let g = ground();
        let (z, part) = g.intersect(&ray_to(-6.0, 0.15, 10.0)).expect("hit");
        assert_eq!(part, GroundPart::Left(0));
        assert!((z - 10.0).abs() < 1e-3);
        assert_eq!(g.label(part, [-6.0, 0.15, 10.0]), 8);
        let (_, part) = g.intersect(&ray_to(9.0, 0.15, 10.0)).expect("hit");
        assert_eq!(part, GroundPart::Right(1));
        let (_, part) = g.intersect(&ray_to(-100.0, 0.15, 10.0)).expect("hit");
        assert_eq!(part, GroundPart::Left(1));
        assert_eq!(g.label(part, [-100.0, 0.15, 10.0]), 22);
    }

    #[test]
    fn a_ray_grazing_the_road_edge_stops_at_the_kerb_face() {
        // Aimed at the road just beyond the right edge's kerb height.
        let (z, part) = ground().intersect(&ray_to(5.02, 0.05, 10.0)).expect("hit");
        assert_eq!(part, GroundPart::KerbRight);
        assert!(z < 10.0 && z > 9.0, "{z}");
    }

    #[test]
    fn a_cross_street_is_road_across_the_whole_width() {
        let (z, part) = ground().intersect(&ray_to(-20.0, 0.0, 35.0)).expect("hit");
        assert_eq!(part, GroundPart::Road);
        assert!((z - 35.0).abs() < 1e-2);
    }

    #[test]
    fn ground_parts_survive_the_byte_round_trip() {
        for part in [
            GroundPart::Road,
            GroundPart::KerbLeft,
            GroundPart::KerbRight,
            GroundPart::KerbFar,
            GroundPart::Left(3),
            GroundPart::Right(0),
        ] {
            assert_eq!(GroundPart::from_u8(part.to_u8()), part);
        }
    }

    #[test]
    fn rays_above_the_horizon_miss_the_ground() {
        assert!(ground().intersect(&Ray { s0: 0.0, a: 0.1, h: 1.4, b: -0.01 }).is_none());
    }
}
