//! Placing things in a street: buildings, barriers, lamps and trees along
//! both sides, a skyline, traffic lights and signs, vehicles, pedestrians,
//! riders and parked bicycles. Objects are kept apart by their footprints.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::counts::Counts;
use super::district::District;
use super::geometry::Shape;
use super::material::{Facade, Material};
use super::objects::{self, Barrier, Placement, Rect};
use super::raster::Primitive;
use super::sampling::pick;
use super::street::Street;
use super::texture::{hsv_jitter, tint, Rgb};
use crate::data::labels::LABELS;

/// What was placed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Population {
    pub prims: Vec<Primitive>,
    /// Footprints of vehicles (darkened on the ground beneath them).
    pub shadows: Vec<Rect>,
    pub counts: Counts,
}

enum Who {
    Person,
    Rider,
    Bicycle,
}

struct Populator<'a> {
    rng: &'a mut ChaCha8Rng,
    street: &'a Street,
    /// Colour of the sky, reflected in glass.
    sky: Rgb,
    district: &'a District,
    leaves: Rgb,
    out: Population,
    /// Footprints taken so far.
    occupied: Vec<Rect>,
}

/// Fills `street` with objects; `sky` is the zenith colour, for glass; the
/// district sets how busy the street is and how tall its buildings are.
pub(crate) fn populate(rng: &mut ChaCha8Rng, street: &Street, sky: Rgb, district: &District) -> Population {
    let leaves = hsv_jitter(rng, 95.0, 0.6, 0.32, [25.0, 0.2, 0.14]);
    let cam = Rect { s0: street.cam_s - 1.2, s1: street.cam_s + 1.2, z0: -6.0, z1: 2.5 };
    let mut p = Populator { rng, street, sky, district, leaves, out: Population::default(), occupied: vec![cam] };
    p.sides();
    p.far_away();
    p.signals();
    p.vehicles();
    p.people();
    p.out
}

