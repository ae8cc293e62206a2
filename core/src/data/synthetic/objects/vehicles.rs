//! Vehicles: cars, trucks and buses, made of boxes (body, glass, wheels,
//! lights and plate).

use rand::Rng;

use super::frame::{Local, Placement, Rect};
use super::parts::{plain, push};
use crate::data::labels::LABELS;
use crate::data::synthetic::material::Material;
use crate::data::synthetic::raster::Primitive;
use crate::data::synthetic::texture::{hsv, hsv_jitter, mix, scale, Rgb};

const CAR: u8 = LABELS[26].id;
const TRUCK: u8 = LABELS[27].id;
const BUS: u8 = LABELS[28].id;

/// A car paint colour: mostly greys, black and white, sometimes colourful.
pub(crate) fn car_paint(rng: &mut impl Rng) -> Rgb {
    match rng.random_range(0..10) {
        0 | 1 => hsv_jitter(rng, 0.0, 0.0, 0.9, [0.0, 0.03, 0.08]),
        2 | 3 => hsv_jitter(rng, 220.0, 0.05, 0.12, [40.0, 0.05, 0.08]),
        4 | 5 => hsv_jitter(rng, 210.0, 0.04, 0.55, [40.0, 0.04, 0.15]),
        6 => hsv_jitter(rng, 0.0, 0.75, 0.6, [12.0, 0.15, 0.2]),
        7 => hsv_jitter(rng, 220.0, 0.7, 0.45, [20.0, 0.2, 0.2]),
        _ => hsv(rng.random_range(0.0..360.0), rng.random_range(0.3..0.8), rng.random_range(0.3..0.8)),
    }
}

fn vehicle_lights(out: &mut Vec<Primitive>, local: &Local, label: u8, y: (f32, f32), width: f32, plate_y: f32) {
    if local.at.across {
        return;
    }
    let colour = if local.at.towards { [1.0, 0.95, 0.8] } else { [0.8, 0.08, 0.06] };
    let lamp = Material::Plain { base: colour, noise: 0.0, scale: 1.0, seed: 0 };
    let half = width / 2.0;
    let t = (-0.03, 0.05);
    out.push(Primitive { shape: local.shape((-half + 0.05, -half + 0.35), y, t), label, material: lamp.clone() });
    out.push(Primitive { shape: local.shape((half - 0.35, half - 0.05), y, t), label, material: lamp });
    let plate = Material::Plain { base: [0.85, 0.85, 0.8], noise: 0.0, scale: 1.0, seed: 0 };
    out.push(Primitive { shape: local.shape((-0.26, 0.26), (plate_y, plate_y + 0.12), t), label, material: plate });
}

fn wheels(out: &mut Vec<Primitive>, local: &Local, label: u8, width: f32, radius: f32, axles: &[f32]) {
    let tyre = Material::Plain { base: [0.05, 0.05, 0.06], noise: 0.2, scale: 4.0, seed: 1 };
    let half = width / 2.0;
    for &t in axles {
        for l in [(-half, -half + 0.25), (half - 0.25, half)] {
            let shape = local.shape(l, (0.0, 2.0 * radius), (t - radius, t + radius));
            push(out, shape, label, tyre.clone());
        }
    }
}

/// A car: body, glass cabin, roof, wheels, lights and plate.
pub(crate) fn car(out: &mut Vec<Primitive>, rng: &mut impl Rng, at: Placement, sky: Rgb) -> Rect {
    let length = rng.random_range(3.6..4.9);
    let width = rng.random_range(1.6..1.9);
    let height = rng.random_range(1.35..1.7);
    let belt = height * rng.random_range(0.52..0.62);
    let local = Local { at, length, width };
    let paint = car_paint(rng);
    let seed = rng.random();
    let half = width / 2.0;
    let body = Material::Plain { base: paint, noise: 0.06, scale: 1.5, seed };
    push(out, local.shape((-half, half), (0.2, belt), (0.0, length)), CAR, body.clone());
    let (c0, c1) = if rng.random_bool(0.4) {
        // Hatchback or van: the cabin runs to the rear.
        (length * rng.random_range(0.06..0.15), length * rng.random_range(0.7..0.8))
    } else {
        (length * rng.random_range(0.22..0.34), length * rng.random_range(0.68..0.8))
    };
    let (c0, c1) = if at.towards { (length - c1, length - c0) } else { (c0, c1) };
    let inset = rng.random_range(0.06..0.14);
    let glass = Material::Glass {
        base: scale(mix(paint, [0.08, 0.1, 0.12], 0.8), 0.8),
        sky,
        y0: at.y + belt,
        y1: at.y + height,
    };
    push(out, local.shape((-half + inset, half - inset), (belt, height - 0.05), (c0, c1)), CAR, glass);
    push(
        out,
        local.shape((-half + inset + 0.03, half - inset - 0.03), (height - 0.06, height), (c0 + 0.1, c1 - 0.1)),
        CAR,
        body,
    );
    let radius = rng.random_range(0.29..0.34);
    wheels(out, &local, CAR, width, radius, &[0.5 + radius, length - 0.55 - radius]);
    vehicle_lights(out, &local, CAR, (belt - 0.22, belt - 0.06), width, 0.3);
    local.footprint()
}

