//! The street's layout: lanes and parking strips, where the camera drives,
//! kerbs and the strips beside the road, a cross street and zebra crossing,
//! and the colours of the ground.

use rand::Rng;

use super::ground::{Ground, GroundLook, LaneLine, Zone, ZoneKind};
use super::sampling::pick;
use super::texture::{hsv_jitter, scale};

/// The sampled street: its ground and the lanes vehicles drive in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Street {
    pub ground: Ground,
    /// 0 for an open road or suburb, 1 for a dense city centre.
    pub urban: f32,
    /// Lateral position of the camera.
    pub cam_s: f32,
    pub lanes: usize,
    pub lane_w: f32,
    /// Left edge of the first lane (right of the left parking strip).
    pub first_lane: f32,
    /// Whether the left half of the lanes carries oncoming traffic.
    pub two_way: bool,
    /// Width of the parking strips on the left and right (0 if none).
    pub park: [f32; 2],
}

impl Street {
    /// The road edge on `side` (−1 left, +1 right).
    pub fn edge(&self, side: f32) -> f32 {
        if side < 0.0 {
            self.ground.road.0
        } else {
            self.ground.road.1
        }
    }

    /// The strips beyond the road edge on `side`.
    pub fn zones(&self, side: f32) -> &[Zone] {
        if side < 0.0 {
            &self.ground.left
        } else {
            &self.ground.right
        }
    }

    /// Total width of the strips on `side` (where buildings may start).
    pub fn verge_width(&self, side: f32) -> f32 {
        self.zones(side).iter().map(|z| z.width).sum()
    }

    /// Whether the depth range `z0..z1` overlaps the cross street.
    pub fn in_crossing(&self, z0: f32, z1: f32) -> bool {
        self.ground.crossing.is_some_and(|(c0, c1)| z0 < c1 && z1 > c0)
    }

    /// The centre of lane `lane`.
    pub fn lane_centre(&self, lane: usize) -> f32 {
        self.first_lane + (lane as f32 + 0.5) * self.lane_w
    }
}

fn strip(rng: &mut impl Rng, kind: ZoneKind, width: std::ops::Range<f32>) -> Zone {
    Zone { kind, width: rng.random_range(width) }
}

/// Samples a street; `urban` (0..1) makes sidewalks wider and grass rarer.
pub(crate) fn sample(rng: &mut impl Rng, urban: f32) -> Street {
    let lanes = [1usize, 2, 3, 4, 6][pick(rng, &[1.0, 3.5, 2.0, 2.5, 1.0])];
    let lane_w = rng.random_range(2.7..3.7);
    let mut park = [0.0f32; 2];
    for p in park.iter_mut() {
        if rng.random_bool(0.35) {
            *p = rng.random_range(2.0..2.6);
        }
    }
    let road_w = lanes as f32 * lane_w + park[0] + park[1];
    let road = (-road_w / 2.0, road_w / 2.0);
    let first_lane = road.0 + park[0];
    let two_way = lanes >= 2 && rng.random_bool(0.7);
    // Driving on the right: in a two-way street the camera is in the right half.
    let cam_lane = if two_way { rng.random_range(lanes / 2..lanes) } else { rng.random_range(0..lanes) };
    let cam_s = first_lane + (cam_lane as f32 + 0.5) * lane_w + rng.random_range(-0.4..0.4);
    let double_centre = rng.random_bool(0.4);
    let lines = (1..lanes)
        .map(|j| {
            let centre = two_way && j == lanes / 2;
            LaneLine {
                s: first_lane + j as f32 * lane_w,
                dashed: !centre || rng.random_bool(0.3),
                double: centre && double_centre,
            }
        })
        .collect();
    let kerb = if rng.random_bool(0.85) { rng.random_range(0.08..0.2) } else { 0.0 };
    let rural = 1.0 - urban as f64;
    let mut sides = [Vec::new(), Vec::new()];
    for zones in sides.iter_mut() {
        if rng.random_bool(0.15 + 0.3 * rural) {
            zones.push(strip(rng, ZoneKind::Terrain, 0.5..3.0));
        }
        if rng.random_bool(0.92) {
            zones.push(strip(rng, ZoneKind::Sidewalk, 1.5..3.0 + 3.0 * urban));
        }
        if rng.random_bool(0.1 + 0.6 * rural) {
            zones.push(strip(rng, ZoneKind::Terrain, 1.0..10.0));
        } else {
            zones.push(strip(rng, ZoneKind::Sidewalk, 0.2..2.0));
        }
    }
    let [left, right] = sides;
    let crossing = rng.random_bool(0.35).then(|| {
        let z0 = rng.random_range(10.0..55.0);
        (z0, z0 + rng.random_range(8.0..20.0))
    });
    let crosswalk = match crossing {
        Some((z0, _)) if rng.random_bool(0.7) => Some((z0 - rng.random_range(3.0..5.0), z0 - 0.5)),
        None if rng.random_bool(0.1) => {
            let z0 = rng.random_range(8.0..40.0);
            Some((z0, z0 + rng.random_range(2.5..4.5)))
        }
        _ => None,
    };
    let ground = Ground {
        road,
        kerb,
        left,
        right,
        crossing,
        crosswalk,
        lines,
        edge_lines: rng.random_bool(0.5),
        look: sample_look(rng),
    };
    Street { ground, urban, cam_s, lanes, lane_w, first_lane, two_way, park }
}

