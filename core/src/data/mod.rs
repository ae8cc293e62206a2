//! Data: the Cityscapes layout, the synthetic generator that writes it, the
//! disjoint split, and the batching pipeline.

pub mod augment;
pub mod batch;
pub mod cityscapes;
pub mod dataset;
pub mod decode;
pub mod error;
pub mod labels;
pub mod loader;
pub mod resize;
pub mod sample;
pub mod sampler;
pub mod split;
pub mod stats;
pub mod synthetic;

pub use error::DataError;
pub use labels::{LabelSet, IGNORE};
pub use sample::{DepthTarget, Sample, Split};
