//! Surface materials: the colour (albedo) of a point on a shape, before
//! lighting, and cut-outs (holes a ray passes through, e.g. a fence's mesh).

use super::geometry::Face;
use super::texture::{fbm2, hash01, hash3, mix, noise2, noise3, scale, Rgb};

/// A building front: wall, a grid of windows, and a ground floor of shops.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Facade {
    pub wall: Rgb,
    pub window: Rgb,
    pub frame: Rgb,
    pub shop: Rgb,
    /// Storey height, metres.
    pub floor_h: f32,
    /// Horizontal spacing of windows, metres.
    pub bay_w: f32,
    /// Window width and height as fractions of bay and storey.
    pub win_w: f32,
    pub win_h: f32,
    /// Window sill height as a fraction of the storey.
    pub sill: f32,
    /// Height of the ground floor, metres.
    pub ground_floor: f32,
    /// Texture origin along the façade, so neighbours do not line up.
    pub origin: f32,
    /// Amplitude of the wall's stain noise.
    pub noise: f32,
    pub seed: u32,
}

/// How a primitive's surface is coloured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Material {
    /// A colour with multiplicative value noise of cell size `1/scale` metres.
    Plain {
        base: Rgb,
        noise: f32,
        scale: f32,
        seed: u32,
    },
    Facade(Facade),
    /// Leaves: strong, fine 3-D noise with lighter and yellower patches.
    Foliage {
        base: Rgb,
        scale: f32,
        seed: u32,
    },
    /// Glass between heights `y0` and `y1`, reflecting more sky higher up.
    Glass {
        base: Rgb,
        sky: Rgb,
        y0: f32,
        y1: f32,
    },
    /// A traffic light head facing the camera: three lamps between `y0` and
    /// `y1` centred on lateral `cs`; lamp `lit` (0 top) is on.
    Lamps {
        housing: Rgb,
        lit: u8,
        y0: f32,
        y1: f32,
        cs: f32,
    },
    /// A sign plate facing the camera, a disc of `face` inside a `border`.
    Sign {
        face: Rgb,
        border: Rgb,
        cs: f32,
        cy: f32,
        radius: f32,
    },
    /// A head: `hair` above height `hair_from`, `skin` below.
    Head {
        skin: Rgb,
        hair: Rgb,
        hair_from: f32,
    },
    /// A mesh fence: bars of width `bar` every `spacing` metres; holes between.
    Lattice {
        base: Rgb,
        spacing: f32,
        bar: f32,
    },
    /// A bicycle wheel, seen from the side as a ring (`r_in..r` around
    /// `(c, cy)`, `c` along the wheel's plane), edge-on as a thin tyre. The
    /// wheel's plane is an `s`-plane, or a `z`-plane when `across`.
    Wheel {
        tyre: Rgb,
        c: f32,
        cy: f32,
        r: f32,
        r_in: f32,
        across: bool,
    },
}

impl Material {
    /// Whether the point `p` on `face` is a hole.
    pub fn is_hole(&self, p: [f32; 3], face: Face) -> bool {
        match self {
            Material::Lattice { spacing, bar, .. } => {
                let u = (face.along(p) / spacing).rem_euclid(1.0) * spacing;
                let v = (p[1] / spacing).rem_euclid(1.0) * spacing;
                u > *bar && v > *bar && !matches!(face, Face::YPos | Face::YNeg)
            }
            Material::Wheel { c, cy, r, r_in, across, .. } => {
                let side_on = if *across {
                    matches!(face, Face::ZNeg | Face::ZPos)
                } else {
                    matches!(face, Face::SNeg | Face::SPos)
                };
                let along = if *across { p[0] } else { p[2] };
                let d2 = (along - c).powi(2) + (p[1] - cy).powi(2);
                side_on && (d2 > r * r || d2 < r_in * r_in)
            }
            _ => false,
        }
    }

    /// The colour of the point `p` on `face`, before lighting.
    pub fn albedo(&self, p: [f32; 3], face: Face) -> Rgb {
        match self {
            Material::Plain { base, noise, scale: cell, seed } => {
                let n = fbm2(face.along(p) * cell + p[2] * 0.37 * cell, p[1] * cell, *seed, 2);
                scale(*base, 1.0 + noise * (n - 0.5) * 2.0)
            }
            Material::Facade(facade) => facade.albedo(p, face),
            Material::Foliage { base, scale: cell, seed } => {
                let fine = noise3(p[0] * cell, p[1] * cell, p[2] * cell, *seed);
                let coarse = noise3(p[0] * 0.6, p[1] * 0.6, p[2] * 0.6, seed.wrapping_add(1));
                let lit = 0.45 + 1.1 * fine * fine + 0.3 * (coarse - 0.5);
                let c = mix(*base, [base[0] * 1.5 + 0.05, base[1] * 1.2 + 0.03, base[2] * 0.7], coarse * 0.5);
                scale(c, lit)
            }
            Material::Glass { base, sky, y0, y1 } => {
                let t = ((p[1] - y0) / (y1 - y0).max(1e-3)).clamp(0.0, 1.0);
                let streak = noise2(face.along(p) * 1.7 + p[1] * 0.9, 0.0, 5);
                mix(*base, *sky, 0.15 + 0.45 * t * streak)
            }
            Material::Lamps { housing, lit, y0, y1, cs } => {
                if face != Face::ZNeg {
                    return *housing;
                }
                let cell = (y1 - y0) / 3.0;
                let slot = (((y1 - p[1]) / cell).floor() as i32).clamp(0, 2);
                let cy = y1 - (slot as f32 + 0.5) * cell;
                let d = ((p[0] - cs).powi(2) + (p[1] - cy).powi(2)).sqrt();
                if d > 0.36 * cell {
                    *housing
                } else if slot as u8 == *lit {
                    [[1.0, 0.15, 0.1], [1.0, 0.75, 0.1], [0.2, 1.0, 0.55]][slot as usize]
                } else {
                    [[0.25, 0.06, 0.05], [0.25, 0.18, 0.04], [0.05, 0.22, 0.12]][slot as usize]
                }
            }
            Material::Sign { face: inner, border, cs, cy, radius } => {
                if face != Face::ZNeg && face != Face::Curved {
                    return [0.45, 0.45, 0.47];
                }
                let d = ((p[0] - cs).powi(2) + (p[1] - cy).powi(2)).sqrt();
                if d < 0.72 * radius {
                    *inner
                } else {
                    *border
                }
            }
            Material::Head { skin, hair, hair_from } => {
                if p[1] > *hair_from || face == Face::ZPos {
                    *hair
                } else {
                    *skin
                }
            }
            Material::Lattice { base, .. } => *base,
            Material::Wheel { tyre, .. } => *tyre,
        }
    }
}

