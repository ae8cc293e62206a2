//! Generations of the all-reduce group of a run (pure: no I/O, no clock).
//!
//! The coordinator keeps one [`Groups`]: at every round boundary it asks for
//! the group of the round's live workers. While membership is unchanged the
//! group (and its NCCL unique id) stays; when a worker is lost, leaves or
//! joins, a new *generation* starts with a fresh unique id and ranks numbered
//! densely over the live workers. A worker keeps a [`Communicator`]: when the
//! round names a generation other than the one it holds, it drops (NCCL:
//! aborts) its communicator and joins the new one — the surviving workers
//! never restart.

use std::collections::BTreeMap;

/// The bytes of an `ncclUniqueId` (the bootstrap address of a group).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UniqueId(pub [u8; 128]);

impl std::fmt::Debug for UniqueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UniqueId({:02x?}…)", &self.0[..8])
    }
}

/// One generation of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    /// Increases by one with every rebuild, from 1.
    pub generation: u64,
    pub unique_id: UniqueId,
    /// Worker id → rank, ranks `0 .. members` in worker id order.
    pub ranks: BTreeMap<String, u32>,
}

impl GroupPlan {
    pub fn world_size(&self) -> u32 {
        self.ranks.len() as u32
    }

    pub fn rank_of(&self, worker: &str) -> Option<u32> {
        self.ranks.get(worker).copied()
    }

    /// What one member needs to join.
    pub fn membership(&self, worker: &str) -> Option<Membership> {
        Some(Membership {
            generation: self.generation,
            unique_id: self.unique_id,
            rank: self.rank_of(worker)?,
            world_size: self.world_size(),
        })
    }
}

/// A worker's place in one generation (what `RoundInfo.nccl` carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub generation: u64,
    pub unique_id: UniqueId,
    pub rank: u32,
    pub world_size: u32,
}

/// The coordinator's record of the group's generations.
#[derive(Debug, Default)]
pub struct Groups {
    current: Option<GroupPlan>,
    /// The last generation handed out.
    generations: u64,
}

impl Groups {
    /// The group of a round whose live workers are `members`: the current
    /// generation when it has exactly these members, else a new generation
    /// with an id from `new_id` (NCCL: `ncclGetUniqueId`, which makes the
    /// calling process the bootstrap root of the id; it must stay alive).
    pub fn for_round<E>(
        &mut self,
        members: &[&str],
        new_id: impl FnOnce() -> Result<UniqueId, E>,
    ) -> Result<&GroupPlan, E> {
        let mut sorted: Vec<&str> = members.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let same = self.current.as_ref().is_some_and(|g| g.ranks.keys().map(String::as_str).eq(sorted.iter().copied()));
        if !same {
            let id = new_id()?;
            self.generations += 1;
            let generation = self.generations;
            let ranks = sorted.iter().enumerate().map(|(r, w)| (w.to_string(), r as u32)).collect();
            self.current = Some(GroupPlan { generation, unique_id: id, ranks });
        }
        Ok(self.current.as_ref().expect("set above"))
    }

    /// Ends the current generation: the next round starts a new one even
    /// with the same members (a collective failed, or a member may hold
    /// another state).
    pub fn retire(&mut self) {
        self.current = None;
    }

    pub fn current(&self) -> Option<&GroupPlan> {
        self.current.as_ref()
    }
}

/// A worker's communicator of the current generation (`C`: an NCCL
/// communicator, or the in-process backend in tests).
#[derive(Debug)]
pub struct Communicator<C> {
    held: Option<(Membership, C)>,
}

impl<C> Default for Communicator<C> {
    fn default() -> Self {
        Communicator { held: None }
    }
}

