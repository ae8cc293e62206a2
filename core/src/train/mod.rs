//! Training: the shared step (`step.rs`), the training state and what
//! happens after a merge (`state.rs`), what a run starts from (`run.rs`),
//! evaluation, the single-process trainer, and the wire format of updates.

pub mod error;
pub mod eval;
pub mod run;
pub mod state;
pub mod state_bytes;
pub mod step;
pub mod trainer;
pub mod wire;

pub use crate::data::batch::Batch;
pub use crate::losses::{LossSums, LossValues};
pub use crate::method::DistillParams;
pub use error::TrainError;
pub use eval::evaluate;
pub use run::{open_run, RunData};
pub use state::{MergeMode, TrainingState};
pub use state_bytes::StateError;
pub use step::{apply, apply_delta, check_finite, compute_update, merge, weight_delta, StepError, Update};
pub use trainer::{train, Observer, Silent, StepReport};
