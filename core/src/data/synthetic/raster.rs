//! The z-buffer: for every pixel, the nearest surface along its ray.
//!
//! The ground is cast first for every pixel below the horizon; then every
//! primitive is tested on the pixels of its screen rectangle and wins where it
//! is nearer. Colour and label are looked up afterwards from the winning
//! surface only, so they always agree with the depth.

use super::camera::View;
use super::geometry::Shape;
use super::ground::Ground;
use super::material::Material;

/// A shape with its Cityscapes id and its material.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Primitive {
    pub shape: Shape,
    pub label: u8,
    pub material: Material,
}

/// The per-pixel winner of the depth test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Raster {
    pub width: usize,
    pub height: usize,
    /// Depth along the optical axis, metres; infinite for sky.
    pub depth: Vec<f32>,
    /// Index into the primitives, or [`SKY`] / [`GROUND`].
    pub owner: Vec<u32>,
    /// The face of the primitive, or the ground part, as a byte.
    pub part: Vec<u8>,
}

/// Owner of pixels where nothing was hit.
pub(crate) const SKY: u32 = u32::MAX;
/// Owner of pixels where the ground is the nearest surface.
pub(crate) const GROUND: u32 = u32::MAX - 1;

/// Casts every pixel's ray against the ground and the primitives.
pub(crate) fn rasterize(view: &View, ground: &Ground, prims: &[Primitive]) -> Raster {
    let width = view.camera.width as usize;
    let height = view.camera.height as usize;
    let n = width * height;
    let mut raster = Raster { width, height, depth: vec![f32::INFINITY; n], owner: vec![SKY; n], part: vec![0; n] };
    for y in 0..height {
        if view.rows[y] <= 0.0 {
            continue;
        }
        for x in 0..width {
            if let Some((z, part)) = ground.intersect(&view.ray(x, y)) {
                let i = y * width + x;
                raster.depth[i] = z;
                raster.owner[i] = GROUND;
                raster.part[i] = part.to_u8();
            }
        }
    }
    for (index, prim) in prims.iter().enumerate() {
        let (lo, hi) = prim.shape.bounds();
        let Some((x0, x1, y0, y1)) = view.screen_rect(lo, hi) else {
            continue;
        };
        for y in y0..y1 {
            for x in x0..x1 {
                let i = y * width + x;
                let ray = view.ray(x, y);
                let Some((z, face)) = prim.shape.intersect(&ray) else {
                    continue;
                };
                if z >= raster.depth[i] || prim.material.is_hole(ray.at(z), face) {
                    continue;
                }
                raster.depth[i] = z;
                raster.owner[i] = index as u32;
                raster.part[i] = face as u8;
            }
        }
    }
    raster
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::data::synthetic::camera::Camera;
    use crate::data::synthetic::ground::tests::ground;

    fn plain() -> Material {
        Material::Plain { base: [0.5; 3], noise: 0.0, scale: 1.0, seed: 0 }
    }

    #[test]
    fn the_nearer_of_two_overlapping_boxes_wins() {
        let camera = Camera::sample(&mut ChaCha8Rng::seed_from_u64(3), 128, 64, (1.4, 0.44));
        let view = View::new(camera, 0.0, 0.0);
        let far =
            Primitive { shape: Shape::cuboid((-2.0, 2.0), (0.0, 3.0), (20.0, 22.0)), label: 11, material: plain() };
        let near =
            Primitive { shape: Shape::cuboid((-0.5, 0.5), (0.0, 1.0), (8.0, 9.0)), label: 26, material: plain() };
        let raster = rasterize(&view, &ground(), &[far, near]);
        let (u, v) = view.project([0.0, 0.5, 8.0]);
        let i = v as usize * raster.width + u as usize;
        assert_eq!(raster.owner[i], 1);
        assert!((raster.depth[i] - 8.0).abs() < 1e-3);
        let (u, v) = view.project([1.5, 2.5, 20.0]);
        let i = v as usize * raster.width + u as usize;
        assert_eq!(raster.owner[i], 0);
    }

    #[test]
    fn pixels_above_the_horizon_with_nothing_in_front_are_sky() {
        let camera = Camera::sample(&mut ChaCha8Rng::seed_from_u64(3), 128, 64, (1.4, 0.44));
        let view = View::new(camera, 0.0, 0.0);
        let raster = rasterize(&view, &ground(), &[]);
        assert_eq!(raster.owner[0], SKY);
        assert_eq!(raster.owner[raster.owner.len() - 1], GROUND);
    }
}
