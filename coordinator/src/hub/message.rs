//! What the hub hands to the round loop's thread.

use bytes::Bytes;
use dmtl_core::train::Update;
use tokio::sync::oneshot;

use super::{HubError, PushHeader, PushVerdict};
use crate::scheduler::WorkerId;

/// What the round loop is sent.
pub enum EngineMsg {
    /// An update to validate and, if accepted, record for its round.
    Push {
        id: WorkerId,
        header: Box<PushHeader>,
        update: Update,
        /// The training state of an nccl-plane `State` push (checked by the round loop).
        state: Option<Bytes>,
        reply: oneshot::Sender<Result<PushVerdict, HubError>>,
    },
    /// Something changed (a worker joined, left, heartbeat): re-check the round.
    Wake,
    /// Stop after the current round with a checkpoint.
    Stop,
}
