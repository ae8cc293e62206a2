//! The schedule of each method: for a step, which images, which losses, and
//! when the teacher refreshes. Pure (no tensors), so it is tested exhaustively
//! and shared by single-process and distributed training.

use serde::{Deserialize, Serialize};

use crate::config::{Config, DistillConfig, MethodConfig, MethodKind, TeacherKind};

/// The pool of training images a batch part is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// D_seg: only segmentation labels may be used (both for `half`).
    Seg,
    /// D_depth: only depth labels may be used.
    Depth,
    /// Every training image, both labels (`full`).
    All,
}

impl Pool {
    pub const ALL: [Pool; 3] = [Pool::Seg, Pool::Depth, Pool::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Seg => "seg",
            Pool::Depth => "depth",
            Pool::All => "all",
        }
    }
}

/// The losses a batch part contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Losses {
    pub seg: bool,
    pub depth: bool,
    /// Distil segmentation from the teacher (on images without seg labels).
    pub distill_seg: bool,
    /// Distil depth from the teacher (on images without depth labels).
    pub distill_depth: bool,
}

impl Losses {
    /// Whether the segmentation head runs.
    pub fn needs_seg_head(&self) -> bool {
        self.seg || self.distill_seg
    }

    pub fn needs_depth_head(&self) -> bool {
        self.depth || self.distill_depth
    }

    pub fn needs_teacher(&self) -> bool {
        self.distill_seg || self.distill_depth
    }
}

/// One part of a step's batch: `count` images from `pool` with `losses`.
/// Parts are computed separately (their own BatchNorm statistics) and merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartPlan {
    pub pool: Pool,
    pub count: usize,
    pub losses: Losses,
}

/// What one step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepPlan {
    pub step: usize,
    /// `step / switch_every`.
    pub phase: usize,
    pub parts: Vec<PartPlan>,
    /// Copy the current model into the teacher before this step (`phase`
    /// teachers at a phase boundary; `round` teachers every step).
    pub refresh_teacher: bool,
}

/// The schedule of a method.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub kind: MethodKind,
    pub switch_every: usize,
    pub teacher: TeacherKind,
    pub batch_size: usize,
}

impl Schedule {
    pub fn new(method: &MethodConfig, distill: &DistillConfig, batch_size: usize) -> Self {
        Schedule { kind: method.kind, switch_every: method.switch_every, teacher: distill.teacher, batch_size }
    }

    /// The schedule of a run's config.
    pub fn of(config: &Config) -> Self {
        Schedule::new(&config.method, &config.distill, config.train.batch_size)
    }

    /// Whether the plan changes with the step at all (`false` for `full` and `half`).
    fn has_phases(&self) -> bool {
        !matches!(self.kind, MethodKind::Full | MethodKind::Half)
    }

    /// The plans of one step of every kind of phase the method has (the
    /// segmentation and the depth phase of `alternate`, one plan for `full`),
    /// with distillation on where the method distils: every part that ever
    /// trains, e.g. to find the tasks and image pools of a run.
    pub fn phase_plans(&self) -> Vec<StepPlan> {
        if self.has_phases() {
            vec![self.plan(2 * self.switch_every), self.plan(self.switch_every)]
        } else {
            vec![self.plan(0)]
        }
    }

    /// Steps from `step` to the next step whose plan differs (a new phase),
    /// `None` when the plan never changes.
    pub fn steps_until_change(&self, step: usize) -> Option<usize> {
        self.has_phases().then(|| self.switch_every - step % self.switch_every)
    }

    /// The steps of the round starting at `step` of `total`: at most
    /// `local_steps`, at least one, never past the end, and never across a
    /// phase boundary (where the plan changes or the teacher refreshes).
    pub fn round_steps(&self, step: usize, local_steps: usize, total: usize) -> usize {
        let n = local_steps.min(total.saturating_sub(step)).max(1);
        self.steps_until_change(step).map_or(n, |left| n.min(left))
    }

    /// The rounds of a whole run of `total` steps (one per step with `local_steps = 1`).
    pub fn rounds(&self, local_steps: usize, total: usize) -> u64 {
        let (mut step, mut rounds) = (0, 0);
        while step < total {
            step += self.round_steps(step, local_steps, total);
            rounds += 1;
        }
        rounds
    }

    /// The first step whose plan distils (distillation of a task starts once
    /// the teacher has been trained on it: after the first phase).
    pub fn distill_start(&self) -> usize {
        self.switch_every
    }

