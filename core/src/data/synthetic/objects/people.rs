//! People: pedestrians, and riders on bicycles; parked bicycles.

use rand::Rng;

use super::frame::{Local, Placement, Rect};
use super::parts::{plain, push};
use crate::data::labels::LABELS;
use crate::data::synthetic::material::Material;
use crate::data::synthetic::raster::Primitive;
use crate::data::synthetic::texture::{hsv, Rgb};

const PERSON: u8 = LABELS[24].id;
const RIDER: u8 = LABELS[25].id;
const BICYCLE: u8 = LABELS[33].id;

/// Clothes colours: dark and muted mostly, now and then bright.
fn clothing(rng: &mut impl Rng) -> Rgb {
    if rng.random_bool(0.25) {
        hsv(rng.random_range(0.0..360.0), rng.random_range(0.5..0.9), rng.random_range(0.5..0.9))
    } else {
        hsv(rng.random_range(0.0..360.0), rng.random_range(0.0..0.35), rng.random_range(0.08..0.6))
    }
}

fn skin(rng: &mut impl Rng) -> Rgb {
    hsv(rng.random_range(15.0..35.0), rng.random_range(0.25..0.6), rng.random_range(0.3..0.9))
}

/// A standing or walking person (or, with `label` rider, someone seated).
fn human(out: &mut Vec<Primitive>, rng: &mut impl Rng, at: Placement, label: u8, seated: bool) -> Rect {
    let tall = if rng.random_bool(0.1) { rng.random_range(1.0..1.45) } else { rng.random_range(1.55..1.95) };
    let k = tall / 1.75;
    let width = rng.random_range(0.36..0.5) * k;
    let depth = rng.random_range(0.2..0.3) * k;
    let local = Local { at, length: depth + 0.3, width: width + 0.2 };
    let (top, bottom, skin_c) = (clothing(rng), clothing(rng), skin(rng));
    let hair = hsv(rng.random_range(10.0..40.0), rng.random_range(0.2..0.7), rng.random_range(0.05..0.5));
    let seed = rng.random();
    let mid = local.length / 2.0;
    let hip = if seated { 0.0 } else { 0.47 * tall };
    let base = if seated { 0.95 } else { 0.0 };
    // Legs, with a stride along the walking direction.
    let stride = if seated { 0.0 } else { rng.random_range(0.0..0.22) * k };
    let gap = rng.random_range(0.02..0.1) * k;
    let leg_w = 0.13 * k;
    let leg_d = 0.15 * k;
    if seated {
        for l in [(-width / 2.0 + 0.02, -gap / 2.0), (gap / 2.0, width / 2.0 - 0.02)] {
            push(out, local.shape(l, (0.35, 0.95), (mid - leg_d, mid + leg_d)), label, plain(bottom, 0.15, seed));
        }
    } else {
        for (l, dt) in [((-gap / 2.0 - leg_w, -gap / 2.0), stride), ((gap / 2.0, gap / 2.0 + leg_w), -stride)] {
            let t = (mid + dt - leg_d / 2.0, mid + dt + leg_d / 2.0);
            push(out, local.shape(l, (0.0, hip), t), label, plain(bottom, 0.15, seed));
        }
    }
    let coat = rng.random_bool(0.3);
    let torso_lo = if seated {
        base
    } else if coat {
        0.33 * tall
    } else {
        0.45 * tall
    };
    let torso_hi = if seated { base + 0.55 * k } else { 0.82 * tall };
    let t = (mid - depth / 2.0, mid + depth / 2.0);
    push(out, local.shape((-width / 2.0, width / 2.0), (torso_lo, torso_hi), t), label, plain(top, 0.12, seed ^ 3));
    let sleeve = if rng.random_bool(0.7) { top } else { skin_c };
    let swing = if seated { 0.15 } else { rng.random_range(-0.12..0.12) * k };
    let arm_lo = if seated { torso_hi - 0.35 * k } else { 0.5 * tall };
    for (l, dt) in [((-width / 2.0 - 0.08 * k, -width / 2.0), swing), ((width / 2.0, width / 2.0 + 0.08 * k), -swing)] {
        let t = (mid + dt - 0.05, mid + dt + 0.05);
        push(out, local.shape(l, (arm_lo, torso_hi - 0.02), t), label, plain(sleeve, 0.1, seed ^ 5));
    }
    let head_r = [0.095 * k, 0.115 * k, 0.105 * k];
    let head_y = torso_hi + 0.02 + head_r[1];
    let head = Material::Head { skin: skin_c, hair, hair_from: at.y + head_y + head_r[1] * rng.random_range(0.1..0.6) };
    push(out, local.ellipsoid(0.0, head_y, mid, head_r), label, head);
    if !seated && rng.random_bool(0.25) {
        // A bag or backpack.
        let bag = clothing(rng);
        let t = if at.towards {
            (mid + depth / 2.0, mid + depth / 2.0 + 0.15)
        } else {
            (mid - depth / 2.0 - 0.15, mid - depth / 2.0)
        };
        push(out, local.shape((-0.15 * k, 0.15 * k), (0.55 * tall, 0.78 * tall), t), label, plain(bag, 0.1, seed ^ 7));
    }
    local.footprint()
}