fn sample_look(rng: &mut impl Rng) -> GroundLook {
    let paving = match pick(rng, &[3.0, 1.5, 1.0]) {
        0 => hsv_jitter(rng, 40.0, 0.04, 0.6, [160.0, 0.04, 0.15]),
        1 => hsv_jitter(rng, 12.0, 0.35, 0.5, [12.0, 0.12, 0.12]),
        _ => hsv_jitter(rng, 38.0, 0.25, 0.65, [10.0, 0.1, 0.12]),
    };
    let asphalt_hue = if rng.random_bool(0.3) { 30.0 } else { 230.0 };
    let marking = if rng.random_bool(0.85) {
        hsv_jitter(rng, 50.0, 0.03, 0.9, [20.0, 0.03, 0.08])
    } else {
        hsv_jitter(rng, 48.0, 0.7, 0.85, [6.0, 0.15, 0.1])
    };
    let period = rng.random_range(6.0..15.0);
    GroundLook {
        asphalt: hsv_jitter(rng, asphalt_hue, 0.05, 0.36, [25.0, 0.05, 0.13]),
        asphalt_noise: rng.random_range(0.03..0.2),
        patches: rng.random_range(0.0..1.0),
        marking,
        paving,
        joint: scale(paving, rng.random_range(0.55..0.85)),
        tile: rng.random_range(0.2..0.8),
        grass: hsv_jitter(rng, 85.0, 0.5, 0.45, [25.0, 0.2, 0.15]),
        soil: hsv_jitter(rng, 30.0, 0.4, 0.35, [10.0, 0.15, 0.1]),
        kerb_stone: hsv_jitter(rng, 40.0, 0.04, 0.65, [40.0, 0.04, 0.15]),
        dash: (period, period * rng.random_range(0.3..0.6)),
        seed: rng.random(),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn the_camera_drives_in_a_lane_of_the_road() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let urban = rng.random();
            let street = sample(&mut rng, urban);
            let (l, r) = street.ground.road;
            assert!(street.cam_s > l + 0.5 && street.cam_s < r - 0.5, "{street:?}");
            let last = street.lane_centre(street.lanes - 1) + street.lane_w / 2.0;
            assert!((last - (r - street.park[1])).abs() < 1e-4);
            if street.two_way {
                assert!(street.cam_s >= street.lane_centre(street.lanes / 2) - street.lane_w / 2.0 - 0.4);
            }
        }
    }

    #[test]
    fn each_side_has_at_least_one_strip() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..100 {
            let street = sample(&mut rng, 0.5);
            assert!(!street.ground.left.is_empty() && !street.ground.right.is_empty());
            assert!(street.verge_width(-1.0) > 0.0 && street.verge_width(1.0) > 0.0);
        }
    }
}
