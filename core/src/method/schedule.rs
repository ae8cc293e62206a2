//! The schedule of each method: for a step, which images, which losses, and
//! when the teacher refreshes. Pure (no tensors), so it is tested exhaustively
//! and shared by single-process and distributed training.

use serde::{Deserialize, Serialize};

use crate::config::{DistillConfig, MethodConfig, MethodKind, TeacherKind};

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
                let distill = self.kind == MethodKind::Distill && phase >= 1;
                if seg_phase {
                    only(Pool::Seg, Losses { seg: true, distill_depth: distill, ..Default::default() })
                } else {
                    only(Pool::Depth, Losses { depth: true, distill_seg: distill, ..Default::default() })
                }
            }
            MethodKind::Masked | MethodKind::MaskedDistill => {
                let distill = self.kind == MethodKind::MaskedDistill && phase >= 1;
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
        let refresh_teacher = self.kind.uses_teacher()
            && match self.teacher {
                TeacherKind::Phase => step > 0 && step.is_multiple_of(self.switch_every),
                TeacherKind::Round => true,
                TeacherKind::Ema => false,
            };
        StepPlan { step, phase, parts, refresh_teacher }
    }

    /// Whether the teacher is an EMA updated after every step.
    pub fn ema_teacher(&self) -> bool {
        self.kind.uses_teacher() && self.teacher == TeacherKind::Ema
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
        assert!(e.ema_teacher());
        assert!(!schedule(MethodKind::Alternate, TeacherKind::Ema).ema_teacher());
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
