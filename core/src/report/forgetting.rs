//! Forgetting: how much one task's validation metric worsens while the other
//! task trains. At consecutive phase ends — a segmentation phase ending at
//! step a, then a depth phase ending at step b — segmentation forgetting is
//! mIoU(a) − mIoU(b) in mIoU points; for a depth phase ending at a′, then a
//! segmentation phase ending at b′, depth forgetting is abs err(b′) − abs
//! err(a′). Positive is forgotten. Only pairs whose first phase end lies in the
//! second half of training (step > steps / 2) count, so that early learning,
//! where both tasks improve in every phase, does not mask the forgetting.
//!
//! The phases are the [`Schedule`]'s. Methods whose steps train both tasks
//! (`full`, `half`, `masked`, `masked-distill`) are measured at the phase ends
//! of `alternate` with the same `switch_every`, the roles alternating as if
//! the phases existed: their numbers are the noise floor, what a metric moves
//! between two evaluations with no task switch. A run that lacks an
//! evaluation at any of its phase ends gets no number.

use super::runs::RunRecord;
use super::summary::{mean_std, MethodSummary};
use crate::config::{Config, MethodKind};
use crate::method::{Schedule, StepPlan};
use crate::run_dir::MetricsLine;

/// The task a phase trains with labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Seg,
    Depth,
}

/// The one task a step trains with labels, `None` when it trains both.
fn labelled_task(plan: &StepPlan) -> Option<Task> {
    let seg = plan.parts.iter().any(|p| p.losses.seg);
    let depth = plan.parts.iter().any(|p| p.losses.depth);
    match (seg, depth) {
        (true, false) => Some(Task::Seg),
        (false, true) => Some(Task::Depth),
        _ => None,
    }
}

/// The schedule a run's forgetting is measured at, and whether it is the
/// run's own (every phase trains one task); otherwise it is `alternate` with
/// the run's `switch_every` and the run gives the noise floor.
pub fn phase_schedule(config: &Config) -> (Schedule, bool) {
    let own = Schedule::of(config);
    if own.phase_plans().iter().all(|p| labelled_task(p).is_some()) {
        (own, true)
    } else {
        (Schedule { kind: MethodKind::Alternate, ..own }, false)
    }
}

/// The phase ends of `schedule` over `total` steps: the step closing each
/// phase (the evaluation after it) and the task the phase trained.
fn phase_ends(schedule: &Schedule, total: usize) -> Vec<(usize, Task)> {
    let mut ends = Vec::new();
    let mut step = 0;
    while step < total {
        let Some(task) = labelled_task(&schedule.plan(step)) else { break };
        step = (step + schedule.steps_until_change(step).unwrap_or(total - step)).min(total);
        ends.push((step, task));
    }
    ends
}

/// The forgetting of each phase pair of one run, in the second half of training.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunForgetting {
    /// Segmentation forgetting of each seg → depth pair, in mIoU points.
    pub seg: Vec<f64>,
    /// Depth forgetting of each depth → seg pair, in abs err.
    pub depth: Vec<f64>,
}

/// A run's forgetting pairs; `None` when an evaluation is missing at one of its phase ends.
pub fn run_forgetting(run: &RunRecord) -> Option<RunForgetting> {
    let (schedule, _) = phase_schedule(&run.config);
    let total = run.config.train.steps;
    // The last line of a step wins (a resumed run may repeat one).
    let at = |step: usize| run.curve.iter().rev().find(|l| l.step == step);
    let evals: Vec<(usize, Task, &MetricsLine)> =
        phase_ends(&schedule, total).into_iter().map(|(s, t)| at(s).map(|l| (s, t, l))).collect::<Option<_>>()?;
    let mut out = RunForgetting::default();
    for pair in evals.windows(2) {
        let ((a, task, first), (_, next, second)) = (pair[0], pair[1]);
        if 2 * a <= total || task == next {
            continue;
        }
        match task {
            Task::Seg => out.seg.push((first.val.seg.miou - second.val.seg.miou) * 100.0),
            Task::Depth => out.depth.push(second.val.depth.abs_err - first.val.depth.abs_err),
        }
    }
    Some(out)
}

