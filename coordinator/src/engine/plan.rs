//! What a round asks of whom: the step's plan and the round's length (both
//! from the run's schedule), the tasks taking part, and each participant's
//! share of the step.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dmtl_core::method::{PartPlan, Pool, StepPlan};

use super::evaluate::crosses;
use super::run::Engine;
use crate::hub::{UpdateKind, WorkerRound};
use crate::scheduler::{RoundPlan, Task, WorkerId};

/// The round about to be played for the next step.
pub(super) struct PlannedStep {
    /// The step the round starts at.
    pub step: usize,
    pub plan: StepPlan,
    /// The steps the round covers (`Schedule::round_steps`).
    pub steps: usize,
    /// The tasks whose workers take part.
    pub active: BTreeSet<Task>,
    /// nccl plane: rank 0 pushes its training state after the round.
    pub want_state: bool,
    /// What the workers push (grpc plane): gradients of one step, or the
    /// weight delta of several local steps.
    pub expected: UpdateKind,
}

/// The images per step of each of `n` workers sharing `count` (at least one each).
pub fn split_count(count: usize, n: usize) -> Vec<usize> {
    (0..n).map(|i| (count / n + usize::from(i < count % n)).max(1)).collect()
}

/// Gradients of one step, or the weight delta of a round of local steps.
pub(super) fn update_kind(steps: usize, local_steps: usize) -> UpdateKind {
    if steps > 1 || local_steps > 1 {
        UpdateKind::WeightDelta
    } else {
        UpdateKind::Gradients
    }
}

impl Engine {
    /// Plans the next step's round (refreshing the teacher first when the
    /// grpc plane's merger keeps it).
    pub(super) fn plan_step(&mut self) -> PlannedStep {
        let total = self.config.train.steps;
        let local_steps = self.config.distributed.local_steps;
        let step = self.merger.step();
        if self.nccl.is_none() {
            self.merger.begin_step(); // nccl plane: each worker refreshes its own teacher
        }
        let plan = self.merger.plan();
        let steps = self.merger.schedule().round_steps(step, local_steps, total);
        // nccl plane: every task's workers are in every round (one group, one optimizer step).
        let active =
            if self.nccl.is_some() { Task::trained_by(self.merger.schedule()) } else { Task::active_in(&plan) };
        let train = &self.config.train;
        let want_state = self.nccl.as_ref().is_some_and(|p| p.pending_state)
            || crosses(step, step + steps, train.eval_every, total)
            || crosses(step, step + steps, train.checkpoint_every, total);
        PlannedStep { step, plan, steps, active, want_state, expected: update_kind(steps, local_steps) }
    }

    /// Assigns each participant of `rp` its share of the step's plan.
    pub(super) fn assignments(
        &self,
        round: u64,
        planned: &PlannedStep,
        rp: &RoundPlan,
    ) -> BTreeMap<WorkerId, WorkerRound> {
        let mut out = BTreeMap::new();
        for part in &planned.plan.parts {
            let Some(tp) = rp.tasks.get(&Task::of_part(part)) else { continue };
            let workers: Vec<WorkerId> = tp.shards.keys().copied().filter(|w| !tp.shards[w].is_empty()).collect();
            for (w, count) in workers.iter().zip(split_count(part.count, workers.len())) {
                out.insert(*w, self.part_share(round, planned, part, Arc::new(tp.shards[w].clone()), count));
            }
        }
        if self.nccl.is_some() {
            // Every live worker takes part in the all-reduce and the optimizer
            // step, also when the plan has no images for its task (alternate phases).
            for (task, tp) in &rp.tasks {
                for (w, shard) in tp.shards.iter().filter(|(_, s)| !s.is_empty()) {
                    out.entry(*w).or_insert_with(|| WorkerRound {
                        update_kind: UpdateKind::Receipt,
                        ..self.share(round, planned, task.idle_pool(), Arc::new(shard.clone()))
                    });
                }
            }
        }
        out
    }

    /// A worker's `count` images per step of `part`.
    fn part_share(
        &self,
        round: u64,
        planned: &PlannedStep,
        part: &PartPlan,
        shard: Arc<Vec<usize>>,
        count: usize,
    ) -> WorkerRound {
        // nccl plane: the workers keep their own teachers.
        let teacher_version = if self.nccl.is_some() { 0 } else { self.merger.teacher_version() };
        WorkerRound {
            teacher_version: if part.losses.needs_teacher() { teacher_version } else { 0 },
            count: count as u32,
            losses: part.losses,
            first_draw: self.merger.state().state.draws.get(part.pool),
            ..self.share(round, planned, part.pool, shard)
        }
    }

    /// The round's assignment of a worker drawing no images from `pool`.
    fn share(&self, round: u64, planned: &PlannedStep, pool: Pool, shard: Arc<Vec<usize>>) -> WorkerRound {
        WorkerRound {
            round,
            weights_version: self.merger.version(),
            teacher_version: 0,
            method: self.config.method.kind.to_string(),
            phase: planned.plan.phase as u64,
            first_step: planned.plan.step as u64,
            steps: planned.steps as u32,
            pool,
            count: 0,
            losses: Default::default(),
            first_draw: 0,
            update_kind: planned.expected,
            shard,
            nccl: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_count_shares_the_images_as_evenly_as_possible() {
        assert_eq!(split_count(7, 3), vec![3, 2, 2]);
        assert_eq!(split_count(6, 2), vec![3, 3]);
    }

    #[test]
    fn split_count_gives_every_worker_at_least_one_image() {
        assert_eq!(split_count(1, 3), vec![1, 1, 1]);
    }

    #[test]
    fn one_step_rounds_push_gradients_and_local_rounds_weight_deltas() {
        assert_eq!(update_kind(1, 1), UpdateKind::Gradients);
        assert_eq!(update_kind(1, 4), UpdateKind::WeightDelta, "the last round of a local-SGD run");
        assert_eq!(update_kind(3, 4), UpdateKind::WeightDelta);
    }
}
