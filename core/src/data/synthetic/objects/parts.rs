//! The small helpers every builder uses to add a part.

use crate::data::synthetic::geometry::Shape;
use crate::data::synthetic::material::Material;
use crate::data::synthetic::raster::Primitive;
use crate::data::synthetic::texture::Rgb;

/// A plain material: `base` varied by `noise` (value noise at scale 2, seeded by `seed`).
pub(super) fn plain(base: Rgb, noise: f32, seed: u32) -> Material {
    Material::Plain { base, noise, scale: 2.0, seed }
}

/// Appends one part: `shape` with `label`, coloured by `material`.
pub(super) fn push(out: &mut Vec<Primitive>, shape: Shape, label: u8, material: Material) {
    out.push(Primitive { shape, label, material });
}
