//! Applying a finished round: the grpc plane merges the updates in the
//! single-process order through [`Merger::apply_merged`] (one home for what
//! follows a merge); the nccl plane's members applied the step themselves
//! and the coordinator only counts it. Either way the draw counters move on
//! past what the round's workers took.
//!
//! [`Merger::apply_merged`]: crate::merger::Merger::apply_merged

use std::collections::{BTreeMap, BTreeSet};

use dmtl_core::method::PartPlan;
use dmtl_core::train::{LossValues, TrainError, Update};

use super::error::EngineError;
use super::open::OpenedRound;
use super::plan::{split_count, PlannedStep};
use super::run::Engine;
use crate::hub::UpdateKind;
use crate::merger::MergeMode;
use crate::scheduler::{FinishedRound, Task, WorkerId};

/// What a merged round contributed.
pub(super) struct MergedRound {
    pub losses: LossValues,
    /// The images that contributed.
    pub samples: usize,
    /// The workers whose updates were merged.
    pub workers: usize,
}

/// The merge order: for each part of the plan (in the plan's order), the
/// merged workers of its task in id order. With one worker per part this is
/// exactly the single-process order.
pub(super) fn merge_order(
    part_tasks: &[Task],
    merged: &BTreeSet<WorkerId>,
    task_of: impl Fn(WorkerId) -> Option<Task>,
) -> Vec<Vec<WorkerId>> {
    part_tasks.iter().map(|task| merged.iter().copied().filter(|id| task_of(*id) == Some(*task)).collect()).collect()
}

/// The draws each step of a round took from a part's pool, shared by
/// `workers` workers (at least one: a part nobody drew for still advances).
pub(super) fn draws_per_step(count: usize, workers: usize) -> u64 {
    split_count(count, workers.max(1)).into_iter().max().unwrap_or(count) as u64
}

impl Engine {
    /// Applies the finished round to the coordinator's state (`updates`: the
    /// accepted ones, taken out as they are merged).
    pub(super) fn apply(
        &mut self,
        planned: &PlannedStep,
        opened: &OpenedRound,
        finished: &FinishedRound,
        updates: &mut BTreeMap<WorkerId, Update>,
    ) -> Result<MergedRound, EngineError> {
        let (merged, per_part) = if self.nccl.is_some() {
            self.count_nccl_round(planned, opened, finished, updates)?
        } else {
            self.merge_updates(planned, finished, updates)?
        };
        // Draws continue after what this round's workers took from each pool.
        for (part, n) in &per_part {
            let d = &mut self.merger.state_mut().state.draws;
            let before = d.get(part.pool);
            d.0.insert(part.pool, before + draws_per_step(part.count, *n) * planned.steps as u64);
        }
        Ok(merged)
    }

    /// grpc plane: merges the updates in the plan's part order and applies
    /// the step. Returns the round and the workers merged for each part.
    fn merge_updates(
        &mut self,
        planned: &PlannedStep,
        finished: &FinishedRound,
        updates: &mut BTreeMap<WorkerId, Update>,
    ) -> Result<(MergedRound, Vec<(PartPlan, usize)>), EngineError> {
        let tasks: Vec<Task> = planned.plan.parts.iter().map(Task::of_part).collect();
        let order = merge_order(&tasks, &finished.merged, |id| self.hub.lock().workers.get(&id).map(|w| w.task));
        let per_part = planned.plan.parts.iter().zip(&order).map(|(part, ids)| (*part, ids.len())).collect();
        let ordered: Vec<Update> = order.into_iter().flatten().filter_map(|id| updates.remove(&id)).collect();
        let mode = match planned.expected {
            UpdateKind::WeightDelta => MergeMode::WeightDelta { steps: planned.steps },
            _ => MergeMode::Gradients,
        };
        let (losses, samples) = self
            .merger
            .apply_merged(&ordered, mode)
            .map_err(|e| TrainError::at_step(planned.step + planned.steps, e))?;
        Ok((MergedRound { losses, samples, workers: ordered.len() }, per_part))
    }

    /// nccl plane: the members merged and applied the step themselves:
    /// count it. Every planned worker drew its images, whoever's receipt arrived.
    fn count_nccl_round(
        &mut self,
        planned: &PlannedStep,
        opened: &OpenedRound,
        finished: &FinishedRound,
        updates: &BTreeMap<WorkerId, Update>,
    ) -> Result<(MergedRound, Vec<(PartPlan, usize)>), EngineError> {
        let per_part = planned
            .plan
            .parts
            .iter()
            .map(|part| (*part, opened.planned_workers.get(&part.pool).copied().unwrap_or(1)))
            .collect();
        let receipts: Vec<&Update> = updates.values().filter(|u| u.samples > 0).collect();
        let merged = if receipts.is_empty() {
            None
        } else {
            Some(dmtl_core::train::merge(&receipts).map_err(TrainError::from)?)
        };
        let (losses, samples) = merged.map_or_else(Default::default, |m| (m.losses, m.samples));
        self.merger.advance(planned.steps, samples, &losses);
        if let Some(plane) = self.nccl.as_mut() {
            plane.finished(&finished.merged, opened.participants);
        }
        Ok((MergedRound { losses, samples, workers: finished.merged.len() }, per_part))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> BTreeSet<WorkerId> {
        v.iter().map(|i| WorkerId(*i)).collect()
    }

    #[test]
    fn updates_merge_in_the_plans_part_order_then_by_worker_id() {
        // Workers 1 and 4 train depth, 2 and 3 segmentation; the plan puts seg first.
        let task_of = |id: WorkerId| Some(if id.0 % 3 == 1 { Task::Depth } else { Task::Seg });
        let order = merge_order(&[Task::Seg, Task::Depth], &ids(&[1, 2, 3, 4]), task_of);
        assert_eq!(order, vec![vec![WorkerId(2), WorkerId(3)], vec![WorkerId(1), WorkerId(4)]]);
    }

    #[test]
    fn a_worker_without_a_known_task_is_not_merged() {
        let task_of = |id: WorkerId| (id.0 == 1).then_some(Task::Seg);
        assert_eq!(merge_order(&[Task::Seg], &ids(&[1, 2]), task_of), vec![vec![WorkerId(1)]]);
    }

    #[test]
    fn the_draws_of_a_shared_part_are_its_largest_share() {
        assert_eq!(draws_per_step(5, 2), 3);
        assert_eq!(draws_per_step(4, 1), 4);
    }

    #[test]
    fn a_part_nobody_drew_for_still_counts_as_one_worker() {
        assert_eq!(draws_per_step(4, 0), 4);
    }
}
