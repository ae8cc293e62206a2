//! The heartbeat task: every interval it reports the worker's round, state
//! and throughput, and learns the coordinator's current round and whether the
//! coordinator wants the worker to register again.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dmtl_proto::connect::Client;
use dmtl_proto::v1;

/// State shared between the session and its heartbeat task.
pub(super) struct Shared {
    worker: Mutex<String>,
    pub(super) round: AtomicU64,
    state: AtomicU8,
    pub(super) images_per_s: AtomicU64,
    rejoin: AtomicBool,
    /// The coordinator's current round, from the last heartbeat's answer.
    pub(super) coordinator_round: AtomicU64,
}

impl Shared {
    pub(super) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            worker: Mutex::new(String::new()),
            round: AtomicU64::new(0),
            state: AtomicU8::new(state_code(v1::WorkerState::Starting)),
            images_per_s: AtomicU64::new(0f64.to_bits()),
            rejoin: AtomicBool::new(false),
            coordinator_round: AtomicU64::new(0),
        })
    }

    /// A new registration as `worker`: no round yet, no rejoin asked.
    pub(super) fn begin_session(&self, worker: &str) {
        *self.worker.lock().unwrap_or_else(|p| p.into_inner()) = worker.to_string();
        self.rejoin.store(false, Ordering::SeqCst);
        self.round.store(0, Ordering::SeqCst);
    }

    pub(super) fn set_state(&self, state: v1::WorkerState) {
        self.state.store(state_code(state), Ordering::SeqCst);
    }

    /// Whether the coordinator asked this worker to register again.
    pub(super) fn rejoin_asked(&self) -> bool {
        self.rejoin.load(Ordering::SeqCst)
    }

    fn request(&self) -> v1::HeartbeatRequest {
        v1::HeartbeatRequest {
            worker_id: self.worker.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            round: self.round.load(Ordering::SeqCst),
            images_per_s: f64::from_bits(self.images_per_s.load(Ordering::SeqCst)),
            state: i32::from(self.state.load(Ordering::SeqCst)),
        }
    }
}

fn state_code(s: v1::WorkerState) -> u8 {
    s as i32 as u8
}

/// Sends a heartbeat every `every` until aborted; a failed heartbeat is skipped.
pub(super) async fn heartbeats(mut client: Client, shared: Arc<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Ok(r) = client.heartbeat(shared.request()).await {
            let r = r.into_inner();
            if r.rejoin_required {
                shared.rejoin.store(true, Ordering::SeqCst);
            }
            shared.coordinator_round.store(r.current_round, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_reports_the_sessions_worker_round_and_state() {
        let shared = Shared::new();
        shared.round.store(7, Ordering::SeqCst);
        shared.rejoin.store(true, Ordering::SeqCst);
        shared.begin_session("w-3");
        shared.set_state(v1::WorkerState::Pushing);
        let r = shared.request();
        assert_eq!((r.worker_id.as_str(), r.round, r.state), ("w-3", 0, v1::WorkerState::Pushing as i32));
        assert!(!shared.rejoin_asked(), "a new session starts without a rejoin request");
    }
}
