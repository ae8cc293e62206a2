//! The metrics table printed at the end of a run and by `dmtl eval`.

use std::path::Path;

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
