//! Street furniture and the street's edges: trees, street lamps, traffic
//! lights and signs, buildings (with their façades), walls, fences, hedges.

use rand::Rng;

use super::frame::Rect;
use super::parts::{plain, push};
use crate::data::labels::LABELS;
use crate::data::synthetic::geometry::Shape;
use crate::data::synthetic::material::{Facade, Material};
use crate::data::synthetic::raster::Primitive;
use crate::data::synthetic::sampling::pick;
use crate::data::synthetic::texture::{hsv, hsv_jitter, mix, scale, tint, Rgb};

const POLE: u8 = LABELS[17].id;
const TRAFFIC_LIGHT: u8 = LABELS[19].id;
const TRAFFIC_SIGN: u8 = LABELS[20].id;
const VEGETATION: u8 = LABELS[21].id;
const BUILDING: u8 = LABELS[11].id;
const WALL: u8 = LABELS[12].id;
const FENCE: u8 = LABELS[13].id;

/// A tree: a trunk and a crown of overlapping leafy blobs (or a conifer).
pub(crate) fn tree(out: &mut Vec<Primitive>, rng: &mut impl Rng, s: f32, z: f32, y: f32, leaves: Rgb) -> Rect {
    let trunk_w = rng.random_range(0.2..0.45);
    let trunk_h = rng.random_range(1.6..4.0);
    let radius = rng.random_range(1.1..3.6);
    let bark = hsv(rng.random_range(15.0..40.0), rng.random_range(0.1..0.4), rng.random_range(0.12..0.35));
    let seed: u32 = rng.random();
    let w = trunk_w / 2.0;
    push(
        out,
        Shape::cuboid((s - w, s + w), (y, y + trunk_h + radius), (z - w, z + w)),
        VEGETATION,
        plain(bark, 0.2, seed),
    );
    let leaves = tint(rng, leaves, 0.15);
    let foliage = Material::Foliage { base: leaves, scale: rng.random_range(2.0..5.0), seed };
    if rng.random_bool(0.15) {
        let layers = rng.random_range(3..6);
        for i in 0..layers {
            let f = i as f32 / layers as f32;
            let r = radius * (1.0 - 0.7 * f);
            let c = [s, y + trunk_h * 0.6 + 2.2 * radius * f + r * 0.5, z];
            push(out, Shape::Ellipsoid { c, r: [r, r * 0.8, r] }, VEGETATION, foliage.clone());
        }
    } else {
        let blobs = rng.random_range(3..9);
        for _ in 0..blobs {
            let c = [
                s + rng.random_range(-0.5..0.5) * radius,
                y + trunk_h + radius * rng.random_range(0.5..1.4),
                z + rng.random_range(-0.5..0.5) * radius,
            ];
            let r = [
                radius * rng.random_range(0.45..0.9),
                radius * rng.random_range(0.4..0.8),
                radius * rng.random_range(0.45..0.9),
            ];
            push(out, Shape::Ellipsoid { c, r }, VEGETATION, foliage.clone());
        }
    }
    Rect { s0: s - w, s1: s + w, z0: z - w, z1: z + w }
}

/// A street lamp: a pole with, sometimes, an arm reaching over the road
/// (towards `toward`, ±1 in `s`) and a lamp head.
pub(crate) fn street_lamp(
    out: &mut Vec<Primitive>,
    rng: &mut impl Rng,
    s: f32,
    z: f32,
    y: f32,
    toward: f32,
    colour: Rgb,
) -> Rect {
    let height = rng.random_range(4.5..9.5);
    let w = rng.random_range(0.07..0.14);
    let metal = plain(colour, 0.1, 2);
    push(out, Shape::cuboid((s - w, s + w), (y, y + height), (z - w, z + w)), POLE, metal.clone());
    if rng.random_bool(0.65) {
        let reach = rng.random_range(0.8..3.0);
        let end = s + toward * reach;
        push(out, Shape::cuboid((s, end), (y + height - 0.1, y + height), (z - 0.05, z + 0.05)), POLE, metal.clone());
        let head = Shape::cuboid((end - 0.3, end + 0.3), (y + height - 0.25, y + height - 0.05), (z - 0.15, z + 0.15));
        push(out, head, POLE, metal);
    }
    Rect { s0: s - w, s1: s + w, z0: z - w, z1: z + w }
}

