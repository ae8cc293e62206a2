//! The paired comparison against `alternate`: runs are paired by seed (seed k
//! gives every method the same split, initialisation and draws), and each
//! method other than `full`, `half` and `alternate` itself is compared with
//! its control, the `alternate` runs with the same `method.switch_every`. Per
//! metric: the per-seed difference method − control, its mean ± sample std,
//! and the two-sided p-value of a paired t-test (Student t, n − 1 degrees of
//! freedom). With fewer than two pairs there is no p; when every difference
//! is zero p is 1; when every difference is the same non-zero value (zero
//! variance, t undefined) there is no p.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::runs::RunRecord;
use super::summary::{mean_std, metric, MethodSummary, METRICS};
use crate::config::MethodKind;

/// The two-sided p-value of a paired t-test on the differences `d`; see the module doc for when there is none.
pub fn paired_t_p(d: &[f64]) -> Option<f64> {
    if d.len() < 2 {
        return None;
    }
    if d.iter().all(|&v| v == d[0]) {
        return (d[0] == 0.0).then_some(1.0);
    }
    let (mean, std) = mean_std(d);
    let n = d.len() as f64;
    let t = mean / (std / n.sqrt());
    let student = StudentsT::new(0.0, 1.0, n - 1.0).ok()?;
    Some((2.0 * student.sf(t.abs())).min(1.0))
}

/// One metric of a paired comparison, in the units of `final.json` (fractions for mIoU etc.).
#[derive(Debug, Clone, PartialEq)]
pub struct PairedMetric {
    /// The key in [`METRICS`].
    pub key: &'static str,
    /// Mean and sample std of method − control over the pairs (std 0 for one pair).
    pub mean: f64,
    pub std: f64,
    pub p: Option<f64>,
}

/// A method against its `alternate` control.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedMethod {
    pub label: String,
    /// The control's label.
    pub control: String,
    /// The seeds both have, one pair each.
    pub seeds: Vec<u64>,
    /// One entry per [`METRICS`] entry, in order.
    pub metrics: Vec<PairedMetric>,
}

/// The paired comparisons, and one line per method left out for want of a control.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Paired {
    pub methods: Vec<PairedMethod>,
    pub missing: Vec<String>,
}

fn seeds(runs: &[&RunRecord]) -> Vec<u64> {
    let mut s: Vec<u64> = runs.iter().map(|r| r.config.seed).collect();
    s.sort();
    s.dedup();
    s
}

/// Pairs `group` with `control` by seed and takes the differences of every metric.
fn compare(label: &str, control: &str, group: &[&RunRecord], controls: &[&RunRecord]) -> PairedMethod {
    let shared: Vec<u64> = seeds(group).into_iter().filter(|s| controls.iter().any(|c| c.config.seed == *s)).collect();
    let by_seed = |rs: &[&RunRecord], s: u64| rs.iter().find(|r| r.config.seed == s).map(|r| r.fin.metrics());
    let pairs: Vec<_> = shared.iter().filter_map(|&s| by_seed(group, s).zip(by_seed(controls, s))).collect();
    let metrics = METRICS
        .iter()
        .map(|(key, _, _)| {
            let d: Vec<f64> = pairs.iter().map(|(m, c)| metric(m, key) - metric(c, key)).collect();
            let (mean, std) = mean_std(&d);
            PairedMetric { key, mean, std, p: paired_t_p(&d) }
        })
        .collect();
    PairedMethod { label: label.into(), control: control.into(), seeds: shared, metrics }
}

