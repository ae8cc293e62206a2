//! The scheduler as one state machine: membership plus the open round.
//!
//! Between rounds → `begin_round` (when the plan is ready) → open → pushes →
//! `finish_round` (complete or timed out) or `abandon_round` (stalled) →
//! between rounds.

use std::collections::BTreeSet;

use super::{
    classify, round_status, Membership, RoundPlan, RoundStatus, SchedulerError, Task, TaskPools, UpdateVerdict,
    WorkerId,
};

/// The scheduler's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Participants each active task needs for a round to begin, and pushes
    /// it needs for a round to complete without its stragglers. At least 1.
    pub min_workers_per_task: usize,
    /// How long after its start (ms) a round may complete without its
    /// stragglers.
    pub round_deadline_ms: u64,
}

impl Default for SchedulerConfig {
    /// One worker per task; 60 s to the deadline.
    fn default() -> Self {
        SchedulerConfig { min_workers_per_task: 1, round_deadline_ms: 60_000 }
    }
}

/// A finished round: the updates to merge, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRound {
    /// The round number.
    pub round: u64,
    /// The participants whose update was accepted: exactly these are merged.
    pub merged: BTreeSet<WorkerId>,
    /// Live participants that had not pushed (the round timed out).
    pub stragglers: BTreeSet<WorkerId>,
    /// Participants lost or gone mid-round without pushing.
    pub dropped: BTreeSet<WorkerId>,
}

/// The open round: its plan and the participants whose update was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenRound {
    plan: RoundPlan,
    pushed: BTreeSet<WorkerId>,
}

/// Membership, shards and the round barrier, driven by timestamped events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    config: SchedulerConfig,
    pools: TaskPools,
    members: Membership,
    last_begun: Option<u64>,
    open: Option<OpenRound>,
}

impl Scheduler {
    /// A scheduler with no workers and no round begun.
    pub fn new(config: SchedulerConfig, pools: TaskPools) -> Result<Self, SchedulerError> {
        if config.min_workers_per_task == 0 {
            return Err(SchedulerError::ZeroMinWorkers);
        }
        Ok(Scheduler { config, pools, members: Membership::new(), last_begun: None, open: None })
    }

    /// Registers a worker of `task` at `now`. It gets a shard at the next
    /// round boundary, never in the open round. A task without a pool in this
    /// run is refused.
    pub fn register(&mut self, task: Task, now: u64) -> Result<WorkerId, SchedulerError> {
        if self.pools.get(task).is_none() {
            return Err(SchedulerError::NoPool(task));
        }
        Ok(self.members.register(task, now))
    }

    /// A worker's heartbeat at `now`; see [`Membership::heartbeat`].
    pub fn heartbeat(&mut self, id: WorkerId, now: u64) -> Result<(), SchedulerError> {
        self.members.heartbeat(id, now)
    }

    /// Declares lost the workers silent for more than `timeout_ms` at `now`
    /// and returns them. Lost participants of the open round are dropped from
    /// it; their images go to their task's live workers at the next boundary.
    pub fn expire(&mut self, now: u64, timeout_ms: u64) -> Vec<WorkerId> {
        self.members.expire(now, timeout_ms)
    }

    /// A worker leaves; like a loss, but announced.
    pub fn leave(&mut self, id: WorkerId) -> Result<(), SchedulerError> {
        self.members.leave(id)
    }

    /// The plan `begin_round` would make now, without beginning anything.
    pub fn plan(&self, round: u64, active: &BTreeSet<Task>, now: u64) -> Result<RoundPlan, SchedulerError> {
        let deadline = now.saturating_add(self.config.round_deadline_ms);
        RoundPlan::new(round, deadline, active, &self.pools, &self.members, self.config.min_workers_per_task)
    }

