//! The worker's life over gRPC, one concept a file:
//!
//! - `run` — [`run`]: register, the round loop, register again when the
//!   coordinator forgets the worker, leave at the end.
//! - `register` — registration and what the assignment sets up (the nccl
//!   backend, the training thread).
//! - `grpc` / `nccl` — a round of each data plane (the nccl step itself is the
//!   training thread's: `trainer/nccl.rs`).
//! - `heartbeat` — the heartbeat task and the state it shares with the session.
//! - `retry` — transient errors, backoff, rejoining.
//! - `convert` — `dmtl.v1` messages ↔ the worker's types.
//! - `options`, `summary` — what the worker is asked to do, and what it did.

mod convert;
mod grpc;
mod heartbeat;
mod nccl;
mod options;
mod register;
mod retry;
mod run;
mod summary;

pub use options::{WorkerOptions, WorkerTask};
pub use run::run;
pub use summary::{PhaseTimes, WorkerSummary};
