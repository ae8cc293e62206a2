//! The errors of training a run (single-process or on the coordinator).

use std::path::PathBuf;

use super::step::StepError;
use crate::checkpoint::CheckpointError;
use crate::data::DataError;
use crate::model::ModelError;
use crate::run_dir::RunDirError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: {source}")]
    Model {
        path: PathBuf,
        #[source]
        source: ModelError,
    },
    #[error("{0}")]
    Step(StepError),
    #[error("config key `train.device`: {0}")]
    Device(String),
    #[error("training diverged at step {step}: {source}; nothing from this step was saved")]
    Diverged {
        step: usize,
        #[source]
        source: StepError,
    },
    #[error("{root}: {images} training image(s) cannot be split into two non-empty halves")]
    EmptyHalf { root: String, images: usize },
    #[error(
        "{path}: the split of the data under {root} differs from the run's manifest (were images added or removed?)"
    )]
    SplitChanged { path: PathBuf, root: String },
    #[error("the data loader stopped early, before step {step}")]
    LoaderStopped { step: usize },
    #[error("{path}: cannot resume: {message}")]
    Resume { path: PathBuf, message: String },
    #[error("stopped at step {step} of {total}; checkpoint {checkpoint} (continue with --resume)")]
    Stopped { step: usize, total: usize, checkpoint: PathBuf },
}

impl TrainError {
    /// A step error of step `step` (1-based): a diverged loss is named as such.
    pub fn at_step(step: usize, source: StepError) -> TrainError {
        match source {
            StepError::Diverged { .. } => TrainError::Diverged { step, source },
            other => TrainError::Step(other),
        }
    }
}

impl From<StepError> for TrainError {
    fn from(e: StepError) -> Self {
        TrainError::Step(e)
    }
}
