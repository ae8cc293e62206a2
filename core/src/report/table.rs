//! The report's tables rendered as Markdown and as CSV: the results table
//! (Markdown in percent, mean ± std; CSV in fractions as in `final.json`), the
//! forgetting table ([`super::forgetting`]; mIoU points and abs err in both)
//! and the paired comparison against `alternate` ([`super::paired`]; Markdown
//! in points, CSV in fractions).

use std::fmt::Write as _;

use super::forgetting::MethodForgetting;
use super::paired::Paired;
use super::summary::{MethodSummary, METRICS};

fn pct(v: f64, percent: bool) -> f64 {
    if percent {
        v * 100.0
    } else {
        v
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:+.digits$}"))
}

/// The results table in Markdown.
pub fn markdown(summary: &[MethodSummary]) -> String {
    let mut s = String::new();
    let _ = write!(s, "| method | seeds |");
    for (_, name, _) in METRICS {
        let _ = write!(s, " {name} |");
    }
    s.push_str(" Δm vs full (%) | Δm vs half (%) | gap closed |\n|---|---|");
    for _ in METRICS {
        s.push_str("---|");
    }
    s.push_str("---|---|---|\n");
    for m in summary {
        let _ = write!(s, "| `{}` | {} |", m.label, m.seeds.len());
        for ((key, _, _), (mean, std)) in METRICS.iter().zip(&m.stats) {
            let percent = matches!(*key, "miou" | "pixel_acc" | "delta1");
            let digits = if percent { 2 } else { 4 };
            let _ = write!(s, " {:.digits$} ± {:.digits$} |", pct(*mean, percent), pct(*std, percent));
        }
        let gap = m.gap_closed.map_or("–".into(), |g| format!("{:.0} %", g * 100.0));
        let _ = writeln!(s, " {} | {} | {gap} |", opt(m.delta_full, 2), opt(m.delta_half, 2));
    }
    s
}

/// The results table as CSV (fractions as in `final.json`, not percent).
pub fn csv(summary: &[MethodSummary]) -> String {
    let mut s = String::from("method,kind,seeds");
    for (k, _, _) in METRICS {
        let _ = write!(s, ",{k}_mean,{k}_std");
    }
    s.push_str(",delta_m_vs_full,delta_m_vs_half,gap_closed\n");
    for m in summary {
        let seeds = m.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
        let _ = write!(s, "{},{},{seeds}", m.label, m.method);
        for (mean, std) in &m.stats {
            let _ = write!(s, ",{mean:.6},{std:.6}");
        }
        let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        let _ = writeln!(s, ",{},{},{}", f(m.delta_full), f(m.delta_half), f(m.gap_closed));
    }
    s
}

/// `mean ± std` with `digits` decimals, `–` when there is no value.
fn pm(v: (f64, f64), digits: usize) -> String {
    if v.0.is_finite() {
        format!("{:+.digits$} ± {:.digits$}", v.0, v.1)
    } else {
        "–".into()
    }
}

/// The `## Forgetting` section: its definitions, then one row per method; `steps` is the runs' length.
pub fn forgetting_markdown(rows: &[MethodForgetting], steps: usize) -> String {
    let mut s = format!(
        "## Forgetting\n\nAt consecutive phase ends — a segmentation phase ending at step a, then a depth phase \
         ending at step b — segmentation forgetting is mIoU(a) − mIoU(b), in mIoU points; for a depth phase ending \
         at a′, then a segmentation phase ending at b′, depth forgetting is abs err(b′) − abs err(a′). Positive: \
         the task got worse while the other one trained. Only pairs whose first phase end is in the second half of \
         training (after step {}) count, so that early learning, where both tasks improve in every phase, does \
         not mask the forgetting. Each seed's value is the mean over its pairs; the table shows mean ± sample std \
         over seeds and the pairs used over all seeds. Methods whose steps train both tasks (phases \"none\") are \
         measured at the same steps, the phase ends of `alternate` with the same switch_every, roles alternating: \
         that is the noise floor, what a metric moves between two evaluations with no task switch. A method whose \
         evaluations are not at its phase ends (train.eval_every must divide method.switch_every) is n/a.\n\n\
         | method | phases | seeds | seg forgetting (mIoU points) | depth forgetting (abs err) | pairs (seg / depth) |\n\
         |---|---|---|---|---|---|\n",
        steps / 2
    );
    for f in rows {
        let phases = if f.phased {
            format!("every {} steps", f.switch_every)
        } else {
            format!("none: noise floor, every {} steps", f.switch_every)
        };
        let _ = match &f.stats {
            Some(st) => writeln!(
                s,
                "| `{}` | {phases} | {} | {} | {} | {} / {} |",
                f.label,
                st.runs,
                pm(st.seg, 2),
                pm(st.depth, 4),
                st.seg_pairs,
                st.depth_pairs
            ),
            None => {
                let na = "n/a (evaluations not at phase ends)";
                writeln!(s, "| `{}` | {phases} | – | {na} | {na} | – |", f.label)
            }
        };
    }
    s
}