/// A traffic light on a pole facing the camera, or hanging from an arm over
/// the road (`toward`, ±1 in `s`); `back` shows the back of the head.
pub(crate) fn traffic_light(
    out: &mut Vec<Primitive>,
    rng: &mut impl Rng,
    s: f32,
    z: f32,
    y: f32,
    toward: f32,
    back: bool,
) -> Rect {
    let arm = rng.random_bool(0.4);
    let height = if arm { rng.random_range(5.0..6.5) } else { rng.random_range(2.6..4.2) };
    let w = rng.random_range(0.06..0.1);
    let metal = plain(hsv_jitter(rng, 200.0, 0.1, 0.3, [60.0, 0.1, 0.15]), 0.05, 3);
    push(out, Shape::cuboid((s - w, s + w), (y, y + height), (z - w, z + w)), POLE, metal.clone());
    let hs = if arm {
        let reach = rng.random_range(2.0..5.0);
        let end = s + toward * reach;
        push(out, Shape::cuboid((s, end), (y + height - 0.12, y + height), (z - 0.06, z + 0.06)), POLE, metal);
        end
    } else {
        s
    };
    let (head_h, head_w) = (rng.random_range(0.75..1.0), rng.random_range(0.28..0.36));
    let y1 = if arm { y + height - 0.15 } else { y + height + head_h * 0.5 };
    let y0 = y1 - head_h;
    let housing = hsv_jitter(rng, 60.0, 0.1, 0.12, [60.0, 0.1, 0.08]);
    let material = if back {
        Material::Plain { base: housing, noise: 0.05, scale: 1.0, seed: 0 }
    } else {
        Material::Lamps { housing, lit: rng.random_range(0..3), y0, y1, cs: hs }
    };
    let head = Shape::cuboid((hs - head_w / 2.0, hs + head_w / 2.0), (y0, y1), (z - 0.35, z - w));
    push(out, head, TRAFFIC_LIGHT, material);
    Rect { s0: s - w, s1: s + w, z0: z - w, z1: z + w }
}

/// A traffic sign: a thin pole and a round or rectangular plate facing the
/// camera.
pub(crate) fn traffic_sign(out: &mut Vec<Primitive>, rng: &mut impl Rng, s: f32, z: f32, y: f32) -> Rect {
    let height = rng.random_range(1.9..3.2);
    let w = 0.035;
    push(out, Shape::cuboid((s - w, s + w), (y, y + height), (z - w, z + w)), POLE, plain([0.5, 0.5, 0.52], 0.1, 4));
    let (face, border) = match rng.random_range(0..4) {
        0 => ([0.95, 0.95, 0.95], [0.8, 0.05, 0.05]),
        1 => ([0.05, 0.25, 0.7], [0.95, 0.95, 0.95]),
        2 => ([0.95, 0.8, 0.1], [0.1, 0.1, 0.1]),
        _ => ([0.8, 0.05, 0.05], [0.95, 0.95, 0.95]),
    };
    let (face, border) = (tint(rng, face, 0.1), tint(rng, border, 0.1));
    let r = rng.random_range(0.28..0.45);
    let cy = y + height + r * 0.8;
    let material = Material::Sign { face, border, cs: s, cy, radius: r };
    let plate = if rng.random_bool(0.5) {
        Shape::Ellipsoid { c: [s, cy, z - w - 0.03], r: [r, r, 0.02] }
    } else {
        let hh = r * rng.random_range(0.8..1.5);
        Shape::cuboid((s - r, s + r), (cy - hh, cy + hh), (z - w - 0.05, z - w))
    };
    push(out, plate, TRAFFIC_SIGN, material);
    Rect { s0: s - r, s1: s + r, z0: z - w - 0.05, z1: z + w }
}

/// A building block beside the road: its face towards the road at `s_in`,
/// extending `depth` away from the road on `side` (±1), over `z` and up to
/// `height`.
pub(crate) fn building(
    out: &mut Vec<Primitive>,
    s_in: f32,
    side: f32,
    depth: f32,
    z: (f32, f32),
    height: f32,
    facade: Facade,
) {
    let shape = Shape::cuboid((s_in, s_in + side * depth), (0.0, height), z);
    push(out, shape, BUILDING, Material::Facade(facade));
}

/// A wall, a fence (mesh or planks) or a hedge along the road at lateral `s`
/// over `z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Barrier {
    Wall,
    Fence,
    Hedge,
}

