//! Process-level settings that libgomp and glibc read only once, at start-up.
//!
//! Measured on the 2-core CPU machines this project runs on (BENCHMARKS.md):
//! - libgomp's default makes idle OpenMP threads sleep on a futex between the
//!   many small parallel regions of a training step once another thread (the
//!   data loader) competes for the cores; `OMP_WAIT_POLICY=ACTIVE` keeps them
//!   spinning, as they do in a plain PyTorch process.
//! - glibc returns large freed blocks to the kernel (mmap/munmap, trimming), so
//!   every step's activations fault in fresh zeroed pages; raising the mmap and
//!   trim thresholds keeps them in the heap.
//!
//! Training commands (`train`, `eval`) set the defaults the user did not set
//! and re-execute the binary once. The coordinator (`coordinator`, and the
//! own process of `local` and `experiment`) gets `OMP_WAIT_POLICY=PASSIVE`
//! instead: its optimizer step is hundreds of tiny parallel regions, between
//! which libgomp's default spinning took 85 % of a core from the workers beside
//! it (measured with perf, BENCHMARKS.md). Workers keep libgomp's default
//! (spin briefly, then sleep): a worker waits between rounds, and with `ACTIVE`
//! the idle worker of an alternating method spun on a core the active one
//! needed. `DMTL_RUNTIME_TUNING=0` turns this off.

use std::os::unix::process::CommandExt;

/// Set in a tuned process to the variables tuning set; `dmtl local` removes
/// them (and it) for its workers, which tune themselves.
pub const MARK: &str = "DMTL_RUNTIME_TUNED";

/// The variables this process's tuning set (not the user).
pub fn tuned_variables() -> Vec<String> {
    std::env::var(MARK).map(|v| v.split(',').filter(|k| !k.is_empty()).map(String::from).collect()).unwrap_or_default()
}

const DEFAULTS: [(&str, &str); 3] =
    [("OMP_WAIT_POLICY", "ACTIVE"), ("MALLOC_MMAP_THRESHOLD_", "268435456"), ("MALLOC_TRIM_THRESHOLD_", "1073741824")];

/// How idle OpenMP threads wait.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Keep spinning (`ACTIVE`): one training process owns the cores.
    Spin,
    /// libgomp's default: spin briefly, then sleep (workers).
    Default,
    /// Sleep at once (`PASSIVE`): the coordinator.
    Sleep,
}

/// Re-executes the current process with the tuned environment, unless it is
/// already tuned, tuning is disabled, or every variable is set by the user.
pub fn tune(waiting: Waiting) {
    if std::env::var_os(MARK).is_some() || std::env::var("DMTL_RUNTIME_TUNING").is_ok_and(|v| v == "0") {
        return;
    }
    let missing: Vec<(&str, &str)> = DEFAULTS
        .iter()
        .filter(|(k, _)| *k != "OMP_WAIT_POLICY" || waiting != Waiting::Default)
        .map(|&(k, v)| if k == "OMP_WAIT_POLICY" && waiting == Waiting::Sleep { (k, "PASSIVE") } else { (k, v) })
        .filter(|(k, _)| std::env::var_os(k).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut cmd = std::process::Command::new(exe);
    let set: Vec<&str> = missing.iter().map(|(k, _)| *k).collect();
    cmd.args(std::env::args_os().skip(1)).env(MARK, set.join(",")).envs(missing);
    let err = cmd.exec(); // returns only on failure
    tracing::warn!(error = %err, "could not re-execute with tuned OpenMP/malloc settings; continuing");
}
