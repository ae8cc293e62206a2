//! Which pushed updates may be merged: at most one per participant of the open
//! round, and nothing else.

use std::collections::BTreeSet;

use super::{Membership, RoundPlan, WorkerId};

/// The verdict on an update pushed by a worker for a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateVerdict {
    /// The first update of a live participant for the open round: merge it.
    Accept,
    /// For a round that is not the open one (finished, abandoned, or never
    /// begun), or pushed while no round is open.
    Stale,
    /// From a worker that never registered.
    UnknownWorker,
    /// From a known worker that is not a participant of the open round (it
    /// joined after the round began, its task is inactive, or it had no image).
    NotParticipant,
    /// A participant's second update for the round: the first one stands.
    Duplicate,
    /// From a participant that was lost or left mid-round and was dropped
    /// from it.
    Dropped,
}

impl UpdateVerdict {
    /// Whether the update is merged.
    pub fn is_accepted(self) -> bool {
        self == UpdateVerdict::Accept
    }
}

/// The verdict on an update from `id` for `round`, given the open round's plan
/// and the participants that have already pushed (`None` when no round is
/// open). Checked in this order: unknown worker, stale round, not a
/// participant, duplicate, dropped.
pub fn classify(
    members: &Membership,
    open: Option<(&RoundPlan, &BTreeSet<WorkerId>)>,
    id: WorkerId,
    round: u64,
) -> UpdateVerdict {
    if members.get(id).is_none() {
        return UpdateVerdict::UnknownWorker;
    }
    let Some((plan, pushed)) = open.filter(|(plan, _)| plan.round == round) else {
        return UpdateVerdict::Stale;
    };
    if plan.task_of(id).is_none() {
        UpdateVerdict::NotParticipant
    } else if pushed.contains(&id) {
        UpdateVerdict::Duplicate
    } else if !members.is_live(id) {
        UpdateVerdict::Dropped
    } else {
        UpdateVerdict::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{Task, TaskPools};

    #[test]
    fn each_kind_of_update_gets_its_verdict() {
        let mut m = Membership::new();
        let a = m.register(Task::Seg, 0);
        let b = m.register(Task::Seg, 0);
        let pools = TaskPools::new().with(Task::Seg, (0..8).collect());
        let plan = RoundPlan::new(4, 100, &BTreeSet::from([Task::Seg]), &pools, &m, 1).unwrap();
        let late = m.register(Task::Seg, 1);
        m.leave(b).unwrap();
        let pushed = BTreeSet::from([a]);
        let open = Some((&plan, &pushed));
        assert_eq!(classify(&m, open, WorkerId(99), 4), UpdateVerdict::UnknownWorker);
        assert_eq!(classify(&m, open, a, 3), UpdateVerdict::Stale);
        assert_eq!(classify(&m, open, a, 5), UpdateVerdict::Stale);
        assert_eq!(classify(&m, None, a, 4), UpdateVerdict::Stale);
        assert_eq!(classify(&m, open, late, 4), UpdateVerdict::NotParticipant);
        assert_eq!(classify(&m, open, a, 4), UpdateVerdict::Duplicate);
        assert_eq!(classify(&m, open, b, 4), UpdateVerdict::Dropped);
        let nobody = BTreeSet::new();
        assert!(classify(&m, Some((&plan, &nobody)), a, 4).is_accepted());
    }
}
