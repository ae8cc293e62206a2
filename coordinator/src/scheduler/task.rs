//! Who trains on what: worker ids and the task a worker trains, which fixes the
//! pool of images it may draw from.

use std::collections::BTreeSet;
use std::fmt;

use dmtl_core::method::{PartPlan, Pool, Schedule, StepPlan};

/// A worker's id, handed out by registration. Ids increase and are never
/// reused: a worker that comes back after being lost registers again and gets
/// a new id, so nothing its old incarnation sends can be mistaken for new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub u64);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The labels a worker trains on. A worker draws images only from its task's
/// pool: a `Seg` worker from D_seg, a `Depth` worker from D_depth, a `Both`
/// worker from a pool whose images carry both labels (`full`: every image,
/// `half`: D_seg).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    /// Segmentation labels only (D_seg).
    Seg,
    /// Depth labels only (D_depth).
    Depth,
    /// Both labels (the `full` and `half` methods).
    Both,
}

impl Task {
    /// Every task, in order.
    pub const ALL: [Task; 3] = [Task::Seg, Task::Depth, Task::Both];

    /// The lowercase name (`seg`, `depth`, `both`).
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Seg => "seg",
            Task::Depth => "depth",
            Task::Both => "both",
        }
    }

    /// The task of the workers that compute a batch part: a part that uses
    /// both labels, or draws from every image, is `Both`; otherwise the task
    /// of its pool.
    pub fn of_part(part: &PartPlan) -> Task {
        if part.losses.seg && part.losses.depth {
            return Task::Both;
        }
        match part.pool {
            Pool::Seg => Task::Seg,
            Pool::Depth => Task::Depth,
            Pool::All => Task::Both,
        }
    }

    /// The pool of the task's images (a `Both` worker's: every image), named
    /// in a round where the plan gives the task nothing to draw.
    pub fn idle_pool(self) -> Pool {
        match self {
            Task::Seg => Pool::Seg,
            Task::Depth => Pool::Depth,
            Task::Both => Pool::All,
        }
    }

    /// The tasks active in a step: the input of
    /// [`Scheduler::begin_round`](super::Scheduler::begin_round), so that
    /// the scheduler itself knows no method.
    pub fn active_in(plan: &StepPlan) -> BTreeSet<Task> {
        plan.parts.iter().map(Task::of_part).collect()
    }

    /// Every task a method trains in some phase: the tasks a run needs
    /// workers for.
    pub fn trained_by(schedule: &Schedule) -> BTreeSet<Task> {
        schedule.phase_plans().iter().flat_map(Task::active_in).collect()
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmtl_core::config::{MethodKind, TeacherKind};
    use dmtl_core::method::Schedule;

    fn schedule(kind: MethodKind) -> Schedule {
        Schedule { kind, switch_every: 10, teacher: TeacherKind::Phase, batch_size: 8 }
    }

    fn tasks(list: &[Task]) -> BTreeSet<Task> {
        list.iter().copied().collect()
    }

    #[test]
    fn full_and_half_are_trained_by_both_label_workers() {
        for kind in [MethodKind::Full, MethodKind::Half] {
            assert_eq!(Task::active_in(&schedule(kind).plan(3)), tasks(&[Task::Both]), "{kind:?}");
        }
    }

    #[test]
    fn alternating_methods_activate_one_single_task_group_per_phase() {
        for kind in [MethodKind::Alternate, MethodKind::Distill] {
            let s = schedule(kind);
            assert_eq!(Task::active_in(&s.plan(3)), tasks(&[Task::Seg]));
            assert_eq!(Task::active_in(&s.plan(13)), tasks(&[Task::Depth]), "distillation keeps the task");
        }
    }

    #[test]
    fn masked_methods_activate_both_single_task_groups_every_step() {
        for kind in [MethodKind::Masked, MethodKind::MaskedDistill] {
            assert_eq!(Task::active_in(&schedule(kind).plan(13)), tasks(&[Task::Seg, Task::Depth]));
        }
    }

    #[test]
    fn worker_ids_and_tasks_print_plainly() {
        assert_eq!(WorkerId(7).to_string(), "7");
        assert_eq!(Task::ALL.map(|t| t.to_string()), ["seg", "depth", "both"]);
    }
}
