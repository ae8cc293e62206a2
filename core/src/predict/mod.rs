//! Looking at predictions: export in the Cityscapes formats (`dmtl predict`),
//! per-image panels, and the qualitative grid that compares methods.
//!
//! Predictions run at the model's resolution (the checkpoint's `data.height`
//! × `data.width`) and are resized back to the resolution of each image's
//! label file before they are written: class maps by nearest neighbour,
//! depth bilinearly (disparity also scaled by the width ratio). See
//! [`export`] for the file formats and layout.

pub mod export;
pub mod font;
pub mod palette;
pub mod panel;
pub mod qualitative;

use std::path::PathBuf;

use tch::{Device, Kind};

use crate::data::batch::build_batch;
use crate::data::{DataError, Sample};
use crate::model::Model;

pub use export::{predict_split, OutputPaths, PredictOptions, PredictReport};
pub use qualitative::{load_qualitative_samples, qualitative_grid, qualitative_indices, QUALITATIVE_IMAGES};

/// Errors of prediction export and figures; each names the file or the mismatch.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{path}: cannot write: {message}")]
    Write { path: PathBuf, message: String },
    #[error("{0}")]
    Mismatch(String),
}

/// The model's prediction of one sample at the sample's resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplePrediction {
    /// Arg-max class per pixel (train id or category), `[height, width]`.
    pub classes: Vec<u8>,
    /// The depth head's output per pixel, in the model's depth target
    /// (disparity at the sample's resolution, or metres), `[height, width]`.
    pub depth: Vec<f32>,
}

/// Runs `model` (eval mode, no gradients) on `samples` in batches of
/// `batch_size`, as `dmtl eval` does. The samples must all have one size.
pub fn forward_samples(model: &Model, samples: &[Sample], batch_size: usize) -> Vec<SamplePrediction> {
    let mut out = Vec::with_capacity(samples.len());
    tch::no_grad(|| {
        for chunk in samples.chunks(batch_size.max(1)) {
            let refs: Vec<&Sample> = chunk.iter().collect();
            let batch = build_batch(&refs, false, false).to_device(model.device());
            let outputs = model.forward_t(&batch.images, false, true, true);
            let classes = outputs.seg.expect("seg head ran").argmax(1, false).to_kind(Kind::Uint8);
            let depth = outputs.depth.expect("depth head ran").to_kind(Kind::Float);
            let classes = classes.to_device(Device::Cpu).flatten(0, -1);
            let depth = depth.to_device(Device::Cpu).flatten(0, -1);
            let classes = Vec::<u8>::try_from(&classes).expect("a 1-d uint8 tensor");
            let depth = Vec::<f32>::try_from(&depth).expect("a 1-d float tensor");
            let hw = chunk.first().map_or(0, |s| s.height * s.width);
            for i in 0..chunk.len() {
                out.push(SamplePrediction {
                    classes: classes[i * hw..(i + 1) * hw].to_vec(),
                    depth: depth[i * hw..(i + 1) * hw].to_vec(),
                });
            }
        }
    });
    out
}

/// Checks that `samples` are non-empty, of one size, and that the size is a
/// multiple of the model's stride.
fn check_samples(model: &Model, samples: &[Sample]) -> Result<(), PredictError> {
    let first = samples.first().ok_or_else(|| PredictError::Mismatch("no images to predict".into()))?;
    if let Some(other) = samples.iter().find(|s| (s.height, s.width) != (first.height, first.width)) {
        return Err(PredictError::Mismatch(format!(
            "image {} is {}x{}, image {} is {}x{}: all images must have one size",
            first.id, first.width, first.height, other.id, other.width, other.height
        )));
    }
    let stride = 1usize << model.config.blocks.len();
    if !first.height.is_multiple_of(stride) || !first.width.is_multiple_of(stride) {
        return Err(PredictError::Mismatch(format!(
            "images are {}x{}, the model needs multiples of its stride {stride}",
            first.width, first.height
        )));
    }
    Ok(())
}
