//! Builders for the things in a street, each made of a few primitives:
//! vehicles ([`vehicles`]), people, riders and bicycles ([`people`]), and
//! street furniture: trees, poles, lights, signs, buildings, walls, fences
//! and hedges ([`furniture`]).
//!
//! Every builder takes the object's position in the road frame, draws its
//! own dimensions and colours from `rng`, appends its primitives and returns
//! its footprint on the ground.

mod frame;
mod furniture;
mod parts;
mod people;
mod vehicles;

pub(crate) use frame::{Placement, Rect};
pub(crate) use furniture::{barrier, building, facade, street_lamp, traffic_light, traffic_sign, tree, Barrier};
pub(crate) use people::{bicycle, person, rider};
pub(crate) use vehicles::{bus, car, car_paint, truck};
