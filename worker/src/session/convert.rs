//! `dmtl.v1` messages ↔ the worker's types: a round assignment into the
//! training thread's [`RoundWork`], pools, and the losses and kind of a push.

use dmtl_core::method::{Losses, PartPlan, Pool};
use dmtl_core::train::LossValues;
use dmtl_proto::v1;

use crate::trainer::{PushKind, RoundWork};
use crate::WorkerError;

/// The pool a `v1::Pool` value names; `None` for an unset or unknown value.
pub(super) fn pool_from(value: i32) -> Option<Pool> {
    match v1::Pool::try_from(value) {
        Ok(v1::Pool::Seg) => Some(Pool::Seg),
        Ok(v1::Pool::Depth) => Some(Pool::Depth),
        Ok(v1::Pool::All) => Some(Pool::All),
        _ => None,
    }
}

/// What round `info` asks of this worker: its plan's first batch part, the
/// steps (at least one) and what to push (gradients unless a weight delta).
pub(super) fn work_of(info: &v1::RoundInfo) -> Result<RoundWork, WorkerError> {
    let bad = |problem: &str| WorkerError::BadRound { round: info.round, problem: problem.to_string() };
    let plan = info.plan.as_ref().ok_or_else(|| bad("no plan"))?;
    let part = plan.parts.first().ok_or_else(|| bad("no batch part"))?;
    let pool = pool_from(part.pool).ok_or_else(|| bad("unknown pool"))?;
    let l = part.losses.unwrap_or_default();
    let kind = match v1::UpdateKind::try_from(plan.update_kind) {
        Ok(v1::UpdateKind::WeightDelta) => PushKind::WeightDelta,
        _ => PushKind::Gradients,
    };
    Ok(RoundWork {
        round: info.round,
        first_step: plan.first_step,
        steps: plan.steps.max(1),
        part: PartPlan {
            pool,
            count: part.count as usize,
            losses: Losses { seg: l.seg, depth: l.depth, distill_seg: l.distill_seg, distill_depth: l.distill_depth },
        },
        first_draw: part.first_draw,
        kind,
    })
}

/// The update kind a grpc-plane push declares.
pub(super) fn update_kind(kind: PushKind) -> v1::UpdateKind {
    match kind {
        PushKind::Gradients => v1::UpdateKind::Gradients,
        PushKind::WeightDelta => v1::UpdateKind::WeightDelta,
    }
}

/// A push's loss values.
pub(super) fn train_losses(l: &LossValues) -> v1::TrainLosses {
    v1::TrainLosses {
        total: l.total,
        seg: l.seg,
        depth: l.depth,
        distill_seg: l.distill_seg,
        distill_depth: l.distill_depth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(plan: v1::RoundPlan) -> v1::RoundInfo {
        v1::RoundInfo { round: 12, weights_version: 5, plan: Some(plan), ..Default::default() }
    }

    fn depth_part() -> v1::BatchPart {
        v1::BatchPart {
            pool: v1::Pool::Depth as i32,
            count: 3,
            losses: Some(v1::LossSet { seg: false, depth: true, distill_seg: true, distill_depth: false }),
            first_draw: 40,
        }
    }

    #[test]
    fn every_proto_pool_becomes_the_core_pool_of_its_name_and_an_unset_one_none() {
        assert_eq!(pool_from(v1::Pool::Seg as i32), Some(Pool::Seg));
        assert_eq!(pool_from(v1::Pool::Depth as i32), Some(Pool::Depth));
        assert_eq!(pool_from(v1::Pool::All as i32), Some(Pool::All));
        assert_eq!(pool_from(v1::Pool::Unspecified as i32), None);
        assert_eq!(pool_from(99), None);
    }

    #[test]
    fn a_round_assignment_becomes_the_work_of_its_first_batch_part() {
        let plan = v1::RoundPlan {
            first_step: 30,
            steps: 4,
            parts: vec![depth_part(), v1::BatchPart { pool: v1::Pool::Seg as i32, ..depth_part() }],
            update_kind: v1::UpdateKind::WeightDelta as i32,
            ..Default::default()
        };
        let work = work_of(&round(plan)).unwrap();
        assert_eq!((work.round, work.first_step, work.steps, work.first_draw), (12, 30, 4, 40));
        assert_eq!((work.part.pool, work.part.count), (Pool::Depth, 3));
        let l = work.part.losses;
        assert_eq!((l.seg, l.depth, l.distill_seg, l.distill_depth), (false, true, true, false));
        assert_eq!(work.kind, PushKind::WeightDelta);
    }

    #[test]
    fn a_plan_of_zero_steps_is_one_step_of_gradients() {
        let plan = v1::RoundPlan { steps: 0, parts: vec![depth_part()], ..Default::default() };
        let work = work_of(&round(plan)).unwrap();
        assert_eq!((work.steps, work.kind), (1, PushKind::Gradients));
    }

    #[test]
    fn a_round_without_a_plan_a_part_or_a_known_pool_is_refused_naming_the_round() {
        let no_plan = v1::RoundInfo { round: 12, ..Default::default() };
        let no_part = round(v1::RoundPlan::default());
        let bad_pool = round(v1::RoundPlan {
            parts: vec![v1::BatchPart { pool: v1::Pool::Unspecified as i32, ..depth_part() }],
            ..Default::default()
        });
        for (info, problem) in [(no_plan, "no plan"), (no_part, "no batch part"), (bad_pool, "unknown pool")] {
            let err = work_of(&info).unwrap_err();
            assert_eq!(err.to_string(), format!("round 12: {problem}"));
        }
    }

    #[test]
    fn the_losses_of_a_push_keep_every_value() {
        let l =
            LossValues { total: 1.5, seg: Some(0.5), depth: None, distill_seg: Some(0.125), distill_depth: Some(0.0) };
        let p = train_losses(&l);
        assert_eq!(
            (p.total, p.seg, p.depth, p.distill_seg, p.distill_depth),
            (1.5, Some(0.5), None, Some(0.125), Some(0.0))
        );
        assert_eq!(update_kind(PushKind::Gradients), v1::UpdateKind::Gradients);
        assert_eq!(update_kind(PushKind::WeightDelta), v1::UpdateKind::WeightDelta);
    }
}
