//! Progress: a bar with ETA, loss and images/s on a terminal; structured log
//! lines otherwise.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmtl_core::metrics::EvalMetrics;
use dmtl_core::train::{Observer, StepReport};
use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    last_log: Instant,
    stop: Arc<AtomicBool>,
}

impl Progress {
    /// A progress display; the first Ctrl-C asks training to stop at the end of
    /// the current step (with a checkpoint), the second exits at once.
    pub fn new() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\nstopping after this step (Ctrl-C again to quit at once)");
        });
        Progress { bar: None, last_log: Instant::now(), stop }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A bar for a counted task (hidden when stderr is not a terminal).
pub fn counter(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} ETA {eta}").expect("valid template"));
    bar.set_message(what.to_string());
    bar
}

impl Observer for Progress {
    fn started(&mut self, start: usize, total: usize, message: &str) {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise} ETA {eta_precise}] {msg}")
                    .expect("valid template"),
            );
            bar.set_position(start as u64);
            bar.reset_eta();
            bar.println(message);
            self.bar = Some(bar);
        }
    }

    fn step(&mut self, r: &StepReport) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(r.step as u64);
                bar.set_message(format!(
                    "loss {:.4} · {:.0} img/s · phase {}",
                    r.losses.total, r.images_per_s, r.phase
                ));
            }
            None => {
                if self.last_log.elapsed() >= Duration::from_secs(10) || r.step == r.total {
                    self.last_log = Instant::now();
                    tracing::info!(
                        step = r.step,
                        total = r.total,
                        phase = r.phase,
                        loss = format!("{:.4}", r.losses.total),
                        images_per_s = format!("{:.1}", r.images_per_s),
                        lr = format!("{:.2e}", r.lr),
                        "training"
                    );
                }
            }
        }
    }

    fn evaluated(&mut self, step: usize, m: &EvalMetrics) {
        let line = format!(
            "step {step}: mIoU {:.2} % · pixel acc {:.2} % · abs err {:.3} · rel err {:.3} · δ<1.25 {:.2} %",
            m.seg.miou * 100.0,
            m.seg.pixel_acc * 100.0,
            m.depth.abs_err,
            m.depth.rel_err,
            m.depth.delta1 * 100.0
        );
        match &self.bar {
            Some(bar) => bar.println(line),
            None => tracing::info!(step, "{line}"),
        }
    }

    fn should_stop(&mut self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn checkpointed(&mut self, path: &Path) {
        if self.bar.is_none() {
            tracing::info!(path = %path.display(), "checkpoint written");
        }
    }
}
