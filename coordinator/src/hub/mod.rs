//! The hub: what the RPC handlers and the round loop share. Domain types only
//! (the service adapters convert to and from `dmtl.v1`).
//!
//! Membership, heartbeats and waiting for rounds are answered here, under one
//! short-lived lock that is never held across an `.await`. Updates are handed
//! to the round loop's thread (see [`crate::engine`]), which validates and
//! merges them: no tensor work runs on the async runtime.
//!
//! - types: `worker.rs` (activity, registration, admission, what the hub
//!   knows of a worker), `round.rs` (a worker's share of a round, offers,
//!   pushes), `snapshot.rs`, `view.rs` (run state, status), `event.rs`
//!   (`Watch`), `message.rs` (to the round loop), `facts.rs` (the run's fixed
//!   facts), `error.rs` ([`HubError`]);
//! - the [`Hub`] in `state.rs` (the shared state, its lock and channels), its
//!   calls by what they answer: `membership.rs` (register, names, leave),
//!   `offers.rs` (heartbeats, round offers), `push.rs` (updates),
//!   `snapshot.rs` (snapshots by version), `view.rs` (status).

mod error;
mod event;
mod facts;
mod membership;
mod message;
mod offers;
mod push;
mod round;
mod snapshot;
mod state;
mod view;
mod worker;

#[cfg(test)]
pub(crate) mod testing;

pub use error::HubError;
pub use event::{EventKind, RunEvent};
pub use facts::RunFacts;
pub use message::EngineMsg;
pub use offers::MAX_WAIT;
pub use round::{NcclRound, OpenRound, PushHeader, PushVerdict, RoundOffer, UpdateKind, WorkerRound};
pub use snapshot::{Snapshot, SnapshotKind};
pub use state::{unix_ms, Hub, HubState};
pub use view::{RoundTiming, RunState, RunView, StatusView};
pub use worker::{Admission, Registration, WorkerActivity, WorkerInfo};
