//! The coordinator's side of the `nccl` data plane: it merges nothing, it
//! names each round's all-reduce group and says how its members reach one
//! state (collective/README.md).
//!
//! - A group *generation* spans the rounds with the same live participants
//!   ([`dmtl_collective::Groups`]); a worker lost, left or joined, a failed
//!   collective, or a round that merged without some member starts a new one
//!   (new unique id, dense ranks) at the next round boundary.
//! - In the first round of a generation every member copies the state of a
//!   *source*: the lowest-ranked member that finished the last merged round
//!   (all of them hold the same weights, optimizer state and teacher). When
//!   no member holds it — the run's first round, `--resume`, or every holder
//!   lost — they all load the coordinator's copy (the last state pulled from
//!   rank 0, or the checkpoint's); if that copy is older than the run, the
//!   run's counters roll back to it first.
//! - Rank 0 pushes its training state instead of a receipt in the rounds
//!   after which the coordinator evaluates or checkpoints.

use std::collections::{BTreeMap, BTreeSet};

use dmtl_collective::{Backend, CollectiveError, Groups};
use dmtl_core::checkpoint::TrainState;

use crate::hub::{NcclRound, UpdateKind, WorkerRound};
use crate::scheduler::WorkerId;

/// What opening a round found.
#[derive(Debug, PartialEq, Eq)]
pub enum GroupOutcome {
    /// The assignments carry the group: open the round.
    Ready,
    /// No member holds the run's state and the coordinator's copy is older:
    /// roll the counters back to it, then plan again.
    RollBack,
}

/// Why a round's nccl group could not be put into its assignments.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The backend gave no unique id for a new generation.
    #[error("a unique id for the nccl group: {0}")]
    UniqueId(#[source] CollectiveError),
    /// An assigned worker has no rank in the group (it has no name).
    #[error("worker {0} is not in the nccl group")]
    NotMember(WorkerId),
}

/// The nccl plane's state on the coordinator.
pub struct NcclPlane {
    backend: Backend,
    groups: Groups,
    /// The workers that finished the last merged round (they hold the run's state).
    in_sync: BTreeSet<WorkerId>,
    /// The generation whose members all hold the run's state (no sync needed).
    synced_generation: Option<u64>,
    /// The counters of the step the coordinator's own model is at.
    synced: TrainState,
    /// A state push went missing: ask rank 0 again in the next round.
    pub pending_state: bool,
}

impl NcclPlane {
    pub fn new(backend: Backend, synced: TrainState) -> NcclPlane {
        NcclPlane {
            backend,
            groups: Groups::default(),
            in_sync: BTreeSet::new(),
            synced_generation: None,
            synced,
            pending_state: false,
        }
    }

    /// The counters of the coordinator's own training state.
    pub fn synced(&self) -> &TrainState {
        &self.synced
    }

    /// Records that the coordinator's model is now at `state`'s step.
    pub fn set_synced(&mut self, state: TrainState) {
        self.synced = state;
    }

    /// The current generation, if any.
    pub fn generation(&self) -> Option<u64> {
        self.groups.current().map(|g| g.generation)
    }

    /// Puts the round's group into every assignment: the generation of these
    /// participants, how they reach one state, and who pushes the training
    /// state (`want_state`: rank 0). `state_current`: the coordinator's copy
    /// is at the run's step.
    pub fn assign(
        &mut self,
        names: &BTreeMap<WorkerId, String>,
        assignments: &mut BTreeMap<WorkerId, WorkerRound>,
        want_state: bool,
        state_current: bool,
    ) -> Result<GroupOutcome, GroupError> {
        let members: Vec<&str> = assignments.keys().filter_map(|id| names.get(id).map(String::as_str)).collect();
        let backend = self.backend;
        let plan = self.groups.for_round(&members, || backend.new_unique_id()).map_err(GroupError::UniqueId)?.clone();
        let fresh = self.synced_generation != Some(plan.generation);
        let source = if fresh {
            assignments
                .keys()
                .filter(|id| self.in_sync.contains(id))
                .filter_map(|id| plan.rank_of(names.get(id)?))
                .min()
        } else {
            None
        };
        let load_state = fresh && source.is_none();
        if load_state && !state_current {
            return Ok(GroupOutcome::RollBack);
        }
        for (id, round) in assignments.iter_mut() {
            let membership = names.get(id).and_then(|n| plan.membership(n)).ok_or(GroupError::NotMember(*id))?;
            round.update_kind =
                if want_state && membership.rank == 0 { UpdateKind::State } else { UpdateKind::Receipt };
            round.nccl = Some(Box::new(NcclRound { membership, source_rank: source, load_state }));
        }
        if fresh {
            tracing::info!(
                generation = plan.generation,
                members = plan.world_size(),
                source = ?source,
                load_state,
                "nccl group generation"
            );
        }
        Ok(GroupOutcome::Ready)
    }

    /// A round completed: `merged` finished it (and hold the new state) out
    /// of `participants`. With any member missing the generation ends.
    pub fn finished(&mut self, merged: &BTreeSet<WorkerId>, participants: usize) {
        self.in_sync = merged.clone();
        if merged.len() == participants {
            self.synced_generation = self.generation();
        } else {
            self.retire();
        }
    }

    /// The round's collective failed (or the round was abandoned): the
    /// members keep the state they had, the next round starts a new generation.
    pub fn retire(&mut self) {
        self.groups.retire();
        self.synced_generation = None;
    }
}