pub(crate) fn barrier(
    out: &mut Vec<Primitive>,
    rng: &mut impl Rng,
    kind: Barrier,
    s: f32,
    z: (f32, f32),
    y: f32,
    leaves: Rgb,
) {
    let seed = rng.random();
    match kind {
        Barrier::Wall => {
            let h = rng.random_range(0.5..2.6);
            let t = rng.random_range(0.15..0.4) / 2.0;
            let c = if rng.random_bool(0.5) {
                hsv_jitter(rng, 30.0, 0.05, 0.6, [30.0, 0.05, 0.2])
            } else {
                hsv_jitter(rng, 15.0, 0.45, 0.45, [10.0, 0.15, 0.15])
            };
            push(
                out,
                Shape::cuboid((s - t, s + t), (y, y + h), z),
                WALL,
                Material::Plain { base: c, noise: 0.25, scale: 1.5, seed },
            );
        }
        Barrier::Fence => {
            let h = rng.random_range(0.9..2.2);
            let c = match rng.random_range(0..3) {
                0 => hsv_jitter(rng, 120.0, 0.3, 0.3, [30.0, 0.2, 0.15]),
                1 => hsv_jitter(rng, 30.0, 0.4, 0.4, [10.0, 0.2, 0.15]),
                _ => hsv_jitter(rng, 210.0, 0.05, 0.55, [30.0, 0.05, 0.2]),
            };
            let material = if rng.random_bool(0.7) {
                Material::Lattice { base: c, spacing: rng.random_range(0.12..0.4), bar: rng.random_range(0.03..0.07) }
            } else {
                Material::Plain { base: c, noise: 0.3, scale: 3.0, seed }
            };
            push(out, Shape::cuboid((s - 0.03, s + 0.03), (y, y + h), z), FENCE, material);
        }
        Barrier::Hedge => {
            let h = rng.random_range(0.7..2.2);
            let t = rng.random_range(0.5..1.4) / 2.0;
            let base = tint(rng, leaves, 0.15);
            push(
                out,
                Shape::cuboid((s - t, s + t), (y, y + h), z),
                VEGETATION,
                Material::Foliage { base, scale: 4.0, seed },
            );
        }
    }
}

/// A wall colour from one of a few families (plaster, concrete, brick,
/// white, pastel, dark).
fn wall_colour(rng: &mut impl Rng) -> Rgb {
    match pick(rng, &[3.0, 3.0, 2.0, 1.5, 1.5, 1.0]) {
        0 => hsv_jitter(rng, 38.0, 0.28, 0.72, [14.0, 0.14, 0.16]),
        1 => hsv_jitter(rng, 200.0, 0.04, 0.55, [160.0, 0.04, 0.22]),
        2 => hsv_jitter(rng, 14.0, 0.55, 0.45, [10.0, 0.15, 0.15]),
        3 => hsv_jitter(rng, 40.0, 0.03, 0.88, [40.0, 0.03, 0.07]),
        4 => hsv(rng.random_range(0.0..360.0), rng.random_range(0.15..0.4), rng.random_range(0.55..0.85)),
        _ => hsv_jitter(rng, 30.0, 0.1, 0.25, [40.0, 0.1, 0.1]),
    }
}

/// A building front: wall colour, windows, storeys and shops.
pub(crate) fn facade(rng: &mut impl Rng, sky: Rgb) -> Facade {
    let wall = wall_colour(rng);
    let window = mix(hsv_jitter(rng, 210.0, 0.2, 0.15, [30.0, 0.15, 0.1]), sky, rng.random_range(0.0..0.5));
    let frame = if rng.random_bool(0.5) {
        scale(wall, rng.random_range(0.6..1.3))
    } else {
        hsv_jitter(rng, 0.0, 0.0, 0.85, [0.0, 0.0, 0.1])
    };
    let floor_h = rng.random_range(2.7..3.8);
    Facade {
        wall,
        window,
        frame,
        shop: hsv(rng.random_range(0.0..360.0), rng.random_range(0.1..0.6), rng.random_range(0.3..0.9)),
        floor_h,
        bay_w: rng.random_range(1.6..4.0),
        win_w: rng.random_range(0.3..0.75),
        win_h: rng.random_range(0.35..0.65),
        sill: rng.random_range(0.15..0.3),
        ground_floor: if rng.random_bool(0.6) { rng.random_range(3.0..4.8) } else { 0.0 },
        origin: rng.random_range(0.0..10.0),
        noise: rng.random_range(0.03..0.25),
        seed: rng.random(),
    }
}
