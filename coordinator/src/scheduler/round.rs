//! The plan of a round: at a round boundary, for each active task, its live
//! workers and their shards, and whether there are enough of them to run.

use std::collections::{BTreeMap, BTreeSet};

use super::{assign, Membership, SchedulerError, Task, TaskPools, WorkerId};

/// One active task group's part of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPlan {
    /// The task.
    pub task: Task,
    /// The live workers of the task at the round boundary, in id order.
    pub live: Vec<WorkerId>,
    /// Participant → its shard (sorted image indices). Every image of the
    /// task's pool is in exactly one shard, and shard sizes differ by at most
    /// one ([`assign`]). A live worker left without an image (more workers
    /// than images) is not a participant and sits the round out.
    pub shards: BTreeMap<WorkerId, Vec<usize>>,
    /// Whether the group has at least `min_workers_per_task` participants.
    pub ready: bool,
}

/// The plan of one round, computed at its boundary. Participants and shards
/// are fixed for the round: a worker that joins or is lost later changes
/// only the next round's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundPlan {
    /// The round number (never reused: a retried round gets a new number).
    pub round: u64,
    /// From this time on (ms), the round may complete without stragglers.
    pub deadline: u64,
    /// `min_workers_per_task` when the plan was made.
    pub min_workers: usize,
    /// The active tasks' groups; inactive tasks' workers sit the round out.
    pub tasks: BTreeMap<Task, TaskPlan>,
}

impl RoundPlan {
    /// The plan of `round` for the `active` tasks, from the live workers in
    /// `members` and the images in `pools`. Pure.
    pub fn new(
        round: u64,
        deadline: u64,
        active: &BTreeSet<Task>,
        pools: &TaskPools,
        members: &Membership,
        min_workers: usize,
    ) -> Result<Self, SchedulerError> {
        if active.is_empty() {
            return Err(SchedulerError::NoActiveTask);
        }
        let mut tasks = BTreeMap::new();
        for &task in active {
            let images = pools.get(task).ok_or(SchedulerError::NoPool(task))?;
            let live = members.live(task);
            let mut shards = assign(images, &live);
            shards.retain(|_, shard| !shard.is_empty());
            let ready = shards.len() >= min_workers;
            tasks.insert(task, TaskPlan { task, live, shards, ready });
        }
        Ok(RoundPlan { round, deadline, min_workers, tasks })
    }

    /// Whether every active group has enough participants; if not, the round
    /// waits for workers to join.
    pub fn is_ready(&self) -> bool {
        self.tasks.values().all(|t| t.ready)
    }

    /// The active tasks short of workers.
    pub fn short(&self) -> BTreeSet<Task> {
        self.tasks.values().filter(|t| !t.ready).map(|t| t.task).collect()
    }

    /// Every participant with its task, in task then id order.
    pub fn participants(&self) -> impl Iterator<Item = (WorkerId, Task)> + '_ {
        self.tasks.values().flat_map(|t| t.shards.keys().map(move |&id| (id, t.task)))
    }

    /// The task of a participant, or `None` for a worker not in the round.
    pub fn task_of(&self, id: WorkerId) -> Option<Task> {
        self.tasks.values().find(|t| t.shards.contains_key(&id)).map(|t| t.task)
    }

    /// A participant's shard.
    pub fn shard(&self, id: WorkerId) -> Option<&[usize]> {
        self.tasks.values().find_map(|t| t.shards.get(&id)).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(list: &[Task]) -> BTreeSet<Task> {
        list.iter().copied().collect()
    }

    fn pools() -> TaskPools {
        TaskPools::new().with(Task::Seg, vec![0, 2, 4, 6, 8]).with(Task::Depth, vec![1, 3, 5])
    }

    #[test]
    fn only_the_active_tasks_are_planned() {
        let mut m = Membership::new();
        let s = m.register(Task::Seg, 0);
        let d = m.register(Task::Depth, 0);
        let plan = RoundPlan::new(1, 10, &active(&[Task::Seg]), &pools(), &m, 1).unwrap();
        assert_eq!(plan.tasks.keys().copied().collect::<Vec<_>>(), [Task::Seg]);
        assert_eq!(plan.shard(s).unwrap(), [0, 2, 4, 6, 8]);
        assert_eq!(plan.task_of(d), None, "a depth worker sits out a seg-only round");
    }

    #[test]
    fn workers_without_an_image_sit_the_round_out() {
        let mut m = Membership::new();
        let ids: Vec<_> = (0..5).map(|_| m.register(Task::Depth, 0)).collect();
        let plan = RoundPlan::new(1, 10, &active(&[Task::Depth]), &pools(), &m, 1).unwrap();
        let group = &plan.tasks[&Task::Depth];
        assert_eq!(group.live, ids);
        assert_eq!(group.shards.keys().copied().collect::<Vec<_>>(), ids[..3]);
        assert_eq!(plan.participants().count(), 3);
    }

    #[test]
    fn a_group_below_the_minimum_is_not_ready() {
        let mut m = Membership::new();
        m.register(Task::Seg, 0);
        m.register(Task::Seg, 0);
        m.register(Task::Depth, 0);
        let plan = RoundPlan::new(1, 10, &active(&[Task::Seg, Task::Depth]), &pools(), &m, 2).unwrap();
        assert!(!plan.is_ready());
        assert_eq!(plan.short(), active(&[Task::Depth]));
        assert!(plan.tasks[&Task::Seg].ready);
    }

    #[test]
    fn a_round_needs_an_active_task_with_a_pool() {
        let m = Membership::new();
        assert!(matches!(RoundPlan::new(1, 0, &active(&[]), &pools(), &m, 1), Err(SchedulerError::NoActiveTask)));
        assert!(matches!(
            RoundPlan::new(1, 0, &active(&[Task::Both]), &pools(), &m, 1),
            Err(SchedulerError::NoPool(Task::Both))
        ));
    }
}