/// A pedestrian.
pub(crate) fn person(out: &mut Vec<Primitive>, rng: &mut impl Rng, at: Placement) -> Rect {
    human(out, rng, at, PERSON, false)
}

/// A bicycle: two ring wheels, a frame and handlebars.
pub(crate) fn bicycle(out: &mut Vec<Primitive>, rng: &mut impl Rng, at: Placement) -> Rect {
    let r = rng.random_range(0.3..0.36);
    let base = rng.random_range(0.95..1.1);
    let length = base + 2.0 * r;
    let local = Local { at, length, width: 0.6 };
    let frame_c = hsv(rng.random_range(0.0..360.0), rng.random_range(0.0..0.8), rng.random_range(0.1..0.8));
    let frame = plain(frame_c, 0.05, 0);
    let tyre = [0.05, 0.05, 0.05];
    for cz in [r, r + base] {
        let shape = local.shape((-0.03, 0.03), (0.0, 2.0 * r), (cz - r, cz + r));
        let (lo, hi) = shape.bounds();
        let c = if at.across { (lo[0] + hi[0]) / 2.0 } else { (lo[2] + hi[2]) / 2.0 };
        let material = Material::Wheel { tyre, c, cy: at.y + r, r, r_in: r - 0.06, across: at.across };
        push(out, shape, BICYCLE, material);
    }
    push(out, local.shape((-0.02, 0.02), (r + 0.35, r + 0.4), (r, r + base * 0.75)), BICYCLE, frame.clone());
    push(out, local.shape((-0.02, 0.02), (r, r + 0.45), (r + base * 0.3, r + base * 0.36)), BICYCLE, frame.clone());
    push(out, local.shape((-0.02, 0.02), (r, r + 0.55), (r + base * 0.9, r + base * 0.95)), BICYCLE, frame.clone());
    push(out, local.shape((-0.27, 0.27), (r + 0.55, r + 0.6), (r + base * 0.88, r + base * 0.96)), BICYCLE, frame);
    local.footprint()
}

/// A rider on a bicycle: the bicycle labelled bicycle, the person rider.
pub(crate) fn rider(out: &mut Vec<Primitive>, rng: &mut impl Rng, at: Placement) -> Rect {
    let foot = bicycle(out, rng, at);
    let length = if at.across { foot.s1 - foot.s0 } else { foot.z1 - foot.z0 };
    let seat = Placement {
        s: at.s,
        z: if at.across { at.z } else { at.z + length * 0.3 },
        y: at.y,
        across: at.across,
        towards: at.towards,
    };
    human(out, rng, seat, RIDER, true);
    foot
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
    fn a_rider_is_a_rider_on_a_bicycle() {
        let mut out = Vec::new();
        rider(&mut out, &mut ChaCha8Rng::seed_from_u64(1), at(false));
        assert!(out.iter().any(|p| p.label == RIDER));
        assert!(out.iter().any(|p| p.label == BICYCLE));
        assert!(out.iter().all(|p| p.label == RIDER || p.label == BICYCLE));
    }

    #[test]
    fn a_person_stands_on_the_ground_and_is_human_sized() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..20 {
            let mut out = Vec::new();
            person(&mut out, &mut rng, Placement { y: 0.15, ..at(false) });
            let top = out.iter().map(|p| p.shape.bounds().1[1]).fold(0.0, f32::max);
            let bottom = out.iter().map(|p| p.shape.bounds().0[1]).fold(f32::MAX, f32::min);
            assert!((bottom - 0.15).abs() < 1e-5);
            assert!(top > 1.0 && top < 2.3, "{top}");
        }
    }
}