/// One method's forgetting over the seeds that could be measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ForgettingStats {
    /// The runs measured.
    pub runs: usize,
    /// Mean ± sample std over runs of each run's mean segmentation forgetting
    /// (mIoU points); NaN when no run has a pair.
    pub seg: (f64, f64),
    /// The same for depth forgetting (abs err).
    pub depth: (f64, f64),
    /// The pairs used, over all runs.
    pub seg_pairs: usize,
    pub depth_pairs: usize,
}

/// One method's forgetting (or noise floor).
#[derive(Debug, Clone, PartialEq)]
pub struct MethodForgetting {
    pub label: String,
    pub method: String,
    /// Whether the method's own phases train one task each; `false`: the numbers are the noise floor.
    pub phased: bool,
    pub switch_every: usize,
    /// `None` when no run of the method has an evaluation at every phase end.
    pub stats: Option<ForgettingStats>,
}

/// Mean ± std over runs of the per-run mean, over the runs with at least one pair; and the pairs.
fn over_runs<'a>(per_run: impl Iterator<Item = &'a Vec<f64>>) -> ((f64, f64), usize) {
    let lists: Vec<&Vec<f64>> = per_run.filter(|v| !v.is_empty()).collect();
    let means: Vec<f64> = lists.iter().map(|v| v.iter().sum::<f64>() / v.len() as f64).collect();
    (mean_std(&means), lists.iter().map(|v| v.len()).sum())
}