impl Populator<'_> {
    fn free(&self, r: &Rect, margin: f32) -> bool {
        !self.occupied.iter().any(|o| o.overlaps(r, margin))
    }

    fn random_side(&mut self) -> f32 {
        if self.rng.random_bool(0.5) {
            1.0
        } else {
            -1.0
        }
    }

    /// Both sides of the street: buildings, barriers, street lamps, trees.
    fn sides(&mut self) {
        let pole_colour = match pick(self.rng, &[3.0, 1.0, 1.0]) {
            0 => hsv_jitter(self.rng, 210.0, 0.04, 0.5, [30.0, 0.04, 0.15]),
            1 => hsv_jitter(self.rng, 150.0, 0.4, 0.22, [20.0, 0.15, 0.08]),
            _ => hsv_jitter(self.rng, 0.0, 0.0, 0.12, [0.0, 0.0, 0.06]),
        };
        let (urban, kerb) = (self.street.urban, self.street.ground.kerb);
        for side in [-1.0f32, 1.0] {
            let edge = self.street.edge(side);
            let verge = self.street.verge_width(side);
            if self.rng.random_bool(0.25 + 0.7 * urban as f64) {
                self.buildings(side, edge, verge);
            }
            for kind in [Barrier::Wall, Barrier::Fence, Barrier::Hedge] {
                if self.rng.random_bool(0.25) {
                    let z0 = self.rng.random_range(-5.0..40.0);
                    let z1 = z0 + self.rng.random_range(4.0..50.0);
                    let s = edge + side * (verge - self.rng.random_range(0.3..1.0)).max(0.4);
                    if !self.street.in_crossing(z0, z1) {
                        objects::barrier(&mut self.out.prims, self.rng, kind, s, (z0, z1), kerb, self.leaves);
                        self.out.counts.barriers += 1;
                    }
                }
            }
            if self.rng.random_bool(0.75) {
                let spacing = self.rng.random_range(14.0..40.0);
                let mut z = self.rng.random_range(-5.0..spacing);
                let s = edge + side * self.rng.random_range(0.3..0.9);
                while z < 120.0 {
                    let foot = Rect { s0: s - 0.2, s1: s + 0.2, z0: z - 0.2, z1: z + 0.2 };
                    if !self.street.in_crossing(z - 1.0, z + 1.0) && self.free(&foot, 0.1) {
                        let foot = objects::street_lamp(&mut self.out.prims, self.rng, s, z, kerb, -side, pole_colour);
                        self.occupied.push(foot);
                        self.out.counts.poles += 1;
                    }
                    z += spacing * self.rng.random_range(0.8..1.2);
                }
            }
            if self.rng.random_bool(0.25 + 0.55 * (1.0 - urban as f64)) {
                let spacing = self.rng.random_range(5.0..18.0);
                let mut z = self.rng.random_range(-3.0..spacing);
                let lateral = self.rng.random_range(0.6..(verge + 2.0).max(1.0));
                while z < 100.0 {
                    let s = edge + side * (lateral + self.rng.random_range(-0.3..0.3));
                    let foot = Rect { s0: s - 0.4, s1: s + 0.4, z0: z - 0.4, z1: z + 0.4 };
                    if !self.street.in_crossing(z - 2.0, z + 2.0) && self.free(&foot, 0.2) {
                        let foot = objects::tree(&mut self.out.prims, self.rng, s, z, kerb, self.leaves);
                        self.occupied.push(foot);
                        self.out.counts.trees += 1;
                    }
                    z += spacing * self.rng.random_range(0.6..1.4);
                }
            }
        }
    }

    /// A row of buildings behind the strips on `side`, with gaps, varying
    /// setbacks and heights, interrupted by the cross street.
    fn buildings(&mut self, side: f32, edge: f32, verge: f32) {
        let rng = &mut *self.rng;
        let urban = self.street.urban;
        let mut z = rng.random_range(-25.0..0.0);
        let z_end = rng.random_range(60.0..220.0);
        let gap_p = 0.1 + 0.35 * (1.0 - urban as f64);
        let mut n = 0;
        while z < z_end && n < 16 {
            let len = rng.random_range(6.0..12.0) + 25.0 * rng.random::<f32>();
            if let Some((c0, c1)) = self.street.ground.crossing {
                if z < c1 && z + len > c0 {
                    z = c1 + rng.random_range(0.0..3.0);
                    continue;
                }
            }
            if rng.random_bool(gap_p) {
                z += rng.random_range(2.0..20.0);
                continue;
            }
            let setback =
                verge + if rng.random_bool(0.3) { rng.random_range(0.0..4.0) } else { rng.random_range(0.0..0.5) };
            let tall = rng.random_range(4.0..8.0 + 28.0 * urban) * self.district.storeys;
            let facade = objects::facade(rng, self.sky);
            let depth = rng.random_range(8.0..20.0);
            objects::building(&mut self.out.prims, edge + side * setback, side, depth, (z, z + len), tall, facade);
            self.out.counts.buildings += 1;
            n += 1;
            z += len;
        }
    }

    /// A skyline of distant buildings and tree lines near the horizon.
    fn far_away(&mut self) {
        let rng = &mut *self.rng;
        let (urban, cam_s) = (self.street.urban, self.street.cam_s);
        for _ in 0..rng.random_range(0..=(2.0 + 10.0 * urban) as usize) {
            let z0 = rng.random_range(90.0..350.0);
            let s = cam_s + rng.random_range(-0.8..0.8) * z0;
            let w = rng.random_range(10.0..60.0);
            let facade = Facade { noise: 0.05, ..objects::facade(rng, self.sky) };
            let tall = rng.random_range(8.0..25.0 + 60.0 * urban);
            let z = (z0, z0 + rng.random_range(10.0..40.0));
            objects::building(&mut self.out.prims, s - w / 2.0, 1.0, w, z, tall, facade);
            self.out.counts.buildings += 1;
        }
        if rng.random_bool(0.65 - 0.4 * urban as f64) {
            for _ in 0..rng.random_range(2..10) {
                let z = rng.random_range(60.0..260.0);
                let r = rng.random_range(5.0..20.0);
                let c = [cam_s + rng.random_range(-0.9..0.9) * z, r * rng.random_range(0.3..0.8), z];
                let material = Material::Foliage { base: tint(rng, self.leaves, 0.2), scale: 0.8, seed: rng.random() };
                let shape = Shape::Ellipsoid { c, r: [r * 1.5, r, r] };
                self.out.prims.push(Primitive { shape, label: LABELS[21].id, material });
            }
        }
    }

    /// Traffic lights at the cross street (rarely elsewhere), and signs.
    fn signals(&mut self) {
        let kerb = self.street.ground.kerb;
        if let Some((c0, c1)) = self.street.ground.crossing {
            for (side, z, p) in
                [(1.0f32, c0 - 1.0, 0.8), (-1.0, c0 - 1.0, 0.5), (1.0, c1 + 1.0, 0.5), (-1.0, c1 + 1.0, 0.5)]
            {
                if self.rng.random_bool(p) {
                    let s = self.street.edge(side) + side * self.rng.random_range(0.4..1.0);
                    // Lights beyond the crossing face the cross traffic.
                    let back = z > c1 && self.rng.random_bool(0.5);
                    let z = z - self.rng.random_range(0.0..2.0);
                    let foot = objects::traffic_light(&mut self.out.prims, self.rng, s, z, kerb, -side, back);
                    self.occupied.push(foot);
                    self.out.counts.lights += 1;
                }
            }
        } else if self.rng.random_bool(0.12) {
            let side = self.random_side();
            let s = self.street.edge(side) + side * 0.6;
            let z = self.rng.random_range(8.0..50.0);
            let foot = objects::traffic_light(&mut self.out.prims, self.rng, s, z, kerb, -side, false);
            self.occupied.push(foot);
            self.out.counts.lights += 1;
        }
        for _ in 0..pick(self.rng, &[2.0, 3.0, 2.0, 1.0, 0.5]) {
            let side = self.random_side();
            let s = self.street.edge(side) + side * self.rng.random_range(0.3..1.2);
            let z = self.rng.random_range(4.0..70.0);
            if self.free(&Rect { s0: s - 0.5, s1: s + 0.5, z0: z - 0.3, z1: z + 0.3 }, 0.1) {
                let foot = objects::traffic_sign(&mut self.out.prims, self.rng, s, z, kerb);
                self.occupied.push(foot);
                self.out.counts.signs += 1;
            }
        }
    }

    /// Vehicles in the lanes, parked along the kerbs, and crossing.
    fn vehicles(&mut self) {
        let street = self.street;
        let busy: f32 = self.rng.random();
        let moving = (busy * busy * 11.0 * self.district.traffic) as usize + self.rng.random_range(0..=1);
        for _ in 0..moving {
            let lane = self.rng.random_range(0..street.lanes);
            let s = street.lane_centre(lane) + self.rng.random_range(-0.3..0.3);
            let z = 4.0 + self.rng.random::<f32>().powf(1.5) * 85.0;
            let towards = street.two_way && lane < street.lanes / 2;
            self.vehicle(Placement { s, z, y: 0.0, across: false, towards }, street.in_crossing(z, z + 15.0));
        }
        for (side, width) in [(-1.0f32, street.park[0]), (1.0, street.park[1])] {
            if !self.rng.random_bool(if width > 0.0 { 0.8 } else { 0.3 }) {
                continue;
            }
            let s = street.edge(side) - side * self.rng.random_range(1.05..1.3);
            let mut z = self.rng.random_range(-4.0..12.0);
            for _ in 0..self.rng.random_range(1..9) {
                let towards = self.rng.random_bool(0.3);
                if !street.in_crossing(z, z + 6.0) {
                    self.vehicle(Placement { s, z, y: 0.0, across: false, towards }, false);
                }
                z += self.rng.random_range(5.0..12.0);
            }
        }
        if let Some((c0, c1)) = street.ground.crossing {
            for _ in 0..pick(self.rng, &[2.0, 1.5, 1.0]) {
                let s = street.cam_s + self.rng.random_range(-25.0..25.0);
                let z = self.rng.random_range(c0 + 0.5..(c1 - 2.5).max(c0 + 1.0));
                self.vehicle(Placement { s, z, y: 0.0, across: true, towards: false }, true);
            }
        }
    }

    /// A car, truck or bus (only cars when `cars_only`), kept if its
    /// footprint is free.
    fn vehicle(&mut self, at: Placement, cars_only: bool) {
        let kind = if cars_only { 0 } else { pick(self.rng, &[85.0, 8.0, 7.0]) };
        let mut parts = Vec::new();
        let foot = match kind {
            0 => objects::car(&mut parts, self.rng, at, self.sky),
            1 => objects::truck(&mut parts, self.rng, at, self.sky),
            _ => objects::bus(&mut parts, self.rng, at, self.sky),
        };
        if !self.free(&foot, 0.8) {
            return;
        }
        match kind {
            0 => self.out.counts.cars += 1,
            1 => self.out.counts.trucks += 1,
            _ => self.out.counts.buses += 1,
        }
        self.occupied.push(foot);
        self.out.shadows.push(foot);
        self.out.prims.append(&mut parts);
    }

    /// Pedestrians on the sidewalks (some in groups) and on the zebra
    /// crossing, riders near the kerbs, bicycles parked on the sidewalk.
    fn people(&mut self) {
        let street = self.street;
        let kerb = street.ground.kerb;
        let crowd: f32 = self.rng.random();
        let walkers = (crowd * crowd * 14.0 * self.district.people) as usize + usize::from(self.rng.random_bool(0.4));
        for _ in 0..walkers {
            let side = self.random_side();
            let width = street.verge_width(side);
            let group = if self.rng.random_bool(0.3) { self.rng.random_range(2..4) } else { 1 };
            let s = street.edge(side) + side * self.rng.random_range(0.4..(width - 0.3).max(0.6));
            let z = 2.5 + self.rng.random::<f32>().powf(1.3) * 55.0;
            for g in 0..group {
                let at = Placement {
                    s: s + side * 0.6 * g as f32,
                    z: z + self.rng.random_range(-0.4..0.4),
                    y: kerb,
                    across: self.rng.random_bool(0.15),
                    towards: self.rng.random_bool(0.5),
                };
                self.human(at, Who::Person);
            }
        }
        if let Some((z0, z1)) = street.ground.crosswalk {
            if self.rng.random_bool(0.5) {
                let (l, r) = street.ground.road;
                for _ in 0..self.rng.random_range(1..5) {
                    let s = self.rng.random_range(l + 0.5..r - 0.5);
                    let z = self.rng.random_range(z0..z1);
                    let towards = self.rng.random_bool(0.5);
                    self.human(Placement { s, z, y: 0.0, across: true, towards }, Who::Person);
                }
            }
        }
        for _ in 0..pick(self.rng, &[5.0, 2.0, 1.0, 0.5]) {
            let side = self.random_side();
            let s = street.edge(side) - side * self.rng.random_range(0.6..1.4);
            let z = self.rng.random_range(4.0..50.0);
            let towards = self.rng.random_bool(0.25);
            self.human(Placement { s, z, y: 0.0, across: false, towards }, Who::Rider);
        }
        for _ in 0..pick(self.rng, &[5.0, 2.0, 1.0, 0.5]) {
            let side = self.random_side();
            let s = street.edge(side) + side * self.rng.random_range(0.5..1.5);
            let z = self.rng.random_range(3.0..40.0);
            let across = self.rng.random_bool(0.5);
            self.human(Placement { s, z, y: kerb, across, towards: false }, Who::Bicycle);
        }
    }

    /// A person, rider or bicycle, kept if its footprint is free.
    fn human(&mut self, at: Placement, who: Who) {
        let mut parts = Vec::new();
        let foot = match who {
            Who::Person => objects::person(&mut parts, self.rng, at),
            Who::Rider => objects::rider(&mut parts, self.rng, at),
            Who::Bicycle => objects::bicycle(&mut parts, self.rng, at),
        };
        if !self.free(&foot, 0.05) {
            return;
        }
        match who {
            Who::Person => self.out.counts.people += 1,
            Who::Rider => self.out.counts.riders += 1,
            Who::Bicycle => self.out.counts.bicycles += 1,
        }
        self.occupied.push(foot);
        self.out.prims.append(&mut parts);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::data::synthetic::street;

    fn population(seed: u64) -> (Street, Population) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let urban = rng.random();
        let street = street::sample(&mut rng, urban);
        let population = populate(&mut rng, &street, [0.5, 0.6, 0.8], &District::new(0, 0));
        (street, population)
    }

    #[test]
    fn vehicles_do_not_overlap_each_other() {
        for seed in 0..40 {
            let (_, p) = population(seed);
            for (i, a) in p.shadows.iter().enumerate() {
                for b in &p.shadows[i + 1..] {
                    assert!(!a.overlaps(b, 0.0), "seed {seed}: {a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn nothing_stands_where_the_camera_is() {
        for seed in 0..40 {
            let (street, p) = population(seed);
            for prim in &p.prims {
                let (lo, hi) = prim.shape.bounds();
                let around_camera =
                    lo[0] < street.cam_s + 0.9 && hi[0] > street.cam_s - 0.9 && lo[2] < 1.0 && hi[2] > -1.0;
                assert!(!(around_camera && lo[1] < 1.5), "seed {seed}: {lo:?} {hi:?}");
            }
        }
    }
}