    /// Whether the teacher is replaced by the student before step `step`:
    /// `phase` teachers at each phase boundary, `round` teachers every step
    /// (in distributed training: every round).
    pub fn refreshes_teacher(&self, step: usize) -> bool {
        self.kind.uses_teacher()
            && match self.teacher {
                TeacherKind::Phase => step > 0 && step.is_multiple_of(self.switch_every),
                TeacherKind::Round => true,
                TeacherKind::Ema => false,
            }
    }

    /// The plan of step `step` (0-based).
    pub fn plan(&self, step: usize) -> StepPlan {
        let phase = step / self.switch_every;
        let b = self.batch_size;
        let only = |pool, losses| vec![PartPlan { pool, count: b, losses }];
        let seg_phase = phase.is_multiple_of(2);
        // Distillation of a task starts once the teacher has been trained on it:
        // in alternating methods after the first phase, in the masked ones after
        // the first refresh period.
        let parts = match self.kind {
            MethodKind::Full => only(Pool::All, Losses { seg: true, depth: true, ..Default::default() }),
            MethodKind::Half => only(Pool::Seg, Losses { seg: true, depth: true, ..Default::default() }),
            MethodKind::Alternate | MethodKind::Distill => {
                let distill = self.kind == MethodKind::Distill && step >= self.distill_start();
                if seg_phase {
                    only(Pool::Seg, Losses { seg: true, distill_depth: distill, ..Default::default() })
                } else {
                    only(Pool::Depth, Losses { depth: true, distill_seg: distill, ..Default::default() })
                }
            }
            MethodKind::Masked | MethodKind::MaskedDistill => {
                let distill = self.kind == MethodKind::MaskedDistill && step >= self.distill_start();
                let seg = b.div_ceil(2);
                vec![
                    PartPlan {
                        pool: Pool::Seg,
                        count: seg,
                        losses: Losses { seg: true, distill_depth: distill, ..Default::default() },
                    },
                    PartPlan {
                        pool: Pool::Depth,
                        count: b - seg,
                        losses: Losses { depth: true, distill_seg: distill, ..Default::default() },
                    },
                ]
            }
        };
        StepPlan { step, phase, parts, refresh_teacher: self.refreshes_teacher(step) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schedule(kind: MethodKind, teacher: TeacherKind) -> Schedule {
        Schedule { kind, switch_every: 10, teacher, batch_size: 8 }
    }

    #[test]
    fn full_and_half_train_both_tasks_every_step() {
        let full = schedule(MethodKind::Full, TeacherKind::Phase).plan(37);
        assert_eq!(full.parts.len(), 1);
        assert_eq!(full.parts[0].pool, Pool::All);
        assert!(full.parts[0].losses.seg && full.parts[0].losses.depth);
        let half = schedule(MethodKind::Half, TeacherKind::Phase).plan(37);
        assert_eq!(half.parts[0].pool, Pool::Seg);
        assert!(half.parts[0].losses.seg && half.parts[0].losses.depth);
        assert!(!full.refresh_teacher && !half.refresh_teacher);
    }

    #[test]
    fn alternate_switches_task_every_switch_every_steps() {
        let s = schedule(MethodKind::Alternate, TeacherKind::Phase);
        for step in 0..10 {
            let p = s.plan(step);
            assert_eq!(p.parts[0].pool, Pool::Seg);
            assert_eq!(p.parts[0].losses, Losses { seg: true, ..Default::default() });
        }
        for step in 10..20 {
            let p = s.plan(step);
            assert_eq!(p.parts[0].pool, Pool::Depth);
            assert_eq!(p.parts[0].losses, Losses { depth: true, ..Default::default() });
        }
        assert_eq!(s.plan(20).parts[0].pool, Pool::Seg);
    }

    #[test]
    fn distill_adds_the_other_task_once_the_teacher_has_learned_it() {
        let s = schedule(MethodKind::Distill, TeacherKind::Phase);
        assert!(!s.plan(5).parts[0].losses.needs_teacher(), "phase 0: the teacher knows no depth yet");
        let depth_phase = s.plan(15).parts[0].losses;
        assert!(depth_phase.depth && depth_phase.distill_seg && !depth_phase.distill_depth);
        let seg_phase = s.plan(25).parts[0].losses;
        assert!(seg_phase.seg && seg_phase.distill_depth && !seg_phase.distill_seg);
    }

    #[test]
    fn the_phase_teacher_refreshes_exactly_at_phase_boundaries() {
        let s = schedule(MethodKind::Distill, TeacherKind::Phase);
        let refreshes: Vec<usize> = (0..45).filter(|&i| s.plan(i).refresh_teacher).collect();
        assert_eq!(refreshes, vec![10, 20, 30, 40]);
    }

    #[test]
    fn the_round_teacher_refreshes_every_step_and_the_ema_teacher_never_by_copy() {
        let r = schedule(MethodKind::MaskedDistill, TeacherKind::Round);
        assert!((0..30).all(|i| r.plan(i).refresh_teacher));
        let e = schedule(MethodKind::Distill, TeacherKind::Ema);
        assert!((0..30).all(|i| !e.plan(i).refresh_teacher));
    }

    #[test]
    fn masked_mixes_both_halves_with_their_own_losses() {
        let s = schedule(MethodKind::Masked, TeacherKind::Phase);
        let p = s.plan(3);
        assert_eq!(p.parts.len(), 2);
        assert_eq!((p.parts[0].pool, p.parts[0].count), (Pool::Seg, 4));
        assert_eq!((p.parts[1].pool, p.parts[1].count), (Pool::Depth, 4));
        assert_eq!(p.parts[0].losses, Losses { seg: true, ..Default::default() });
        assert_eq!(p.parts[1].losses, Losses { depth: true, ..Default::default() });
        let md = schedule(MethodKind::MaskedDistill, TeacherKind::Phase).plan(12);
        assert!(md.parts[0].losses.distill_depth && md.parts[1].losses.distill_seg);
        assert!(!schedule(MethodKind::MaskedDistill, TeacherKind::Phase).plan(3).parts[0].losses.needs_teacher());
    }

    #[test]
    fn a_round_never_crosses_a_phase_boundary_or_the_end_of_the_run() {
        let s = schedule(MethodKind::Distill, TeacherKind::Phase);
        assert_eq!(s.round_steps(0, 4, 100), 4);
        assert_eq!(s.round_steps(8, 4, 100), 2, "the phase changes at step 10");
        assert_eq!(s.round_steps(98, 4, 100), 2, "the run ends at step 100");
        assert_eq!(s.round_steps(3, 1, 100), 1);
        assert_eq!(s.rounds(4, 25), 8, "rounds 0-4, 4-8, 8-10, 10-14, 14-18, 18-20, 20-24, 24-25");
        let full = schedule(MethodKind::Full, TeacherKind::Phase);
        assert_eq!(full.round_steps(8, 4, 100), 4, "full has no phases");
        assert_eq!(full.steps_until_change(8), None);
        assert_eq!(full.rounds(4, 25), 7);
    }

    #[test]
    fn the_phase_plans_show_every_part_the_method_ever_trains() {
        let tasks = |kind| {
            let plans = schedule(kind, TeacherKind::Phase).phase_plans();
            plans.iter().flat_map(|p| p.parts.iter().map(|q| (q.pool, q.losses))).collect::<Vec<_>>()
        };
        let alternate = tasks(MethodKind::Alternate);
        assert_eq!(alternate.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![Pool::Seg, Pool::Depth]);
        assert!(tasks(MethodKind::Distill).iter().all(|(_, l)| l.needs_teacher()), "distillation is on");
        assert_eq!(tasks(MethodKind::Full).len(), 1);
    }

    proptest! {
        #[test]
        fn no_part_ever_uses_a_label_its_pool_does_not_have(
            kind in prop::sample::select(MethodKind::ALL.to_vec()),
            switch_every in 1usize..50,
            batch in 2usize..64,
            step in 0usize..10_000,
        ) {
            let s = Schedule { kind, switch_every, teacher: TeacherKind::Phase, batch_size: batch };
            let plan = s.plan(step);
            let total: usize = plan.parts.iter().map(|p| p.count).sum();
            prop_assert_eq!(total, batch);
            for part in plan.parts {
                if kind != MethodKind::Half {
                    if part.pool == Pool::Seg { prop_assert!(!part.losses.depth); }
                    if part.pool == Pool::Depth { prop_assert!(!part.losses.seg); }
                }
                // Distillation only ever replaces a missing label.
                prop_assert!(!(part.losses.seg && part.losses.distill_seg));
                prop_assert!(!(part.losses.depth && part.losses.distill_depth));
            }
        }
    }
}
