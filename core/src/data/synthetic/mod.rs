//! A procedural street-scene generator that writes the Cityscapes layout.
//!
//! Each image is a street seen from a car: a flat road with lanes, kerbs,
//! sidewalks and grass, buildings with windows, walls, fences and hedges,
//! poles, traffic lights and signs, trees, vehicles, pedestrians and riders,
//! under a sky with clouds and sun (with cast shadows). One geometry, cast
//! through a z-buffer, gives the colour, the label and the disparity of
//! every pixel, so the two tasks' labels agree. Layout, distances, colours,
//! textures, lighting and object counts are drawn from continuous
//! distributions per image, seeded by `(seed, split, index)` only. On top,
//! every image belongs to a `district` drawn from a long-tailed catalogue
//! (`P(k) ∝ 1/k` over 100 000): its palette and surface patterns per label,
//! camera height and pitch, traffic, crowds, building heights, haze and light
//! colour, so a larger training set sees more of the tail.
//!
//! The pieces: `scene` samples a description (`district`, `camera`, `street`,
//! `populate` with the builders in `objects` and the tally in `counts`,
//! `atmosphere`, `sensor`; weighted choices from `sampling`); `render` casts
//! it (`raster` over `geometry` and `ground`, coloured by `material` and
//! `texture`, lit with `shadow`); `write` stores it; `generate` writes a
//! whole dataset as `spec` asks. Imports run from composer to part only.
//!
//! Files: `leftImg8bit` (8-bit RGB), `gtFine` `labelIds` (8-bit Cityscapes
//! ids), `disparity` (16-bit, `round(d·256) + 1`, 0 = invalid) and `camera`
//! JSON (`depth = baseline · fx / d`), with Cityscapes' names
//! (`<city>_<seq>_000019_…`, cities `synth_a`…`synth_e` for train and
//! `synth_v` for val), and finally `<out>/.complete` holding the spec.

mod atmosphere;
mod camera;
mod counts;
mod district;
mod generate;
mod geometry;
mod ground;
mod material;
mod objects;
mod populate;
mod raster;
mod render;
mod sampling;
mod scene;
mod sensor;
mod shadow;
mod spec;
mod street;
mod texture;
mod write;

pub use generate::generate;
pub use render::{render_scene, Scene};
pub use spec::{GenerateSummary, SyntheticSpec, COMPLETE_MARKER};