impl<C> Communicator<C> {
    /// The communicator for `membership`: the one held when it is of the same
    /// generation, else the old one is dropped first (NCCL: `ncclCommAbort`,
    /// which also releases a collective stuck on a dead peer) and `join`
    /// builds the new one.
    pub fn ensure<E>(
        &mut self,
        membership: Membership,
        join: impl FnOnce(&Membership) -> Result<C, E>,
    ) -> Result<&C, E> {
        if self.held.as_ref().is_some_and(|(m, _)| *m != membership) {
            self.held = None;
        }
        if self.held.is_none() {
            let c = join(&membership)?;
            self.held = Some((membership, c));
        }
        Ok(&self.held.as_ref().expect("set above").1)
    }

    /// Drops (aborts) the communicator, e.g. after a collective failed or timed out.
    pub fn abort(&mut self) {
        self.held = None;
    }

    pub fn generation(&self) -> Option<u64> {
        self.held.as_ref().map(|(m, _)| m.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> impl FnMut() -> Result<UniqueId, ()> {
        let mut n = 0u8;
        move || {
            n += 1;
            Ok(UniqueId([n; 128]))
        }
    }

    #[test]
    fn the_group_stays_while_membership_is_unchanged() {
        let mut groups = Groups::default();
        let mut id = ids();
        let a = groups.for_round(&["seg-0", "depth-0"], &mut id).unwrap().clone();
        let b = groups.for_round(&["depth-0", "seg-0"], &mut id).unwrap().clone();
        assert_eq!(a, b);
        assert_eq!(a.generation, 1);
        assert_eq!(a.rank_of("depth-0"), Some(0));
        assert_eq!(a.rank_of("seg-0"), Some(1));
    }

    #[test]
    fn a_lost_worker_starts_a_new_generation_with_a_new_id_and_dense_ranks() {
        let mut groups = Groups::default();
        let mut id = ids();
        let a = groups.for_round(&["depth-0", "seg-0", "seg-1"], &mut id).unwrap().clone();
        let b = groups.for_round(&["depth-0", "seg-1"], &mut id).unwrap().clone();
        assert_eq!(b.generation, a.generation + 1);
        assert_ne!(b.unique_id, a.unique_id);
        assert_eq!(b.world_size(), 2);
        assert_eq!(b.rank_of("seg-1"), Some(1));
        assert_eq!(b.rank_of("seg-0"), None);
        let c = groups.for_round(&["depth-0", "seg-1", "seg-2"], &mut id).unwrap().clone();
        assert_eq!(c.generation, 3);
        assert_eq!(c.ranks.values().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    }

    #[test]
    fn a_failed_id_keeps_the_old_generation() {
        let mut groups = Groups::default();
        groups.for_round(&["a", "b"], || Ok::<_, ()>(UniqueId([1; 128]))).unwrap();
        assert!(groups.for_round(&["a"], || Err("no nccl")).is_err());
        assert_eq!(groups.current().unwrap().generation, 1);
    }

    #[test]
    fn a_retired_generation_is_replaced_even_with_the_same_members() {
        let mut groups = Groups::default();
        let mut id = ids();
        let a = groups.for_round(&["a", "b"], &mut id).unwrap().clone();
        groups.retire();
        let b = groups.for_round(&["a", "b"], &mut id).unwrap().clone();
        assert_eq!(b.generation, a.generation + 1);
        assert_ne!(b.unique_id, a.unique_id);
    }

    #[test]
    fn a_worker_rejoins_only_when_the_generation_changes() {
        let mut comm: Communicator<u64> = Communicator::default();
        let m1 = Membership { generation: 1, unique_id: UniqueId([1; 128]), rank: 0, world_size: 2 };
        let mut joins = 0;
        for _ in 0..3 {
            comm.ensure(m1, |m| {
                joins += 1;
                Ok::<_, ()>(m.generation)
            })
            .unwrap();
        }
        assert_eq!(joins, 1);
        let m2 = Membership { generation: 2, unique_id: UniqueId([2; 128]), rank: 1, world_size: 3 };
        assert_eq!(*comm.ensure(m2, |m| Ok::<_, ()>(m.generation * 10)).unwrap(), 20);
        comm.abort();
        assert_eq!(comm.generation(), None);
    }
}
