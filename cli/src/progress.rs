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

use crate::stop::ctrl_c_flag;
use crate::table::metrics_line;

/// The display of a single-process training run (`dmtl train`, `dmtl experiment --engine train`).
pub struct Progress {
    bar: Option<ProgressBar>,
    last_log: Instant,
    stop: Arc<AtomicBool>,
}

impl Progress {
    /// A progress display; the first Ctrl-C asks training to stop at the end of
    /// the current step (with a checkpoint), the second exits at once.
    pub fn new() -> Self {
        Progress { bar: None, last_log: Instant::now(), stop: ctrl_c_flag() }
    }

    /// Clears the bar.
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

/// The bar of a training run, `total` steps long, with elapsed time, ETA and a
/// message (shown only on a terminal: callers check).
pub fn run_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise} ETA {eta_precise}] {msg}")
            .expect("valid template"),
    );
    bar
}

impl Observer for Progress {
    fn started(&mut self, start: usize, total: usize, message: &str) {
        if std::io::stderr().is_terminal() {
            let bar = run_bar(total as u64);
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
        let line = metrics_line(step as u64, m);
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