/// The forgetting of every method of `summary`, in its order.
pub fn forgetting(summary: &[MethodSummary], runs: &[RunRecord]) -> Vec<MethodForgetting> {
    summary
        .iter()
        .filter_map(|m| {
            let group: Vec<&RunRecord> = runs.iter().filter(|r| r.label == m.label).collect();
            let first = group.first()?;
            let measured: Vec<RunForgetting> = group.iter().filter_map(|r| run_forgetting(r)).collect();
            let stats = (!measured.is_empty()).then(|| {
                let (seg, seg_pairs) = over_runs(measured.iter().map(|f| &f.seg));
                let (depth, depth_pairs) = over_runs(measured.iter().map(|f| &f.depth));
                ForgettingStats { runs: measured.len(), seg, depth, seg_pairs, depth_pairs }
            });
            Some(MethodForgetting {
                label: m.label.clone(),
                method: m.method.clone(),
                phased: phase_schedule(&first.config).1,
                switch_every: first.config.method.switch_every,
                stats,
            })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::metrics::{DepthMetrics, EvalMetrics, SegMetrics};
    use crate::run_dir::FinalReport;

    fn metrics(miou: f64, abs_err: f64) -> EvalMetrics {
        EvalMetrics {
            seg: SegMetrics { miou, pixel_acc: 0.8, per_class_iou: Vec::new() },
            depth: DepthMetrics { abs_err, rel_err: 0.2, delta1: 0.7 },
        }
    }

    /// A finished run of `kind` with 10-step phases over `steps` steps,
    /// evaluated every `eval_every` steps with the metrics `val(step)`.
    pub(in crate::report) fn run(
        label: &str,
        kind: MethodKind,
        seed: u64,
        steps: usize,
        eval_every: usize,
        val: impl Fn(usize) -> (f64, f64),
    ) -> RunRecord {
        let mut config = Config { seed, ..Config::default() };
        config.method.kind = kind;
        config.method.switch_every = 10;
        config.train.steps = steps;
        config.train.eval_every = eval_every;
        let curve: Vec<MetricsLine> = (1..=steps / eval_every)
            .map(|k| {
                let (miou, abs_err) = val(k * eval_every);
                MetricsLine {
                    step: k * eval_every,
                    wall_s: 0.0,
                    images_seen: 0,
                    lr: 0.1,
                    train: Default::default(),
                    val: metrics(miou, abs_err),
                }
            })
            .collect();
        let last = curve.last().map_or(metrics(0.0, 0.0), |l| l.val.clone());
        let fin = FinalReport {
            method: kind.to_string(),
            seed,
            steps,
            wall_s: 1.0,
            seg: last.seg,
            depth: last.depth,
            images_seen: 0,
            loader: None,
        };
        RunRecord { dir: PathBuf::from(format!("{label}/seed-{seed}")), label: label.into(), config, fin, curve }
    }

    /// mIoU climbs 5 points in every seg phase and drops 2 in every depth
    /// phase; abs err falls 0.03 in every depth phase and grows 0.01 in every seg phase.
    fn forgetful(step: usize) -> (f64, f64) {
        let phases = step / 10;
        let (seg_phases, depth_phases) = (phases.div_ceil(2) as f64, (phases / 2) as f64);
        (0.1 + 0.05 * seg_phases - 0.02 * depth_phases, 1.0 - 0.03 * depth_phases + 0.01 * seg_phases)
    }

    #[test]
    fn a_run_whose_miou_drops_two_points_in_each_depth_phase_forgets_two_points() {
        let f = run_forgetting(&run("alternate", MethodKind::Alternate, 0, 100, 10, forgetful)).expect("measured");
        // Phase ends after step 50: 60 (depth), 70 (seg), 80, 90, 100: seg pairs 70→80 and 90→100, depth pairs
        // 60→70 and 80→90.
        assert_eq!((f.seg.len(), f.depth.len()), (2, 2), "{f:?}");
        assert!(f.seg.iter().all(|v| (v - 2.0).abs() < 1e-9), "{f:?}");
        assert!(f.depth.iter().all(|v| (v - 0.01).abs() < 1e-9), "{f:?}");
    }

    #[test]
    fn a_run_whose_evaluations_are_not_at_its_phase_ends_is_not_measured() {
        let every_4 = run("alternate", MethodKind::Alternate, 0, 100, 4, forgetful);
        assert_eq!(run_forgetting(&every_4), None);
        let every_20 = run("alternate", MethodKind::Alternate, 0, 100, 20, forgetful);
        assert_eq!(run_forgetting(&every_20), None);
        let runs = [every_4];
        let summary = super::super::summary::summarise(&runs);
        let f = forgetting(&summary, &runs);
        assert_eq!((f.len(), f[0].stats.as_ref()), (1, None));
    }

    #[test]
    fn methods_training_both_tasks_each_step_are_measured_at_alternate_phase_ends_as_the_noise_floor() {
        for kind in [MethodKind::Full, MethodKind::Half, MethodKind::Masked, MethodKind::MaskedDistill] {
            let r = run("x", kind, 0, 100, 10, forgetful);
            assert!(!phase_schedule(&r.config).1, "{kind}");
            let f = run_forgetting(&r).expect("measured");
            assert_eq!((f.seg.len(), f.depth.len()), (2, 2), "{kind}: {f:?}");
            assert!(f.seg.iter().all(|v| (v - 2.0).abs() < 1e-9), "{kind}: {f:?}");
        }
        for kind in [MethodKind::Alternate, MethodKind::Distill] {
            assert!(phase_schedule(&run("x", kind, 0, 100, 10, forgetful).config).1, "{kind}");
        }
    }

    #[test]
    fn a_method_reports_mean_and_std_over_seeds_and_the_pairs_of_all_seeds() {
        let steady = |k: f64| move |step: usize| (0.5 - k * 0.01 * ((step / 10) / 2) as f64, 1.0);
        let runs = [
            run("distill", MethodKind::Distill, 1, 100, 10, steady(1.0)),
            run("distill", MethodKind::Distill, 2, 100, 10, steady(3.0)),
        ];
        let summary = super::super::summary::summarise(&runs);
        let f = &forgetting(&summary, &runs)[0];
        let stats = f.stats.as_ref().expect("measured");
        assert!(f.phased && f.switch_every == 10);
        assert_eq!((stats.runs, stats.seg_pairs, stats.depth_pairs), (2, 4, 4));
        assert!((stats.seg.0 - 2.0).abs() < 1e-9 && (stats.seg.1 - 2f64.sqrt()).abs() < 1e-9, "{stats:?}");
        assert!(stats.depth.0.abs() < 1e-12, "{stats:?}");
    }
}
