//! Stopping on a signal: the first Ctrl-C (or SIGTERM, for the async
//! commands) asks the run to stop cleanly, the second exits at once with
//! status 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dmtl_coordinator::hub::{Hub, RunState};

/// The exit status after a second signal (128 + SIGINT, as shells report).
const INTERRUPTED: i32 = 130;

/// Ctrl-C or SIGTERM (what Kubernetes and Slurm send).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs `first` on the first Ctrl-C or SIGTERM and exits the process on the
/// second (a task of the current tokio runtime; abort it to stop listening).
pub fn on_shutdown(first: impl FnOnce() + Send + 'static) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        shutdown_signal().await;
        first();
        shutdown_signal().await;
        std::process::exit(INTERRUPTED);
    })
}

/// On the first signal, asks the coordinator's run to stop (it checkpoints and
/// closes the run); `again` names what quits at once in the message
/// ("signal", "Ctrl-C").
pub fn stop_run_on_shutdown(hub: Arc<Hub>, again: &'static str) -> tokio::task::JoinHandle<()> {
    on_shutdown(move || {
        eprintln!("\nstopping: checkpointing and closing the run ({again} again to quit at once)");
        hub.lock().run.state = RunState::Stopping;
        hub.request_stop();
    })
}

/// A flag that the first Ctrl-C sets (training stops at the end of the step,
/// with a checkpoint); the second exits at once. For the synchronous
/// single-process training, which polls the flag between steps. Only the
/// first call in a process installs the handler: a later call's flag is
/// never set (a second Ctrl-C still exits).
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(INTERRUPTED);
        }
        eprintln!("\nstopping after this step (Ctrl-C again to quit at once)");
    });
    stop
}
