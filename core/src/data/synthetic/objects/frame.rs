//! Where an object stands: its footprint on the ground ([`Rect`]), its
//! placement in the road frame ([`Placement`]) and the map from its own
//! frame to the road's ([`Local`]).

use crate::data::synthetic::geometry::Shape;

/// A rectangle on the ground, `s0..s1` × `z0..z1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub s0: f32,
    pub s1: f32,
    pub z0: f32,
    pub z1: f32,
}

impl Rect {
    /// Whether the two rectangles, each grown by `margin`, overlap.
    pub fn overlaps(&self, other: &Rect, margin: f32) -> bool {
        self.s0 - margin < other.s1
            && other.s0 - margin < self.s1
            && self.z0 - margin < other.z1
            && other.z0 - margin < self.z1
    }

    /// Whether the point lies inside the rectangle grown by `margin`.
    pub fn contains(&self, s: f32, z: f32, margin: f32) -> bool {
        s > self.s0 - margin && s < self.s1 + margin && z > self.z0 - margin && z < self.z1 + margin
    }
}

/// Where a vehicle or person stands and which way it is turned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placement {
    /// Lateral centre.
    pub s: f32,
    /// Depth of the end nearest the camera.
    pub z: f32,
    /// Height of the ground it stands on.
    pub y: f32,
    /// Oriented across the road (crossing) instead of along it.
    pub across: bool,
    /// Seen from the front (coming towards the camera) rather than the back.
    pub towards: bool,
}

/// Maps an object's local frame — `l` lateral across its own width, centred;
/// `t` along its length from its nearest end — to a road-frame box.
pub(super) struct Local {
    pub at: Placement,
    pub length: f32,
    pub width: f32,
}

impl Local {
    pub fn shape(&self, l: (f32, f32), y: (f32, f32), t: (f32, f32)) -> Shape {
        let y = (self.at.y + y.0, self.at.y + y.1);
        if self.at.across {
            let s = (self.at.s - self.length / 2.0 + t.0, self.at.s - self.length / 2.0 + t.1);
            let z = (self.at.z + self.width / 2.0 + l.0, self.at.z + self.width / 2.0 + l.1);
            Shape::cuboid(s, y, z)
        } else {
            Shape::cuboid((self.at.s + l.0, self.at.s + l.1), y, (self.at.z + t.0, self.at.z + t.1))
        }
    }

    pub fn ellipsoid(&self, l: f32, y: f32, t: f32, r: [f32; 3]) -> Shape {
        let y = self.at.y + y;
        if self.at.across {
            let s = self.at.s - self.length / 2.0 + t;
            Shape::Ellipsoid { c: [s, y, self.at.z + self.width / 2.0 + l], r: [r[2], r[1], r[0]] }
        } else {
            Shape::Ellipsoid { c: [self.at.s + l, y, self.at.z + t], r }
        }
    }

    pub fn footprint(&self) -> Rect {
        if self.at.across {
            Rect {
                s0: self.at.s - self.length / 2.0,
                s1: self.at.s + self.length / 2.0,
                z0: self.at.z,
                z1: self.at.z + self.width,
            }
        } else {
            Rect {
                s0: self.at.s - self.width / 2.0,
                s1: self.at.s + self.width / 2.0,
                z0: self.at.z,
                z1: self.at.z + self.length,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rects_overlap_only_when_they_share_area() {
        let a = Rect { s0: 0.0, s1: 1.0, z0: 0.0, z1: 1.0 };
        let b = Rect { s0: 1.5, s1: 2.0, z0: 0.0, z1: 1.0 };
        assert!(!a.overlaps(&b, 0.0));
        assert!(a.overlaps(&b, 0.6));
    }
}
