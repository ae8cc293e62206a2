//! dmtl-coordinator: the coordinator of distributed training (DESIGN §2).
//!
//! So far: [`merger`], the coordinator's model, optimizer and teacher, which
//! applies the merged updates of a round with the single-process trainer's own
//! functions; and [`scheduler`]: the pure logic that hands segmentation, depth
//! and both-label workers their disjoint shards and runs the round barrier
//! (membership, heartbeats, losses, stale updates). It does no I/O, holds no
//! tensors and knows nothing of tonic or tokio; the gRPC service, the merger
//! and the monitor will drive it with events carrying explicit timestamps.

pub mod merger;
pub mod scheduler;
