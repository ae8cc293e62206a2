//! Training: the shared step, evaluation, and the single-process trainer.

pub mod eval;
pub mod step;
pub mod trainer;
pub mod wire;

pub use eval::evaluate;
pub use step::{apply, compute_update, merge, Batch, DistillParams, LossValues, StepError, Update};
pub use trainer::{train, Observer, Silent, StepReport, TrainError, TrainingState};