/// A truck: cab and a tall cargo box (nearest the camera when seen from behind).
pub(crate) fn truck(out: &mut Vec<Primitive>, rng: &mut impl Rng, at: Placement, sky: Rgb) -> Rect {
    let cab_len = rng.random_range(1.9..2.5);
    let cargo_len = rng.random_range(4.0..9.0);
    let length = cab_len + cargo_len + 0.2;
    let width = rng.random_range(2.3..2.55);
    let cab_h = rng.random_range(2.5..3.2);
    let cargo_h = rng.random_range(2.8..3.9);
    let local = Local { at, length, width };
    let half = width / 2.0;
    let cab_paint = car_paint(rng);
    let cargo = if rng.random_bool(0.5) { hsv_jitter(rng, 0.0, 0.0, 0.85, [0.0, 0.05, 0.1]) } else { car_paint(rng) };
    let seed = rng.random();
    let (cab, box_) = if at.towards {
        ((0.0, cab_len), (cab_len + 0.2, length))
    } else {
        ((cargo_len + 0.2, length), (0.0, cargo_len))
    };
    push(out, local.shape((-half, half), (0.5, cargo_h), box_), TRUCK, plain(cargo, 0.08, seed));
    push(out, local.shape((-half, half), (0.5, cab_h * 0.55), cab), TRUCK, plain(cab_paint, 0.05, seed ^ 1));
    let glass = Material::Glass { base: [0.08, 0.1, 0.12], sky, y0: at.y + cab_h * 0.55, y1: at.y + cab_h };
    push(out, local.shape((-half + 0.05, half - 0.05), (cab_h * 0.55, cab_h), cab), TRUCK, glass);
    let radius = rng.random_range(0.45..0.55);
    wheels(out, &local, TRUCK, width, radius, &[0.6 + radius, length - 0.7 - radius]);
    vehicle_lights(out, &local, TRUCK, (0.8, 1.0), width, 0.6);
    local.footprint()
}

/// A bus: a long tall box with a band of windows all round.
pub(crate) fn bus(out: &mut Vec<Primitive>, rng: &mut impl Rng, at: Placement, sky: Rgb) -> Rect {
    let length = rng.random_range(10.0..14.5);
    let width = 2.55;
    let height = rng.random_range(2.9..3.4);
    let local = Local { at, length, width };
    let half = width / 2.0;
    let paint = if rng.random_bool(0.5) { hsv_jitter(rng, 0.0, 0.0, 0.88, [0.0, 0.05, 0.08]) } else { car_paint(rng) };
    let seed = rng.random();
    push(out, local.shape((-half, half), (0.3, height), (0.0, length)), BUS, plain(paint, 0.05, seed));
    let glass = Material::Glass { base: [0.07, 0.09, 0.11], sky, y0: at.y + 1.1, y1: at.y + height - 0.3 };
    push(out, local.shape((-half - 0.01, half + 0.01), (1.1, height - 0.3), (-0.01, length + 0.01)), BUS, glass);
    wheels(out, &local, BUS, width, 0.5, &[2.5, length - 3.0]);
    vehicle_lights(out, &local, BUS, (0.6, 0.8), width, 0.45);
    local.footprint()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn at(across: bool) -> Placement {
        Placement { s: 2.0, z: 10.0, y: 0.0, across, towards: false }
    }

    #[test]
    fn a_car_is_made_of_car_pixels_within_its_footprint() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for across in [false, true] {
            let mut out = Vec::new();
            let foot = car(&mut out, &mut rng, at(across), [0.5, 0.6, 0.8]);
            assert!(out.iter().all(|p| p.label == CAR));
            for p in &out {
                let (lo, hi) = p.shape.bounds();
                assert!(lo[0] >= foot.s0 - 0.05 && hi[0] <= foot.s1 + 0.05, "{lo:?} {hi:?} {foot:?}");
                assert!(lo[2] >= foot.z0 - 0.05 && hi[2] <= foot.z1 + 0.05, "{lo:?} {hi:?} {foot:?}");
                assert!(lo[1] >= 0.0 && hi[1] <= 1.8);
            }
        }
    }
}