    /// Plans `round` for the `active` tasks at `now` (the round boundary).
    /// If the plan is ready, the round opens with the plan's participants
    /// and shards; if not, nothing changes and the caller asks again (same or
    /// later number) once workers have joined. Round numbers must increase
    /// and no round may be open.
    pub fn begin_round(&mut self, round: u64, active: &BTreeSet<Task>, now: u64) -> Result<RoundPlan, SchedulerError> {
        if let Some(open) = &self.open {
            return Err(SchedulerError::RoundOpen(open.plan.round));
        }
        if let Some(last) = self.last_begun.filter(|&last| round <= last) {
            return Err(SchedulerError::RoundNotAfter { round, last });
        }
        let plan = self.plan(round, active, now)?;
        if plan.is_ready() {
            self.last_begun = Some(round);
            self.open = Some(OpenRound { plan: plan.clone(), pushed: BTreeSet::new() });
        }
        Ok(plan)
    }

    /// The verdict on an update from `id` for `round`, without recording it.
    pub fn classify_update(&self, id: WorkerId, round: u64) -> UpdateVerdict {
        classify(&self.members, self.open.as_ref().map(|o| (&o.plan, &o.pushed)), id, round)
    }

    /// Records an update from `id` for `round` if it is accepted, and returns
    /// the verdict. Only an `Accept`ed update may be merged.
    pub fn push(&mut self, id: WorkerId, round: u64) -> UpdateVerdict {
        let verdict = self.classify_update(id, round);
        if let (UpdateVerdict::Accept, Some(open)) = (verdict, &mut self.open) {
            open.pushed.insert(id);
        }
        verdict
    }

    /// Where the open round stands at `now`; `None` between rounds.
    pub fn round_status(&self, now: u64) -> Option<RoundStatus> {
        self.open.as_ref().map(|o| round_status(&o.plan, &o.pushed, &self.members, now))
    }

    /// Closes the open round if it is over (complete or timed out) and
    /// returns the updates to merge. From then on, updates for it are stale.
    pub fn finish_round(&mut self, now: u64) -> Result<FinishedRound, SchedulerError> {
        let open = self.open.take().ok_or(SchedulerError::NoOpenRound)?;
        let status = round_status(&open.plan, &open.pushed, &self.members, now);
        if !status.is_over() {
            let round = open.plan.round;
            self.open = Some(open);
            return Err(SchedulerError::NotOver { round, status });
        }
        let (stragglers, dropped) = open
            .plan
            .participants()
            .map(|(id, _)| id)
            .filter(|id| !open.pushed.contains(id))
            .partition(|&id| self.members.is_live(id));
        Ok(FinishedRound { round: open.plan.round, merged: open.pushed, stragglers, dropped })
    }

    /// Closes the open round without merging anything (it stalled, or the
    /// run stops) and returns its number. Its number is not reused.
    pub fn abandon_round(&mut self) -> Result<u64, SchedulerError> {
        self.open.take().map(|o| o.plan.round).ok_or(SchedulerError::NoOpenRound)
    }

    /// The open round's plan.
    pub fn open_round(&self) -> Option<&RoundPlan> {
        self.open.as_ref().map(|o| &o.plan)
    }

    /// The participants whose update for the open round was accepted.
    pub fn pushed(&self) -> Option<&BTreeSet<WorkerId>> {
        self.open.as_ref().map(|o| &o.pushed)
    }

    /// The number of the last round begun.
    pub fn last_begun(&self) -> Option<u64> {
        self.last_begun
    }

    /// The workers.
    pub fn membership(&self) -> &Membership {
        &self.members
    }

    /// The pools.
    pub fn pools(&self) -> &TaskPools {
        &self.pools
    }

    /// The knobs.
    pub fn config(&self) -> SchedulerConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG_IMAGES: usize = 12;
    const DEPTH_IMAGES: usize = 9;

    fn scheduler(min: usize) -> Scheduler {
        let pools = TaskPools::new()
            .with(Task::Seg, (0..SEG_IMAGES).collect())
            .with(Task::Depth, (100..100 + DEPTH_IMAGES).collect());
        Scheduler::new(SchedulerConfig { min_workers_per_task: min, round_deadline_ms: 1_000 }, pools).unwrap()
    }

