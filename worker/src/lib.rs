//! dmtl-worker: a segmentation, depth or both-label worker of distributed
//! training (DESIGN §2).
//!
//! - [`client`] — the worker's life over gRPC: register (retrying with
//!   backoff), heartbeats, wait for a round, pull snapshots, push the update,
//!   register again after a coordinator restart, leave at the end.
//! - `nccl` — a round of the `nccl` data plane on the async side (the step
//!   itself is the training thread's: `trainer/nccl.rs`).
//! - [`trainer`] — the training thread that owns the model and the shard's
//!   images and runs the foundation engine's step; never the async runtime.

pub mod client;
mod nccl;
pub mod trainer;

pub use client::{run, PhaseTimes, WorkerError, WorkerOptions, WorkerSummary, WorkerTask};
