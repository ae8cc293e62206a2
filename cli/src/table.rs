//! What a run prints at its end (train, coordinator, local) and `dmtl eval`
//! prints: the summary line, the metrics table, the metrics as one line.

use std::path::Path;

use anyhow::bail;
use dmtl_coordinator::engine::EngineEnd;
use dmtl_core::metrics::EvalMetrics;
use dmtl_core::run_dir::FinalReport;

/// The summary line and metrics table of a finished run (train, coordinator, local).
pub fn print_final(report: &FinalReport, run_dir: &Path) {
    println!(
        "\n{} · seed {} · {} steps · {} images · {:.0} s  ({})",
        report.method,
        report.seed,
        report.steps,
        report.images_seen,
        report.wall_s,
        run_dir.join("final.json").display()
    );
    print_metrics(&report.metrics());
}

/// How a distributed run ended, for the user: the final table, or an error
/// saying where the checkpoint to continue from is.
pub fn print_end(end: EngineEnd, run_dir: &Path) -> anyhow::Result<()> {
    match end {
        EngineEnd::Finished(report) => {
            print_final(&report, run_dir);
            Ok(())
        }
        EngineEnd::Stopped { step, checkpoint } => {
            bail!("stopped at step {step}; checkpoint {} (continue with --resume)", checkpoint.display())
        }
    }
}

/// The metrics table.
pub fn print_metrics(m: &EvalMetrics) {
    println!("┌────────────────────┬──────────┐");
    println!("│ metric             │    value │");
    println!("├────────────────────┼──────────┤");
    for (name, value) in [
        ("seg mIoU (%)", m.seg.miou * 100.0),
        ("seg pixel acc (%)", m.seg.pixel_acc * 100.0),
        ("depth abs err", m.depth.abs_err),
        ("depth rel err", m.depth.rel_err),
        ("depth δ<1.25 (%)", m.depth.delta1 * 100.0),
    ] {
        println!("│ {name:<18} │ {value:>8.3} │");
    }
    println!("└────────────────────┴──────────┘");
}

/// The metrics of an evaluation after `step`, as one line.
pub fn metrics_line(step: u64, m: &EvalMetrics) -> String {
    format!(
        "step {step}: mIoU {:.2} % · pixel acc {:.2} % · abs err {:.3} · rel err {:.3} · δ<1.25 {:.2} %",
        m.seg.miou * 100.0,
        m.seg.pixel_acc * 100.0,
        m.depth.abs_err,
        m.depth.rel_err,
        m.depth.delta1 * 100.0
    )
}

#[cfg(test)]
mod tests {
    use dmtl_core::metrics::{DepthMetrics, SegMetrics};

    use super::*;

    #[test]
    fn the_metrics_line_gives_percentages_for_shares_and_errors_as_they_are() {
        let m = EvalMetrics {
            seg: SegMetrics { miou: 0.4321, pixel_acc: 0.875, per_class_iou: Vec::new() },
            depth: DepthMetrics { abs_err: 0.12345, rel_err: 0.5, delta1: 0.25 },
        };
        assert_eq!(
            metrics_line(40, &m),
            "step 40: mIoU 43.21 % · pixel acc 87.50 % · abs err 0.123 · rel err 0.500 · δ<1.25 25.00 %"
        );
    }
}
