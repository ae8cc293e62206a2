//! dmtl-coordinator: the coordinator of distributed training (DESIGN §2).
//!
//! - [`scheduler`] — pure: membership, disjoint shards, the round barrier.
//! - [`merger`] — the coordinator's model, optimizer and teacher; merges a
//!   round with the single-process trainer's own functions.
//! - [`engine`] — the round loop on its own thread (never on the runtime):
//!   snapshots, rounds, update validation, merge, evaluation, checkpoints.
//! - [`nccl_plane`] — the `nccl` data plane's rounds: group generations,
//!   state sync of new members, who pushes the training state.
//! - [`hub`] — what the RPC handlers and the round loop share (domain types).
//! - [`service`] — the gRPC adapters (`dmtl.v1.Coordinator`, `Monitor`),
//!   error mapping and the bearer-token check.
//! - [`server`] — [`Coordinator::start`]: prepare, serve (with health,
//!   reflection, TLS), stop.
//! - [`prometheus`] — text metrics over HTTP.

pub mod engine;
pub mod hub;
pub mod merger;
pub mod nccl_plane;
pub mod prometheus;
pub mod scheduler;
pub mod server;
pub mod service;

pub use server::{Coordinator, CoordinatorError, CoordinatorOptions, TlsFiles};
