//! Aggregation over seeds: per method, the mean ± sample std of every
//! validation metric, the mean validation curve, Δm against `full` and `half`
//! and the share of the full–half gap the method closes.

use std::collections::BTreeMap;

use super::runs::RunRecord;
use crate::metrics::{delta_m, DepthMetrics, EvalMetrics, SegMetrics};
use crate::run_dir::MetricsLine;

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The metrics reported per method, in order.
pub const METRICS: [(&str, &str, bool); 5] = [
    ("miou", "mIoU (%)", true),
    ("pixel_acc", "pixel acc (%)", true),
    ("abs_err", "abs err", false),
    ("rel_err", "rel err", false),
    ("delta1", "δ<1.25 (%)", true),
];

/// The value of the [`METRICS`] key `key` in `m`.
pub(super) fn metric(m: &EvalMetrics, key: &str) -> f64 {
    match key {
        "miou" => m.seg.miou,
        "pixel_acc" => m.seg.pixel_acc,
        "abs_err" => m.depth.abs_err,
        "rel_err" => m.depth.rel_err,
        "delta1" => m.depth.delta1,
        _ => unreachable!("unknown metric {key}"),
    }
}

/// One method over its seeds.
#[derive(Debug, Clone)]
pub struct MethodSummary {
    pub label: String,
    pub method: String,
    pub seeds: Vec<u64>,
    /// `(mean, std)` per entry of [`METRICS`], in the units of `final.json` (fractions for mIoU etc.).
    pub stats: Vec<(f64, f64)>,
    /// Δm (%) of the mean metrics against the mean of `full` / `half`, when present.
    pub delta_full: Option<f64>,
    pub delta_half: Option<f64>,
    /// Δm(method vs half) / Δm(full vs half): the share of the full–half gap closed.
    pub gap_closed: Option<f64>,
    /// Mean validation curve: (images seen, mIoU, abs err) at each evaluation.
    pub curve: Vec<(f64, f64, f64)>,
}

impl MethodSummary {
    /// The mean of each metric over the seeds, as metrics.
    pub fn mean_metrics(&self) -> EvalMetrics {
        EvalMetrics {
            seg: SegMetrics { miou: self.stats[0].0, pixel_acc: self.stats[1].0, per_class_iou: Vec::new() },
            depth: DepthMetrics { abs_err: self.stats[2].0, rel_err: self.stats[3].0, delta1: self.stats[4].0 },
        }
    }
}

/// The display order of the labels: full, half, the methods in DESIGN order, then the rest by name.
fn order(label: &str) -> (usize, String) {
    const KNOWN: [&str; 7] = ["full", "half", "alternate", "distill", "distill-ema", "masked", "masked-distill"];
    (KNOWN.iter().position(|k| *k == label).unwrap_or(KNOWN.len()), label.to_string())
}

/// The evaluations every run of the group has (by step, in the first run's
/// order), averaged: (images seen, mIoU, abs err).
fn mean_curve(rs: &[&RunRecord]) -> Vec<(f64, f64, f64)> {
    let steps: Vec<usize> = rs[0].curve.iter().map(|l| l.step).collect();
    steps
        .iter()
        .filter_map(|&s| {
            let lines: Vec<&MetricsLine> = rs.iter().filter_map(|r| r.curve.iter().find(|l| l.step == s)).collect();
            (lines.len() == rs.len()).then(|| {
                let n = lines.len() as f64;
                (
                    lines.iter().map(|l| l.images_seen as f64).sum::<f64>() / n,
                    lines.iter().map(|l| l.val.seg.miou).sum::<f64>() / n,
                    lines.iter().map(|l| l.val.depth.abs_err).sum::<f64>() / n,
                )
            })
        })
        .collect()
}

/// One label's runs (at least one), without the comparisons to `full` and `half`.
fn summarise_group(rs: &[&RunRecord]) -> MethodSummary {
    let stats = METRICS
        .iter()
        .map(|(k, _, _)| mean_std(&rs.iter().map(|r| metric(&r.fin.metrics(), k)).collect::<Vec<_>>()))
        .collect();
    let mut seeds: Vec<u64> = rs.iter().map(|r| r.config.seed).collect();
    seeds.sort();
    MethodSummary {
        label: rs[0].label.clone(),
        method: rs[0].config.method.kind.to_string(),
        seeds,
        stats,
        delta_full: None,
        delta_half: None,
        gap_closed: None,
        curve: mean_curve(rs),
    }
}

