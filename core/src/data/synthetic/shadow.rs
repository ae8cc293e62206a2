//! Cast shadows: whether a surface point sees the sun.
//!
//! A point is in shadow when the ray from it towards the sun meets a solid
//! primitive. Each caster keeps the bounding box of the volume its shadow
//! can fall in (its bounds swept down to the road along the sun direction),
//! and casters are binned by the depth range of that box, so a point only
//! looks at the few casters whose shadow can reach its depth.

use super::geometry::Shape;
use super::material::Material;
use super::raster::Primitive;

/// Primitives smaller than this in every direction (metres) cast no shadow.
const MIN_CASTER: f32 = 0.5;

struct Caster {
    shape: Shape,
    lo: [f32; 3],
    hi: [f32; 3],
}

/// Depth bins: `BINS` bins of `BIN` metres from `BIN_START`; points outside
/// look at every caster.
const BIN: f32 = 4.0;
const BIN_START: f32 = -40.0;
const BINS: usize = 120;

/// The shadow casters of a scene for one sun direction.
pub(crate) struct Shadows {
    dir: [f32; 3],
    casters: Vec<Caster>,
    /// Caster indices per depth bin, bin `b` at `index[start[b]..start[b + 1]]`.
    start: Vec<usize>,
    index: Vec<u32>,
}

fn bin_range(lo: f32, hi: f32) -> std::ops::Range<usize> {
    let first = ((lo - BIN_START) / BIN).floor().clamp(0.0, BINS as f32) as usize;
    let last = ((hi - BIN_START) / BIN).floor().clamp(-1.0, BINS as f32 - 1.0) as i64;
    first..(last + 1).max(first as i64) as usize
}

impl Shadows {
    /// Casters for the sun in direction `dir` (unit, pointing at the sun,
    /// above the horizon). Mesh fences, wheels and small parts cast none.
    pub fn new(prims: &[Primitive], dir: [f32; 3]) -> Shadows {
        let up = dir[1].max(0.05);
        let casters = prims
            .iter()
            .filter(|p| !matches!(p.material, Material::Lattice { .. } | Material::Wheel { .. }))
            .filter_map(|p| {
                let (lo, hi) = p.shape.bounds();
                if (0..3).all(|k| hi[k] - lo[k] < MIN_CASTER) {
                    return None;
                }
                let (mut slo, mut shi) = (lo, hi);
                for corner in 0..8 {
                    let c = [
                        if corner & 1 == 0 { lo[0] } else { hi[0] },
                        if corner & 2 == 0 { lo[1] } else { hi[1] },
                        if corner & 4 == 0 { lo[2] } else { hi[2] },
                    ];
                    let t = c[1].max(0.0) / up;
                    let ground = [c[0] - dir[0] * t, 0.0, c[2] - dir[2] * t];
                    for k in 0..3 {
                        slo[k] = slo[k].min(ground[k]);
                        shi[k] = shi[k].max(ground[k]);
                    }
                }
                Some(Caster { shape: p.shape.clone(), lo: slo, hi: shi })
            })
            .collect::<Vec<_>>();
        let mut count = vec![0usize; BINS + 1];
        for c in &casters {
            for b in bin_range(c.lo[2], c.hi[2]) {
                count[b + 1] += 1;
            }
        }
        for b in 0..BINS {
            count[b + 1] += count[b];
        }
        let start = count.clone();
        let mut index = vec![0u32; start[BINS]];
        for (i, c) in casters.iter().enumerate() {
            for b in bin_range(c.lo[2], c.hi[2]) {
                index[count[b]] = i as u32;
                count[b] += 1;
            }
        }
        Shadows { dir, casters, start, index }
    }

    /// Whether the sun is visible from `p` (which should be lifted a little
    /// off its surface along the normal).
    pub fn lit(&self, p: [f32; 3]) -> bool {
        let blocked = |c: &Caster| (0..3).all(|k| p[k] >= c.lo[k] && p[k] <= c.hi[k]) && blocks(&c.shape, p, self.dir);
        let b = ((p[2] - BIN_START) / BIN).floor();
        if b >= 0.0 && b < BINS as f32 {
            let b = b as usize;
            !self.index[self.start[b]..self.start[b + 1]].iter().any(|&i| blocked(&self.casters[i as usize]))
        } else {
            !self.casters.iter().any(blocked)
        }
    }
}