/// Every method of `summary` (in its order) against its `alternate` control:
/// the control label sharing the most seeds with it, the first on a tie.
pub fn paired(summary: &[MethodSummary], runs: &[RunRecord]) -> Paired {
    let group_of = |label: &str| runs.iter().filter(|r| r.label == label).collect::<Vec<&RunRecord>>();
    let groups: Vec<(&str, Vec<&RunRecord>)> =
        summary.iter().map(|m| (m.label.as_str(), group_of(&m.label))).filter(|(_, g)| !g.is_empty()).collect();
    let is_control = |g: &[&RunRecord], every: usize| {
        g.iter().all(|r| r.config.method.kind == MethodKind::Alternate && r.config.method.switch_every == every)
    };
    let mut out = Paired::default();
    for (label, group) in &groups {
        let method = &group[0].config.method;
        if matches!(method.kind, MethodKind::Full | MethodKind::Half | MethodKind::Alternate) {
            continue;
        }
        let mine = seeds(group);
        let shared = |g: &[&RunRecord]| seeds(g).iter().filter(|s| mine.contains(s)).count();
        let mut best: Option<(&str, &Vec<&RunRecord>, usize)> = None;
        for (c, g) in groups.iter().filter(|(_, g)| is_control(g, method.switch_every)) {
            if best.is_none_or(|(_, _, n)| shared(g) > n) {
                best = Some((c, g, shared(g)));
            }
        }
        match best {
            Some((control, g, n)) if n > 0 => out.methods.push(compare(label, control, group, g)),
            Some((control, _, _)) => {
                out.missing.push(format!("`{label}`: no seed in common with its control `{control}`"))
            }
            None => out.missing.push(format!(
                "`{label}`: its control, an `alternate` run with switch_every {}, is not in the input",
                method.switch_every
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::forgetting::tests::run;
    use super::super::summary::summarise;
    use super::*;

    fn flat(miou: f64, abs_err: f64) -> impl Fn(usize) -> (f64, f64) {
        move |_| (miou, abs_err)
    }

    #[test]
    fn identical_runs_differ_by_zero_with_p_one() {
        let runs: Vec<RunRecord> = (0..3)
            .flat_map(|s| {
                let v = 0.4 + 0.01 * s as f64;
                [
                    run("alternate", MethodKind::Alternate, s, 20, 10, flat(v, 1.0 - v)),
                    run("distill", MethodKind::Distill, s, 20, 10, flat(v, 1.0 - v)),
                ]
            })
            .collect();
        let p = paired(&summarise(&runs), &runs);
        assert_eq!(p.missing, Vec::<String>::new());
        let d = &p.methods[0];
        assert_eq!(
            (d.label.as_str(), d.control.as_str(), d.seeds.as_slice()),
            ("distill", "alternate", &[0, 1, 2][..])
        );
        assert!(d.metrics.iter().all(|m| m.mean == 0.0 && m.std == 0.0 && m.p == Some(1.0)), "{d:?}");
    }

    #[test]
    fn the_p_value_of_the_sleep_data_matches_the_textbook_value() {
        // Student's sleep data (Cushny & Peebles), drug 2 − drug 1: t = 4.0621, df = 9, p = 0.002833
        // (R's t.test(..., paired = TRUE); scipy.stats.ttest_rel gives 0.002832890197).
        let d = [1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4];
        let p = paired_t_p(&d).expect("p");
        assert!((p - 0.002_832_890_197).abs() < 1e-9, "{p}");
        let negated: Vec<f64> = d.iter().map(|v| -v).collect();
        assert_eq!(paired_t_p(&negated), Some(p), "two-sided");
    }

    #[test]
    fn fewer_than_two_pairs_or_a_constant_nonzero_difference_have_no_p() {
        assert_eq!(paired_t_p(&[0.5]), None);
        assert_eq!(paired_t_p(&[]), None);
        assert_eq!(paired_t_p(&[0.5, 0.5, 0.5]), None);
        assert_eq!(paired_t_p(&[0.0, 0.0]), Some(1.0));
    }

    #[test]
    fn the_control_is_the_alternate_run_with_the_same_switch_every_paired_by_seed() {
        let mut runs = vec![
            run("alternate", MethodKind::Alternate, 0, 20, 10, flat(0.40, 1.0)),
            run("alternate", MethodKind::Alternate, 1, 20, 10, flat(0.42, 1.0)),
            run("distill", MethodKind::Distill, 0, 20, 10, flat(0.43, 0.9)),
            run("distill", MethodKind::Distill, 1, 20, 10, flat(0.44, 0.9)),
            run("distill", MethodKind::Distill, 2, 20, 10, flat(0.99, 0.9)),
            run("alternate-20", MethodKind::Alternate, 0, 20, 10, flat(0.0, 0.0)),
        ];
        runs[5].config.method.switch_every = 20;
        let p = paired(&summarise(&runs), &runs);
        let d = &p.methods[0];
        assert_eq!((d.control.as_str(), d.seeds.as_slice()), ("alternate", &[0, 1][..]), "seed 2 has no control");
        assert!((d.metrics[0].mean - 0.025).abs() < 1e-12 && (d.metrics[2].mean + 0.1).abs() < 1e-12, "{d:?}");
        assert!((d.metrics[0].std - 0.005 * 2f64.sqrt()).abs() < 1e-12, "{d:?}");
    }

    #[test]
    fn a_method_without_its_alternate_control_is_left_out_and_named() {
        let mut runs = vec![
            run("alternate", MethodKind::Alternate, 0, 20, 10, flat(0.4, 1.0)),
            run("masked-distill", MethodKind::MaskedDistill, 0, 20, 10, flat(0.4, 1.0)),
            run("full", MethodKind::Full, 0, 20, 10, flat(0.5, 0.8)),
        ];
        runs[1].config.method.switch_every = 250;
        let p = paired(&summarise(&runs), &runs);
        assert!(p.methods.is_empty(), "{p:?}");
        assert_eq!(
            p.missing,
            ["`masked-distill`: its control, an `alternate` run with switch_every 250, is not in the input"]
        );
    }
}