/// Sets Δm against the mean of `full` and `half` and the gap closed, where
/// those labels are present.
fn compare_to_references(out: &mut [MethodSummary]) {
    let reference = |name: &str| out.iter().find(|s| s.label == name).map(MethodSummary::mean_metrics);
    let (full, half) = (reference("full"), reference("half"));
    let gap = full.as_ref().zip(half.as_ref()).map(|(f, h)| delta_m(f, h));
    for s in out {
        let m = s.mean_metrics();
        s.delta_full = full.as_ref().map(|f| delta_m(&m, f));
        s.delta_half = half.as_ref().map(|h| delta_m(&m, h));
        s.gap_closed = match (s.delta_half, gap) {
            (Some(d), Some(g)) if g.abs() > 1e-9 => Some(d / g),
            _ => None,
        };
    }
}

/// Groups the runs by label and summarises each group.
pub fn summarise(runs: &[RunRecord]) -> Vec<MethodSummary> {
    let mut groups: BTreeMap<(usize, String), Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        groups.entry(order(&r.label)).or_default().push(r);
    }
    let mut out: Vec<MethodSummary> = groups.into_values().map(|rs| summarise_group(&rs)).collect();
    compare_to_references(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::Config;
    use crate::run_dir::FinalReport;

    fn metrics(miou: f64, abs_err: f64) -> EvalMetrics {
        EvalMetrics {
            seg: SegMetrics { miou, pixel_acc: 0.8, per_class_iou: Vec::new() },
            depth: DepthMetrics { abs_err, rel_err: 0.2, delta1: 0.7 },
        }
    }

    fn run(label: &str, seed: u64, miou: f64, abs_err: f64, curve: &[usize]) -> RunRecord {
        let config = Config { seed, ..Config::default() };
        let m = metrics(miou, abs_err);
        let fin = FinalReport {
            method: label.into(),
            seed,
            steps: 10,
            wall_s: 1.0,
            seg: m.seg.clone(),
            depth: m.depth.clone(),
            images_seen: 40,
            loader: None,
        };
        let curve = curve
            .iter()
            .map(|&step| MetricsLine {
                step,
                wall_s: 0.0,
                images_seen: 4 * step as u64,
                lr: 0.1,
                train: Default::default(),
                val: metrics(miou, abs_err),
            })
            .collect();
        RunRecord { dir: PathBuf::from(format!("{label}/seed-{seed}")), label: label.into(), config, fin, curve }
    }

    #[test]
    fn mean_std_is_the_sample_std_and_zero_for_one_value() {
        let (mean, std) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!((mean - 2.5).abs() < 1e-12);
        assert!((std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12, "{std}");
        assert_eq!(mean_std(&[7.0]), (7.0, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }

    #[test]
    fn methods_are_ordered_full_half_then_design_order_then_by_name() {
        let runs: Vec<RunRecord> =
            ["zeta", "masked", "half", "beta", "full", "alternate"].iter().map(|l| run(l, 1, 0.5, 0.1, &[])).collect();
        let labels: Vec<String> = summarise(&runs).into_iter().map(|s| s.label).collect();
        assert_eq!(labels, ["full", "half", "alternate", "masked", "beta", "zeta"]);
    }

    #[test]
    fn a_method_halfway_between_half_and_full_closes_half_the_gap() {
        let runs = [
            run("full", 1, 0.6, 0.1, &[]),
            run("half", 1, 0.4, 0.1, &[]),
            run("alternate", 1, 0.5, 0.1, &[]),
            run("alternate", 2, 0.5, 0.1, &[]),
        ];
        let summary = summarise(&runs);
        let alternate = summary.iter().find(|s| s.label == "alternate").expect("alternate");
        assert_eq!(alternate.seeds, [1, 2]);
        assert!((alternate.gap_closed.expect("gap") - 0.5).abs() < 1e-9, "{:?}", alternate.gap_closed);
        let full = &summary[0];
        assert!(full.delta_full.expect("Δm").abs() < 1e-12);
        assert!((full.gap_closed.expect("gap") - 1.0).abs() < 1e-9);
        assert!(summary[1].delta_half.expect("Δm").abs() < 1e-12);
    }

    #[test]
    fn without_full_and_half_there_is_no_delta_m_or_gap() {
        let summary = summarise(&[run("alternate", 1, 0.5, 0.1, &[])]);
        assert_eq!((summary[0].delta_full, summary[0].delta_half, summary[0].gap_closed), (None, None, None));
    }

    #[test]
    fn the_mean_curve_keeps_only_the_evaluations_every_seed_has() {
        let runs = [run("distill", 1, 0.4, 0.2, &[5, 10, 15]), run("distill", 2, 0.6, 0.4, &[5, 15])];
        let curve = &summarise(&runs)[0].curve;
        assert_eq!(curve.len(), 2, "{curve:?}");
        let (images, miou, abs_err) = curve[1];
        assert_eq!(images, 60.0);
        assert!((miou - 0.5).abs() < 1e-12 && (abs_err - 0.3).abs() < 1e-12, "{curve:?}");
    }
}