    fn both() -> BTreeSet<Task> {
        BTreeSet::from([Task::Seg, Task::Depth])
    }

    fn ids(list: &[WorkerId]) -> BTreeSet<WorkerId> {
        list.iter().copied().collect()
    }

    fn shard_images(plan: &RoundPlan, task: Task) -> Vec<usize> {
        let mut all: Vec<usize> = plan.tasks[&task].shards.values().flatten().copied().collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn each_pool_is_split_among_the_live_workers_of_its_own_task() {
        let mut s = scheduler(1);
        let seg = [s.register(Task::Seg, 0).unwrap(), s.register(Task::Seg, 0).unwrap()];
        let depth = s.register(Task::Depth, 0).unwrap();
        let plan = s.begin_round(1, &both(), 0).unwrap();
        assert!(plan.is_ready());
        assert_eq!(plan.tasks[&Task::Seg].shards.keys().copied().collect::<Vec<_>>(), seg);
        assert_eq!(plan.tasks[&Task::Depth].shards.keys().copied().collect::<Vec<_>>(), [depth]);
        assert_eq!(shard_images(&plan, Task::Seg), (0..SEG_IMAGES).collect::<Vec<_>>());
        assert_eq!(plan.shard(depth).unwrap(), (100..100 + DEPTH_IMAGES).collect::<Vec<_>>());
    }

    #[test]
    fn a_round_waits_until_every_active_task_has_its_minimum_of_workers() {
        let mut s = scheduler(2);
        s.register(Task::Seg, 0).unwrap();
        s.register(Task::Seg, 0).unwrap();
        s.register(Task::Depth, 0).unwrap();
        let plan = s.begin_round(1, &both(), 0).unwrap();
        assert!(!plan.is_ready());
        assert_eq!(plan.short(), BTreeSet::from([Task::Depth]));
        assert_eq!(s.open_round(), None, "a waiting plan opens nothing");
        assert!(s.begin_round(1, &BTreeSet::from([Task::Seg]), 0).unwrap().is_ready(), "seg alone has two");
        s.abandon_round().unwrap();
        s.register(Task::Depth, 5).unwrap();
        assert!(s.begin_round(2, &both(), 5).unwrap().is_ready());
    }

    #[test]
    fn a_worker_that_joins_mid_round_gets_a_shard_only_at_the_next_round() {
        let mut s = scheduler(1);
        let a = s.register(Task::Seg, 0).unwrap();
        s.begin_round(1, &BTreeSet::from([Task::Seg]), 0).unwrap();
        let b = s.register(Task::Seg, 10).unwrap();
        assert_eq!(s.open_round().unwrap().task_of(b), None);
        assert_eq!(s.push(b, 1), UpdateVerdict::NotParticipant);
        assert_eq!(s.push(a, 1), UpdateVerdict::Accept);
        assert_eq!(s.round_status(20), Some(RoundStatus::Complete), "the newcomer is not waited for");
        s.finish_round(20).unwrap();
        let next = s.begin_round(2, &BTreeSet::from([Task::Seg]), 20).unwrap();
        assert_eq!(next.shard(b).unwrap().len(), SEG_IMAGES / 2);
    }

    #[test]
    fn a_lost_workers_images_go_to_the_live_workers_of_its_task_at_the_next_round() {
        let mut s = scheduler(1);
        let seg =
            [s.register(Task::Seg, 0).unwrap(), s.register(Task::Seg, 0).unwrap(), s.register(Task::Seg, 0).unwrap()];
        let depth = s.register(Task::Depth, 0).unwrap();
        let plan = s.begin_round(1, &both(), 0).unwrap();
        let orphaned = plan.shard(seg[1]).unwrap().to_vec();
        for id in [seg[0], seg[2], depth] {
            s.heartbeat(id, 400).unwrap();
        }
        assert_eq!(s.expire(600, 300), [seg[1]]);
        assert_eq!(s.open_round().unwrap().shard(seg[1]).unwrap(), orphaned, "shards hold for the open round");
        for id in [seg[0], seg[2], depth] {
            assert!(s.push(id, 1).is_accepted());
        }
        let finished = s.finish_round(600).unwrap();
        assert_eq!(finished.dropped, ids(&[seg[1]]));
        let next = s.begin_round(2, &both(), 600).unwrap();
        assert_eq!(next.tasks[&Task::Seg].shards.keys().copied().collect::<Vec<_>>(), [seg[0], seg[2]]);
        assert_eq!(shard_images(&next, Task::Seg), (0..SEG_IMAGES).collect::<Vec<_>>());
        assert!(orphaned
            .iter()
            .all(|i| next.shard(seg[0]).unwrap().contains(i) || next.shard(seg[2]).unwrap().contains(i)));
        assert_eq!(next.shard(depth).unwrap().len(), DEPTH_IMAGES, "other tasks are untouched");
    }

    #[test]
    fn a_round_completes_when_every_live_participant_has_pushed() {
        let mut s = scheduler(1);
        let a = s.register(Task::Seg, 0).unwrap();
        let b = s.register(Task::Depth, 0).unwrap();
        s.begin_round(1, &both(), 0).unwrap();
        s.push(a, 1);
        assert_eq!(s.round_status(10), Some(RoundStatus::Waiting { pending: ids(&[b]) }));
        assert!(matches!(s.finish_round(10), Err(SchedulerError::NotOver { round: 1, .. })));
        s.push(b, 1);
        let finished = s.finish_round(10).unwrap();
        assert_eq!(finished, FinishedRound { round: 1, merged: ids(&[a, b]), stragglers: ids(&[]), dropped: ids(&[]) });
        assert_eq!(s.round_status(10), None);
    }

    #[test]
    fn after_the_deadline_a_round_completes_without_its_stragglers() {
        let mut s = scheduler(1);
        let seg = [s.register(Task::Seg, 0).unwrap(), s.register(Task::Seg, 0).unwrap()];
        let depth = s.register(Task::Depth, 0).unwrap();
        s.begin_round(1, &both(), 100).unwrap();
        s.push(seg[0], 1);
        s.push(depth, 1);
        assert!(matches!(s.round_status(1_099), Some(RoundStatus::Waiting { .. })));
        assert_eq!(s.round_status(1_100), Some(RoundStatus::TimedOut { stragglers: ids(&[seg[1]]) }));
        let finished = s.finish_round(1_100).unwrap();
        assert_eq!(finished.stragglers, ids(&[seg[1]]));
        assert_eq!(s.push(seg[1], 1), UpdateVerdict::Stale, "a straggler's late update is never merged");
        assert!(s.begin_round(2, &both(), 1_100).unwrap().shard(seg[1]).is_some(), "stragglers stay members");
    }

    #[test]
    fn a_stalled_round_is_abandoned_and_retried_under_a_new_number() {
        let mut s = scheduler(1);
        let a = s.register(Task::Seg, 0).unwrap();
        let b = s.register(Task::Depth, 0).unwrap();
        s.begin_round(1, &both(), 0).unwrap();
        s.push(a, 1);
        s.leave(b).unwrap();
        assert_eq!(s.round_status(5), Some(RoundStatus::Stalled { short: BTreeSet::from([Task::Depth]) }));
        assert!(s.finish_round(5).is_err());
        assert_eq!(s.abandon_round(), Ok(1));
        assert_eq!(s.begin_round(1, &both(), 5), Err(SchedulerError::RoundNotAfter { round: 1, last: 1 }));
        assert_eq!(s.push(a, 1), UpdateVerdict::Stale, "nothing of an abandoned round is merged");
        let c = s.register(Task::Depth, 6).unwrap();
        assert!(s.begin_round(2, &both(), 6).unwrap().shard(c).is_some());
    }

    #[test]
    fn an_update_is_accepted_once_per_worker_and_round() {
        let mut s = scheduler(1);
        let a = s.register(Task::Seg, 0).unwrap();
        let d = s.register(Task::Depth, 0).unwrap();
        s.begin_round(1, &both(), 0).unwrap();
        assert_eq!(s.classify_update(a, 1), UpdateVerdict::Accept);
        assert_eq!(s.push(a, 1), UpdateVerdict::Accept);
        assert_eq!(s.push(a, 1), UpdateVerdict::Duplicate);
        assert_eq!(s.push(a, 2), UpdateVerdict::Stale);
        assert_eq!(s.push(WorkerId(77), 1), UpdateVerdict::UnknownWorker);
        assert_eq!(s.pushed(), Some(&ids(&[a])));
        s.push(d, 1);
        s.finish_round(0).unwrap();
        s.begin_round(2, &both(), 0).unwrap();
        assert_eq!(s.push(a, 1), UpdateVerdict::Stale);
        assert_eq!(s.push(a, 2), UpdateVerdict::Accept);
    }

    #[test]
    fn a_lost_worker_must_register_again_and_rejoins_at_the_next_round() {
        let mut s = scheduler(1);
        let a = s.register(Task::Seg, 0).unwrap();
        let d = s.register(Task::Depth, 0).unwrap();
        s.begin_round(1, &both(), 0).unwrap();
        s.heartbeat(d, 500).unwrap();
        s.expire(600, 300);
        assert_eq!(s.push(a, 1), UpdateVerdict::Dropped);
        assert_eq!(s.heartbeat(a, 600), Err(SchedulerError::WorkerLost(a)));
        let again = s.register(Task::Seg, 600).unwrap();
        assert_ne!(again, a);
        assert_eq!(s.push(again, 1), UpdateVerdict::NotParticipant);
        assert!(matches!(s.round_status(600), Some(RoundStatus::Stalled { .. })), "no seg participant is left");
        s.abandon_round().unwrap();
        assert_eq!(s.begin_round(2, &both(), 600).unwrap().shard(again).unwrap().len(), SEG_IMAGES);
    }

    #[test]
    fn inactive_tasks_sit_the_round_out() {
        let mut s = scheduler(1);
        let a = s.register(Task::Seg, 0).unwrap();
        let d = s.register(Task::Depth, 0).unwrap();
        let plan = s.begin_round(1, &BTreeSet::from([Task::Depth]), 0).unwrap();
        assert_eq!(plan.participants().collect::<Vec<_>>(), [(d, Task::Depth)]);
        assert_eq!(s.push(a, 1), UpdateVerdict::NotParticipant);
    }

    #[test]
    fn rounds_begin_one_at_a_time_in_increasing_order() {
        let mut s = scheduler(1);
        s.register(Task::Seg, 0).unwrap();
        let seg = BTreeSet::from([Task::Seg]);
        s.begin_round(3, &seg, 0).unwrap();
        assert_eq!(s.begin_round(4, &seg, 0), Err(SchedulerError::RoundOpen(3)));
        s.abandon_round().unwrap();
        assert_eq!(s.begin_round(2, &seg, 0), Err(SchedulerError::RoundNotAfter { round: 2, last: 3 }));
        assert_eq!(s.last_begun(), Some(3));
        assert_eq!(s.abandon_round(), Err(SchedulerError::NoOpenRound));
        assert!(matches!(s.finish_round(0), Err(SchedulerError::NoOpenRound)));
    }

    #[test]
    fn workers_and_rounds_of_tasks_the_run_does_not_train_are_refused() {
        let mut s = scheduler(1);
        assert_eq!(s.register(Task::Both, 0), Err(SchedulerError::NoPool(Task::Both)));
        assert_eq!(s.begin_round(1, &BTreeSet::from([Task::Both]), 0), Err(SchedulerError::NoPool(Task::Both)));
        assert_eq!(s.begin_round(1, &BTreeSet::new(), 0), Err(SchedulerError::NoActiveTask));
        let zero = SchedulerConfig { min_workers_per_task: 0, ..SchedulerConfig::default() };
        assert_eq!(Scheduler::new(zero, TaskPools::new()), Err(SchedulerError::ZeroMinWorkers));
    }
}
