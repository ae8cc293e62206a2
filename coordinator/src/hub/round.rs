//! Rounds as the hub serves them: a worker's share, the offer, the push.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dmtl_core::method::{Losses, Pool};
use dmtl_core::train::LossValues;

use crate::scheduler::WorkerId;

/// How an update changes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    Gradients,
    WeightDelta,
    /// nccl plane: the step was all-reduced and applied by every member.
    Receipt,
    /// nccl plane: a receipt carrying the training state after the step.
    State,
    /// nccl plane: the round's collective failed; the worker's model is unchanged.
    Failed,
}

impl UpdateKind {
    /// The kinds of the nccl plane, which carry no tensors to merge.
    pub fn is_nccl(self) -> bool {
        matches!(self, UpdateKind::Receipt | UpdateKind::State | UpdateKind::Failed)
    }
}

/// A worker's place in the all-reduce group of a round (nccl plane).
#[derive(Debug, Clone)]
pub struct NcclRound {
    pub membership: dmtl_collective::group::Membership,
    /// Copy the training state of this rank before the step.
    pub source_rank: Option<u32>,
    /// Load the coordinator's training state (the weights snapshot) before the step.
    pub load_state: bool,
}

/// A worker's share of one round.
#[derive(Debug, Clone)]
pub struct WorkerRound {
    pub round: u64,
    pub weights_version: u64,
    /// 0 when the part needs no teacher.
    pub teacher_version: u64,
    pub method: String,
    pub phase: u64,
    pub first_step: u64,
    pub steps: u32,
    pub pool: Pool,
    /// Images per step for this worker.
    pub count: u32,
    pub losses: Losses,
    pub first_draw: u64,
    pub update_kind: UpdateKind,
    pub shard: Arc<Vec<usize>>,
    /// The round's all-reduce group (nccl plane only).
    pub nccl: Option<Box<NcclRound>>,
}

/// The open round as the hub serves it.
#[derive(Debug, Clone)]
pub struct OpenRound {
    pub round: u64,
    pub assignments: BTreeMap<WorkerId, WorkerRound>,
}

/// The answer to a worker waiting for a round.
#[derive(Debug, Clone)]
pub enum RoundOffer {
    /// Run this round; `shards` is set when the worker's shard changed.
    Run { round: WorkerRound, shards: Option<(u64, Arc<Vec<usize>>)> },
    /// Nothing yet: ask again after this long.
    Retry { last_round: u64, after: Duration },
    /// The run is over.
    Finished,
}

/// The header of a pushed update.
#[derive(Debug, Clone)]
pub struct PushHeader {
    pub worker: String,
    pub round: u64,
    pub weights_version: u64,
    pub samples: u64,
    pub kind: UpdateKind,
    /// The worker's training losses (what a receipt of the nccl plane reports).
    pub losses: LossValues,
}

/// The verdict on a well-formed update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushVerdict {
    Accepted,
    /// Not merged, for a reason that is a normal race (late, duplicate, dropped).
    Refused(String),
}
