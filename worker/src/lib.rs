//! dmtl-worker: a segmentation, depth or both-label worker of distributed
//! training (DESIGN §2).
//!
//! - `session` — the worker's life over gRPC ([`run`]): register (retrying
//!   with backoff), heartbeats, wait for a round, pull snapshots, push the
//!   update (or run an nccl round), register again after a coordinator
//!   restart, leave at the end.
//! - [`trainer`] — the training thread that owns the model and the shard's
//!   images and runs the foundation engine's step; never the async runtime.
//! - [`error`] — [`WorkerError`], what ends a worker.
//!
//! The connection itself (channel, bearer token, client) is
//! `dmtl_proto::connect`'s.

pub mod error;
mod session;
pub mod trainer;

pub use error::WorkerError;
pub use session::{run, PhaseTimes, WorkerOptions, WorkerSummary, WorkerTask};

/// `dmtl_proto::connect` under its former name, for the callers (the
/// coordinator's tests and examples) that still import it from here.
pub use dmtl_proto::connect as client;