impl Facade {
    fn albedo(&self, p: [f32; 3], face: Face) -> Rgb {
        if matches!(face, Face::YPos | Face::YNeg) {
            return scale(self.wall, 0.75);
        }
        let t = face.along(p) - self.origin;
        let y = p[1];
        let stain = fbm2(t * 0.6, y * 0.6, self.seed, 2);
        let wall = scale(self.wall, 1.0 + self.noise * (stain - 0.5) * 2.0);
        if y < self.ground_floor {
            let bay_w = self.bay_w * 1.7;
            let bay = (t / bay_w).floor();
            let fx = t / bay_w - bay;
            let h = hash01(bay as i32, -1, 0, self.seed);
            if (0.12..0.88).contains(&fx) && y > 0.35 && y < self.ground_floor - 0.45 {
                let lit = if h > 0.7 { 1.3 } else { 0.8 + 0.3 * h };
                return scale(mix(self.window, self.shop, h), lit);
            }
            return scale(wall, 0.82);
        }
        let yy = (y - self.ground_floor) / self.floor_h;
        let floor = yy.floor();
        let fy = yy - floor;
        let bay = (t / self.bay_w).floor();
        let fx = t / self.bay_w - bay;
        let dx = (fx - 0.5).abs();
        let in_x = dx < self.win_w * 0.5;
        let in_y = fy > self.sill && fy < self.sill + self.win_h;
        if in_x && in_y {
            let h = hash3(bay as i32, floor as i32, 1, self.seed);
            let v = (h & 0xff) as f32 / 255.0;
            return if h >> 28 == 0 {
                // A lit or sunlit window.
                mix(self.window, [0.95, 0.85, 0.6], 0.6)
            } else {
                let curtain = ((h >> 8) & 3) == 0 && fy > self.sill + self.win_h * 0.4;
                if curtain {
                    mix(self.window, self.frame, 0.5)
                } else {
                    scale(self.window, 0.7 + 0.6 * v)
                }
            };
        }
        let margin_x = 0.08 / self.bay_w;
        let margin_y = 0.08 / self.floor_h;
        if dx < self.win_w * 0.5 + margin_x && fy > self.sill - margin_y && fy < self.sill + self.win_h + margin_y {
            return self.frame;
        }
        if fy < 0.05 {
            return scale(wall, 0.88);
        }
        wall
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facade() -> Facade {
        Facade {
            wall: [0.8, 0.7, 0.6],
            window: [0.1, 0.15, 0.2],
            frame: [0.9, 0.9, 0.9],
            shop: [0.5, 0.4, 0.3],
            floor_h: 3.0,
            bay_w: 2.0,
            win_w: 0.5,
            win_h: 0.5,
            sill: 0.3,
            ground_floor: 4.0,
            origin: 0.0,
            noise: 0.0,
            seed: 1,
        }
    }

    #[test]
    fn a_facade_has_windows_in_the_middle_of_each_bay_and_wall_between() {
        let f = Material::Facade(facade());
        // Storey 0 above the ground floor spans 4..7 m; windows at 4.9..6.4 m.
        let window = f.albedo([0.0, 5.5, 1.0], Face::SNeg);
        let wall = f.albedo([0.0, 5.5, 0.05], Face::SNeg);
        assert_ne!(window, wall);
        assert_eq!(wall, [0.8, 0.7, 0.6]);
    }

    #[test]
    fn a_lattice_has_holes_between_its_bars() {
        let m = Material::Lattice { base: [0.5; 3], spacing: 0.2, bar: 0.03 };
        assert!(m.is_hole([0.1, 0.1, 3.0], Face::ZNeg));
        assert!(!m.is_hole([0.01, 0.1, 3.0], Face::ZNeg));
    }

    #[test]
    fn a_wheel_is_a_ring_from_the_side_and_solid_from_behind() {
        let m = Material::Wheel { tyre: [0.1; 3], c: 10.0, cy: 0.35, r: 0.35, r_in: 0.28, across: false };
        assert!(!m.is_hole([0.0, 0.35, 10.0 + 0.31], Face::SNeg));
        assert!(m.is_hole([0.0, 0.35, 10.0], Face::SNeg));
        assert!(!m.is_hole([0.0, 0.35, 10.0], Face::ZNeg));
    }
}
