//! The image pool of each task: the images its workers' shards are cut from.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use dmtl_core::data::split::DisjointSplit;
use dmtl_core::method::StepPlan;

use super::{SchedulerError, Task};

/// Task → the images (indices into the split's sorted id list) its workers
/// share. Pools are fixed for a run; which of them train in a round is the
/// `active` input of each round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPools {
    pools: BTreeMap<Task, Vec<usize>>,
}

impl TaskPools {
    /// No pools.
    pub fn new() -> Self {
        TaskPools::default()
    }

    /// Adds (or replaces) `task`'s pool. The images are kept sorted and
    /// without duplicates, so a pool is a set.
    pub fn with(mut self, task: Task, mut images: Vec<usize>) -> Self {
        images.sort_unstable();
        images.dedup();
        self.pools.insert(task, images);
        self
    }

    /// The pools of the tasks of `plans` (each part's task and its pool in
    /// `split`). Give the plans of one step of every phase, e.g.
    /// `schedule.phase_plans()`, so that the
    /// depth phase of `alternate` is seen too. Two parts of one task on
    /// different pools are an error.
    pub fn from_plans<'a>(
        split: &DisjointSplit,
        plans: impl IntoIterator<Item = &'a StepPlan>,
    ) -> Result<Self, SchedulerError> {
        let mut pools = BTreeMap::new();
        for part in plans.into_iter().flat_map(|p| &p.parts) {
            let task = Task::of_part(part);
            let images = split.pool(part.pool);
            match pools.entry(task) {
                Entry::Vacant(e) => {
                    e.insert(images);
                }
                Entry::Occupied(e) if *e.get() == images => {}
                Entry::Occupied(_) => return Err(SchedulerError::ConflictingPools(task)),
            }
        }
        Ok(pools.into_iter().fold(TaskPools::new(), |acc, (task, images)| acc.with(task, images)))
    }

    /// The pool of `task`, sorted, if the run has one.
    pub fn get(&self, task: Task) -> Option<&[usize]> {
        self.pools.get(&task).map(Vec::as_slice)
    }

    /// The tasks that have a pool.
    pub fn tasks(&self) -> impl Iterator<Item = Task> + '_ {
        self.pools.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmtl_core::config::{MethodKind, TeacherKind};
    use dmtl_core::method::{Pool, Schedule};

    fn split() -> DisjointSplit {
        let ids: Vec<String> = (0..11).map(|i| format!("city_{i:06}_000019")).collect();
        DisjointSplit::new(&ids, 3)
    }

    fn pools_of(kind: MethodKind) -> TaskPools {
        let s = Schedule { kind, switch_every: 5, teacher: TeacherKind::Phase, batch_size: 4 };
        TaskPools::from_plans(&split(), [&s.plan(0), &s.plan(5)]).unwrap()
    }

    #[test]
    fn each_method_gets_the_pools_of_its_labels() {
        let split = split();
        let full = pools_of(MethodKind::Full);
        assert_eq!(full.tasks().collect::<Vec<_>>(), [Task::Both]);
        assert_eq!(full.get(Task::Both).unwrap(), split.pool(Pool::All));
        assert_eq!(pools_of(MethodKind::Half).get(Task::Both).unwrap(), split.seg);
        for kind in [MethodKind::Alternate, MethodKind::Distill, MethodKind::Masked, MethodKind::MaskedDistill] {
            let p = pools_of(kind);
            assert_eq!(p.tasks().collect::<Vec<_>>(), [Task::Seg, Task::Depth], "{kind:?}");
            assert_eq!(p.get(Task::Seg).unwrap(), split.seg);
            assert_eq!(p.get(Task::Depth).unwrap(), split.depth);
        }
    }

    #[test]
    fn a_pool_is_a_sorted_set_of_images() {
        let p = TaskPools::new().with(Task::Seg, vec![5, 1, 5, 3]);
        assert_eq!(p.get(Task::Seg).unwrap(), [1, 3, 5]);
        assert_eq!(p.get(Task::Depth), None);
    }
}
