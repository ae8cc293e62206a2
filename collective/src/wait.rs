//! Waiting for an enqueued collective without blocking in the driver, so
//! that another thread can end the wait.
//!
//! An NCCL all-reduce returns to the host as soon as it is enqueued; what
//! blocks is waiting for the kernel, which never finishes when a peer died.
//! A blocking `cuStreamSynchronize` cannot be interrupted, so the NCCL
//! backend instead polls an event recorded after the collective and checks
//! an [`AbortFlag`] between polls: once the flag is raised (by the worker's
//! watchdog, when the coordinator has moved on without this group), the
//! wait ends and the backend aborts the communicator (`ncclCommAbort`),
//! which ends the stuck kernel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Raised from any thread to end a member's current and later collectives.
#[derive(Debug, Clone, Default)]
pub struct AbortFlag(Arc<AtomicBool>);

impl AbortFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a wait ended other than by completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitEnd {
    /// The flag was raised before the work completed.
    Aborted,
    /// The poll itself failed (a CUDA error).
    Failed(String),
}

/// Polls for `spin` with no sleep (a collective of a few MB finishes in
/// well under a millisecond on NVLink, and a sleep would add its own
/// latency), then sleeps `nap` between polls.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub spin: Duration,
    pub nap: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Polling { spin: Duration::from_millis(2), nap: Duration::from_micros(200) }
    }
}

/// Calls `done` until it answers `Ok(true)`, or `flag` is raised, or `done`
/// fails. The flag is checked before every poll, so a raised flag ends the
/// wait even when the work would complete.
pub fn wait_until(
    mut done: impl FnMut() -> Result<bool, String>,
    flag: &AbortFlag,
    polling: Polling,
) -> Result<(), WaitEnd> {
    let start = Instant::now();
    loop {
        if flag.is_raised() {
            return Err(WaitEnd::Aborted);
        }
        match done() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(WaitEnd::Failed(e)),
        }
        if start.elapsed() < polling.spin {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(polling.nap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Polling = Polling { spin: Duration::from_millis(1), nap: Duration::from_micros(100) };

    #[test]
    fn a_wait_ends_when_the_work_completes() {
        let mut polls = 0;
        let r = wait_until(
            || {
                polls += 1;
                Ok(polls == 5)
            },
            &AbortFlag::new(),
            FAST,
        );
        assert_eq!(r, Ok(()));
        assert_eq!(polls, 5);
    }

    #[test]
    fn a_flag_raised_from_another_thread_ends_a_wait_that_would_never_complete() {
        let flag = AbortFlag::new();
        let raiser = flag.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            raiser.raise();
        });
        let start = Instant::now();
        assert_eq!(wait_until(|| Ok(false), &flag, FAST), Err(WaitEnd::Aborted));
        assert!(start.elapsed() >= Duration::from_millis(30));
        t.join().unwrap();
    }

    #[test]
    fn a_raised_flag_wins_over_completion_and_a_failed_poll_is_reported() {
        let flag = AbortFlag::new();
        flag.raise();
        assert_eq!(wait_until(|| Ok(true), &flag, FAST), Err(WaitEnd::Aborted));
        let r = wait_until(|| Err("CUDA_ERROR_LAUNCH_FAILED".into()), &AbortFlag::new(), FAST);
        assert_eq!(r, Err(WaitEnd::Failed("CUDA_ERROR_LAUNCH_FAILED".into())));
    }
}
