//! Training: the shared step, evaluation, and the single-process trainer.

pub mod eval;
pub mod step;
pub mod trainer;
pub mod wire;

pub use eval::evaluate;
pub use step::{
    apply, apply_delta, compute_update, merge, weight_delta, Batch, DistillParams, LossValues, StepError, Update,
};
pub use trainer::{open_run, train, Observer, RunData, Silent, StepReport, TrainError, TrainingState};