/// The forgetting table as CSV (mIoU points and abs err, as in Markdown; empty where there is no value).
pub fn forgetting_csv(rows: &[MethodForgetting]) -> String {
    let mut s = String::from(
        "method,kind,role,switch_every,status,seeds,seg_forgetting_points_mean,seg_forgetting_points_std,\
         depth_forgetting_abs_err_mean,depth_forgetting_abs_err_std,seg_pairs,depth_pairs\n",
    );
    let num = |v: f64| if v.is_finite() { format!("{v:.6}") } else { String::new() };
    for f in rows {
        let role = if f.phased { "phases" } else { "noise_floor" };
        let _ = write!(s, "{},{},{role},{},", f.label, f.method, f.switch_every);
        let _ = match &f.stats {
            Some(st) => writeln!(
                s,
                "ok,{},{},{},{},{},{},{}",
                st.runs,
                num(st.seg.0),
                num(st.seg.1),
                num(st.depth.0),
                num(st.depth.1),
                st.seg_pairs,
                st.depth_pairs
            ),
            None => writeln!(s, "not_at_phase_ends,0,,,,,0,0"),
        };
    }
    s
}

fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => format!("p = {p:.1e}"),
        Some(p) => format!("p = {p:.3}"),
        None => "p n/a".into(),
    }
}

/// The `## Paired against alternate` section: its definitions, one row per
/// method (difference method − control per metric, percent metrics in
/// points), then one line per method left out.
pub fn paired_markdown(paired: &Paired) -> String {
    let mut s = String::from(
        "## Paired against alternate\n\nRuns are paired by seed (seed k gives every method the same split, \
         initialisation and draws). Each method's control is the `alternate` run with the same \
         method.switch_every; `full`, `half` and the controls themselves are not compared. Each cell is the \
         per-seed difference method − control, mean ± sample std over the pairs (percent metrics in points; for \
         abs err and rel err negative is better), and the two-sided p-value of a paired t-test (Student t, n − 1 \
         degrees of freedom). With fewer than two pairs p is n/a; when every difference is zero p is 1; when every \
         difference is the same non-zero value (zero variance) p is n/a.\n\n",
    );
    if !paired.methods.is_empty() {
        s.push_str("| method | control | pairs |");
        for (_, name, _) in METRICS {
            let _ = write!(s, " {} |", name.replace("(%)", "(points)"));
        }
        s.push_str("\n|---|---|---|");
        for _ in METRICS {
            s.push_str("---|");
        }
        s.push('\n');
    }
    for m in &paired.methods {
        let _ = write!(s, "| `{}` | `{}` | {} |", m.label, m.control, m.seeds.len());
        for (d, (_, _, percent)) in m.metrics.iter().zip(METRICS) {
            let (scale, digits) = if percent { (100.0, 2) } else { (1.0, 4) };
            let cell = if m.seeds.len() < 2 {
                format!("{:+.digits$}", d.mean * scale)
            } else {
                format!("{:+.digits$} ± {:.digits$}", d.mean * scale, d.std * scale)
            };
            let _ = write!(s, " {cell} ({}) |", p_text(d.p));
        }
        s.push('\n');
    }
    if paired.methods.is_empty() && paired.missing.is_empty() {
        s.push_str("No method to compare: every run is `full`, `half` or `alternate`.\n");
    }
    if !paired.missing.is_empty() {
        s.push('\n');
    }
    for line in &paired.missing {
        let _ = writeln!(s, "Left out: {line}.");
    }
    s
}

