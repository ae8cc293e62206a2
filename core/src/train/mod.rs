//! Training: the shared step, evaluation, and the single-process trainer.

pub mod step;

pub use step::{apply, compute_update, merge, Batch, DistillParams, LossValues, StepError, Update};
