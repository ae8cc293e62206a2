//! The pure scheduler (DESIGN §2): who trains on which images in each round,
//! and when a round is over.
//!
//! No I/O, no tensors, no async, no clock: every event carries its time in ms,
//! and the same events give the same plans and verdicts. The properties it
//! keeps and the event model are in `README.md` beside this file.
//!
//! - [`WorkerId`], [`Task`]: who trains on what (seg, depth, both);
//! - [`TaskPools`]: the images of each task;
//! - [`assign`]: one pool's images split among its workers;
//! - [`Membership`]: registration, heartbeats, expiry, leaving;
//! - [`RoundPlan`]: the participants and shards of a round;
//! - [`round_status`]: the barrier rule;
//! - [`classify`]: which updates may be merged;
//! - [`Scheduler`]: all of it as one state machine.

mod error;
mod machine;
mod membership;
mod pools;
mod round;
mod shard;
mod status;
mod task;
mod update;

#[cfg(test)]
mod properties;

pub use error::SchedulerError;
pub use machine::{FinishedRound, Scheduler, SchedulerConfig};
pub use membership::{Liveness, Membership, Worker};
pub use pools::TaskPools;
pub use round::{RoundPlan, TaskPlan};
pub use shard::assign;
pub use status::{round_status, RoundStatus};
pub use task::{Task, WorkerId};
pub use update::{classify, UpdateVerdict};
