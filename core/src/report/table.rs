//! The results table rendered as Markdown (percent, mean ± std) and as CSV
//! (fractions as in `final.json`).

use std::fmt::Write as _;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
