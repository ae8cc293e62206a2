//! The round loop: one thread that owns the coordinator's model (the
//! [`Merger`](crate::merger::Merger)) and drives the rounds of a run. It
//! publishes snapshots, opens rounds in the scheduler, validates pushed
//! updates, merges each round with the trainer's own functions, evaluates,
//! checkpoints and finishes the run directory exactly as `dmtl train` does.
//! It never runs on the async runtime: the RPC handlers reach it through
//! [`EngineMsg`](crate::hub::EngineMsg)s.
//!
//! One round, in the order [`Engine::run`] plays it:
//!
//! - `plan` — the step's plan and the round's length (the run's schedule),
//!   the tasks taking part, each participant's share;
//! - `publish` — the weights (nccl plane: training state) and the teacher;
//! - `open` — wait for the workers, assign them (nccl plane: their group);
//! - `collect` — answer pushes until the barrier closes the round
//!   (`heartbeats`: workers lost meanwhile);
//! - `apply` — the ordered merge, or the nccl plane's count, and the draws;
//! - `catch_up` — nccl plane: rank 0's training state;
//! - `record` — the hub's timing, counters and event;
//! - `evaluate` — the evaluation and checkpoint that fall due;
//! - `finish` — the stopped run's checkpoint or the final report.

mod apply;
mod catch_up;
mod collect;
mod error;
mod evaluate;
mod finish;
mod heartbeats;
mod open;
mod plan;
mod publish;
mod record;
mod run;

pub use error::EngineError;
pub use plan::split_count;
pub use run::{Engine, EngineEnd};