/// The paired comparison as CSV, one row per method and metric (fractions as in `final.json`).
pub fn paired_csv(paired: &Paired) -> String {
    let mut s = String::from("method,control,metric,pairs,diff_mean,diff_std,p\n");
    for m in &paired.methods {
        for d in &m.metrics {
            let p = d.p.map_or(String::new(), |p| format!("{p:.6}"));
            let _ = writeln!(s, "{},{},{},{},{:.6},{:.6},{p}", m.label, m.control, d.key, m.seeds.len(), d.mean, d.std);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::forgetting::ForgettingStats;
    use crate::report::paired::{PairedMethod, PairedMetric};

    fn summary() -> MethodSummary {
        MethodSummary {
            label: "distill".into(),
            method: "distill".into(),
            seeds: vec![1, 2],
            stats: vec![(0.5, 0.01), (0.8, 0.02), (0.12345, 0.001), (0.2, 0.0), (0.7, 0.05)],
            delta_full: Some(-3.0),
            delta_half: Some(1.5),
            gap_closed: Some(0.25),
            curve: Vec::new(),
        }
    }

    #[test]
    fn the_markdown_row_shows_percent_for_scores_and_signed_delta_m() {
        let md = markdown(&[summary()]);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 3, "{md}");
        assert_eq!(
            lines[2],
            "| `distill` | 2 | 50.00 ± 1.00 | 80.00 ± 2.00 | 0.1235 ± 0.0010 | 0.2000 ± 0.0000 | 70.00 ± 5.00 | \
             -3.00 | +1.50 | 25 % |"
        );
    }

    #[test]
    fn the_csv_keeps_fractions_and_leaves_missing_comparisons_empty() {
        let mut m = summary();
        m.delta_full = None;
        let csv = csv(&[m]);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("method,kind,seeds,miou_mean,miou_std,"), "{csv}");
        assert!(lines[1].starts_with("distill,distill,1 2,0.500000,0.010000,"), "{csv}");
        assert!(lines[1].ends_with(",,1.5000,0.2500"), "{csv}");
    }

    fn forgetting_rows() -> Vec<MethodForgetting> {
        let stats =
            ForgettingStats { runs: 2, seg: (0.1234, 0.05), depth: (0.0012, 0.0003), seg_pairs: 50, depth_pairs: 48 };
        vec![
            MethodForgetting {
                label: "alternate".into(),
                method: "alternate".into(),
                phased: true,
                switch_every: 50,
                stats: Some(stats.clone()),
            },
            MethodForgetting {
                label: "full".into(),
                method: "full".into(),
                phased: false,
                switch_every: 50,
                stats: Some(stats),
            },
            MethodForgetting {
                label: "late".into(),
                method: "distill".into(),
                phased: true,
                switch_every: 50,
                stats: None,
            },
        ]
    }

    #[test]
    fn the_forgetting_rows_name_the_noise_floor_and_the_runs_not_measured() {
        let md = forgetting_markdown(&forgetting_rows(), 5000);
        assert!(md.starts_with("## Forgetting\n") && md.contains("after step 2500"), "{md}");
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
        assert_eq!(rows[0], "| `alternate` | every 50 steps | 2 | +0.12 ± 0.05 | +0.0012 ± 0.0003 | 50 / 48 |");
        assert!(rows[1].starts_with("| `full` | none: noise floor, every 50 steps |"), "{md}");
        assert_eq!(
            rows[2],
            "| `late` | every 50 steps | – | n/a (evaluations not at phase ends) | n/a (evaluations not at phase ends) | – |"
        );
        let csv = forgetting_csv(&forgetting_rows());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[2], "full,full,noise_floor,50,ok,2,0.123400,0.050000,0.001200,0.000300,50,48");
        assert_eq!(lines[3], "late,distill,phases,50,not_at_phase_ends,0,,,,,0,0");
    }

    #[test]
    fn the_paired_row_shows_points_and_p_and_the_left_out_methods_are_named() {
        let metric = |key, mean, p| PairedMetric { key, mean, std: 0.01, p };
        let paired = Paired {
            methods: vec![PairedMethod {
                label: "distill".into(),
                control: "alternate".into(),
                seeds: vec![0, 1, 2],
                metrics: vec![
                    metric("miou", -0.012, Some(0.0412)),
                    metric("pixel_acc", 0.0, Some(1.0)),
                    metric("abs_err", 0.00012, Some(0.00001)),
                    metric("rel_err", 0.1, None),
                    metric("delta1", 0.02, Some(0.5)),
                ],
            }],
            missing: vec!["`masked`: its control is missing".into()],
        };
        let md = paired_markdown(&paired);
        let row = md.lines().find(|l| l.starts_with("| `distill`")).expect("row");
        assert_eq!(
            row,
            "| `distill` | `alternate` | 3 | -1.20 ± 1.00 (p = 0.041) | +0.00 ± 1.00 (p = 1.000) | \
             +0.0001 ± 0.0100 (p = 1.0e-5) | +0.1000 ± 0.0100 (p n/a) | +2.00 ± 1.00 (p = 0.500) |"
        );
        assert!(md.contains("| method | control | pairs | mIoU (points) |"), "{md}");
        assert!(md.ends_with("Left out: `masked`: its control is missing.\n"), "{md}");
        let csv = paired_csv(&paired);
        assert_eq!(csv.lines().nth(1), Some("distill,alternate,miou,3,-0.012000,0.010000,0.041200"));
        assert_eq!(csv.lines().nth(4), Some("distill,alternate,rel_err,3,0.100000,0.010000,"));
    }
}
