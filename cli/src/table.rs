//! The metrics table printed at the end of a run and by `dmtl eval`.

use dmtl_core::metrics::EvalMetrics;

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