/// Whether the ray `p + t·d`, `t > 0`, meets the shape.
fn blocks(shape: &Shape, p: [f32; 3], d: [f32; 3]) -> bool {
    const EPS: f32 = 1e-3;
    match shape {
        Shape::Box { lo, hi } => {
            let (mut entry, mut exit) = (f32::NEG_INFINITY, f32::INFINITY);
            for k in 0..3 {
                if d[k].abs() < 1e-9 {
                    if p[k] < lo[k] || p[k] > hi[k] {
                        return false;
                    }
                } else {
                    let t0 = (lo[k] - p[k]) / d[k];
                    let t1 = (hi[k] - p[k]) / d[k];
                    entry = entry.max(t0.min(t1));
                    exit = exit.min(t0.max(t1));
                }
            }
            entry <= exit && exit > EPS
        }
        Shape::Ellipsoid { c, r } => {
            let (mut qa, mut qb, mut qc) = (0.0, 0.0, -1.0);
            for k in 0..3 {
                let (al, be) = (d[k] / r[k], (p[k] - c[k]) / r[k]);
                qa += al * al;
                qb += 2.0 * al * be;
                qc += be * be;
            }
            let disc = qb * qb - 4.0 * qa * qc;
            disc >= 0.0 && (-qb + disc.sqrt()) / (2.0 * qa) > EPS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall() -> Primitive {
        Primitive {
            shape: Shape::cuboid((5.0, 15.0), (0.0, 10.0), (0.0, 50.0)),
            label: 11,
            material: Material::Plain { base: [0.5; 3], noise: 0.0, scale: 1.0, seed: 0 },
        }
    }

    #[test]
    fn a_building_shades_the_road_on_the_side_away_from_the_sun() {
        // Sun low in the east (+s): the building on the right shades the road near it.
        let dir = [0.8f32, 0.6, 0.0];
        let shadows = Shadows::new(&[wall()], dir);
        assert!(!shadows.lit([3.0, 0.01, 20.0]));
        assert!(shadows.lit([-10.0, 0.01, 20.0]));
        // Beyond the building's far end the road is lit.
        assert!(shadows.lit([3.0, 0.01, 60.0]));
    }

    #[test]
    fn a_tree_crown_casts_a_shadow_below_it() {
        let crown = Primitive {
            shape: Shape::Ellipsoid { c: [0.0, 5.0, 10.0], r: [2.0, 2.0, 2.0] },
            label: 21,
            material: Material::Foliage { base: [0.2, 0.5, 0.1], scale: 2.0, seed: 0 },
        };
        let shadows = Shadows::new(&[crown], [0.0, 1.0, 0.0]);
        assert!(!shadows.lit([0.5, 0.0, 10.5]));
        assert!(shadows.lit([3.0, 0.0, 10.0]));
        // A point above the crown is not shaded by it.
        assert!(shadows.lit([0.0, 8.0, 10.0]));
    }

    #[test]
    fn binning_agrees_with_testing_every_caster() {
        let mut prims = vec![wall()];
        for i in 0..30 {
            let z = i as f32 * 9.0 - 30.0;
            prims.push(Primitive { shape: Shape::cuboid((-3.0, -1.0), (0.0, 1.5), (z, z + 4.5)), ..wall() });
        }
        let shadows = Shadows::new(&prims, [0.3, 0.5, -0.81]);
        for i in 0..2000 {
            let p = [(i % 40) as f32 * 0.5 - 10.0, 0.01, (i / 40) as f32 * 11.0 - 60.0];
            let brute = !shadows.casters.iter().any(|c| blocks(&c.shape, p, shadows.dir));
            assert_eq!(shadows.lit(p), brute, "{p:?}");
        }
    }

    #[test]
    fn small_parts_and_mesh_fences_cast_no_shadow() {
        let fence = Primitive {
            shape: Shape::cuboid((0.0, 0.05), (0.0, 2.0), (0.0, 10.0)),
            label: 13,
            material: Material::Lattice { base: [0.5; 3], spacing: 0.2, bar: 0.03 },
        };
        let lamp = Primitive { shape: Shape::cuboid((0.0, 0.3), (0.0, 0.1), (0.0, 0.1)), ..wall() };
        assert!(Shadows::new(&[fence, lamp], [0.0, 1.0, 0.0]).casters.is_empty());
    }
}
