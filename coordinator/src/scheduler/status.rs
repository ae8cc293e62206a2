//! When a round is over: the barrier rule, as a pure function of the plan, the
//! pushes so far, who is alive, and the time.

use std::collections::BTreeSet;

use super::{Membership, RoundPlan, Task, WorkerId};

/// Where an open round stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundStatus {
    /// Live participants have yet to push, and the round cannot complete
    /// without them: before the deadline, or after it while some active task
    /// has fewer than `min_workers` pushes.
    Waiting {
        /// The live participants that have not pushed.
        pending: BTreeSet<WorkerId>,
    },
    /// Every live participant has pushed (participants lost mid-round are
    /// dropped, not waited for), and every active task has at least
    /// `min_workers` pushes.
    Complete,
    /// The deadline has passed and every active task has at least
    /// `min_workers` pushes: the round completes without its stragglers.
    TimedOut {
        /// The live participants that have not pushed; their late updates
        /// will be stale.
        stragglers: BTreeSet<WorkerId>,
    },
    /// Some active task can no longer reach `min_workers` pushes: too many of
    /// its participants were lost. The round must be abandoned and retried
    /// under a new number with a new plan.
    Stalled {
        /// The tasks that cannot reach the minimum.
        short: BTreeSet<Task>,
    },
}

impl RoundStatus {
    /// Whether the round can be finished and its pushes merged.
    pub fn is_over(&self) -> bool {
        matches!(self, RoundStatus::Complete | RoundStatus::TimedOut { .. })
    }
}

/// The status of `plan`'s round given the participants that have `pushed`,
/// who is alive in `members`, and `now` (ms). A pushed update counts even if
/// its worker was lost afterwards.
pub fn round_status(plan: &RoundPlan, pushed: &BTreeSet<WorkerId>, members: &Membership, now: u64) -> RoundStatus {
    let mut pending = BTreeSet::new();
    let mut short = BTreeSet::new();
    let mut below_min = false;
    for group in plan.tasks.values() {
        let done = group.shards.keys().filter(|id| pushed.contains(id)).count();
        let waiting: Vec<WorkerId> =
            group.shards.keys().copied().filter(|id| !pushed.contains(id) && members.is_live(*id)).collect();
        if done + waiting.len() < plan.min_workers {
            short.insert(group.task);
        }
        below_min |= done < plan.min_workers;
        pending.extend(waiting);
    }
    if !short.is_empty() {
        RoundStatus::Stalled { short }
    } else if pending.is_empty() {
        RoundStatus::Complete
    } else if now >= plan.deadline && !below_min {
        RoundStatus::TimedOut { stragglers: pending }
    } else {
        RoundStatus::Waiting { pending }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::TaskPools;

    /// Two seg and two depth participants, minimum `min`, deadline 100.
    fn setup(min: usize) -> (Membership, RoundPlan, [WorkerId; 4]) {
        let mut m = Membership::new();
        let ids = [
            m.register(Task::Seg, 0),
            m.register(Task::Seg, 0),
            m.register(Task::Depth, 0),
            m.register(Task::Depth, 0),
        ];
        let pools = TaskPools::new().with(Task::Seg, (0..10).collect()).with(Task::Depth, (10..20).collect());
        let active = BTreeSet::from([Task::Seg, Task::Depth]);
        let plan = RoundPlan::new(1, 100, &active, &pools, &m, min).unwrap();
        (m, plan, ids)
    }

    fn set(ids: &[WorkerId]) -> BTreeSet<WorkerId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_round_completes_when_every_participant_has_pushed() {
        let (m, plan, [a, b, c, d]) = setup(1);
        assert_eq!(round_status(&plan, &set(&[a, b, c]), &m, 5), RoundStatus::Waiting { pending: set(&[d]) });
        assert_eq!(round_status(&plan, &set(&[a, b, c, d]), &m, 5), RoundStatus::Complete);
    }

    #[test]
    fn a_participant_lost_mid_round_is_not_waited_for() {
        let (mut m, plan, [a, b, c, d]) = setup(1);
        for id in [a, b, c] {
            m.heartbeat(id, 45).unwrap();
        }
        m.expire(50, 10);
        assert!(!m.is_live(d) && m.is_live(c));
        assert_eq!(round_status(&plan, &set(&[a, b, c]), &m, 60), RoundStatus::Complete);
    }

    #[test]
    fn after_the_deadline_the_round_completes_without_stragglers_once_each_task_has_its_minimum() {
        let (m, plan, [a, b, c, d]) = setup(1);
        assert_eq!(round_status(&plan, &set(&[a, c]), &m, 99), RoundStatus::Waiting { pending: set(&[b, d]) });
        assert_eq!(round_status(&plan, &set(&[a, c]), &m, 100), RoundStatus::TimedOut { stragglers: set(&[b, d]) });
        assert_eq!(
            round_status(&plan, &set(&[a, b]), &m, 1000),
            RoundStatus::Waiting { pending: set(&[c, d]) },
            "no depth push yet: the round waits past its deadline"
        );
    }

    #[test]
    fn a_round_that_can_no_longer_reach_the_minimum_is_stalled() {
        let (mut m, plan, [a, b, c, d]) = setup(2);
        for id in [a, b, c] {
            m.heartbeat(id, 45).unwrap();
        }
        m.expire(50, 10);
        assert_eq!(
            round_status(&plan, &set(&[a]), &m, 60),
            RoundStatus::Stalled { short: BTreeSet::from([Task::Depth]) }
        );
        assert!(!m.is_live(d));
    }

    #[test]
    fn a_push_counts_even_if_its_worker_is_lost_afterwards() {
        let (mut m, plan, [a, b, c, d]) = setup(2);
        m.expire(50, 10);
        assert_eq!(round_status(&plan, &set(&[a, b, c, d]), &m, 60), RoundStatus::Complete);
        assert!(RoundStatus::Complete.is_over() && !RoundStatus::Waiting { pending: set(&[]) }.is_over());
    }
}
