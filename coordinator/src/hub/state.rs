//! The hub itself: the shared state, its lock, and the channels to the round
//! loop, to `wait_round` callers and to `Watch` subscribers.

use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, watch};

use super::{EngineMsg, EventKind, HubError, OpenRound, RunEvent, RunFacts, RunView, Snapshot, WorkerInfo};
use crate::scheduler::{Scheduler, WorkerId};

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The mutable part of the hub.
pub struct HubState {
    pub scheduler: Scheduler,
    pub workers: BTreeMap<WorkerId, WorkerInfo>,
    pub open: Option<OpenRound>,
    pub weights: Option<Snapshot>,
    pub teacher: Option<Snapshot>,
    pub run: RunView,
    next_seq: u64,
}

/// Shared between the RPC handlers and the round loop.
pub struct Hub {
    pub facts: RunFacts,
    state: Mutex<HubState>,
    engine: Mutex<Sender<EngineMsg>>,
    /// Bumped whenever a round opens or the run ends (wakes `wait_round`).
    pub(super) round_tx: watch::Sender<u64>,
    events: broadcast::Sender<RunEvent>,
    clock: Instant,
    /// Distinguishes this coordinator process's worker names from an earlier one's.
    pub(super) incarnation: String,
    pub(super) started_unix_ms: u64,
}

impl Hub {
    pub fn new(facts: RunFacts, scheduler: Scheduler, run: RunView, engine: Sender<EngineMsg>) -> Arc<Hub> {
        let (round_tx, _) = watch::channel(0);
        let (events, _) = broadcast::channel(4096);
        let started_unix_ms = unix_ms();
        // Short and different for every coordinator start.
        let incarnation = format!("{:x}", (started_unix_ms ^ u64::from(std::process::id()) << 20) & 0xffff_ffff);
        Arc::new(Hub {
            facts,
            state: Mutex::new(HubState {
                scheduler,
                workers: BTreeMap::new(),
                open: None,
                weights: None,
                teacher: None,
                run,
                next_seq: 0,
            }),
            engine: Mutex::new(engine),
            round_tx,
            events,
            clock: Instant::now(),
            incarnation,
            started_unix_ms,
        })
    }

    /// Milliseconds on the hub's monotonic clock (the scheduler's time).
    pub fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// The shared state; held briefly, never across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `msg` to the round loop; fails once the loop has stopped.
    pub(super) fn send(&self, msg: EngineMsg) -> Result<(), HubError> {
        let tx = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        tx.send(msg).map_err(|_| HubError::Unavailable("the coordinator's round loop has stopped".into()))
    }

    /// Asks the round loop to re-check the round.
    pub(super) fn wake(&self) {
        let _ = self.send(EngineMsg::Wake);
    }

    /// Asks the round loop to stop with a checkpoint.
    pub fn request_stop(&self) {
        let _ = self.send(EngineMsg::Stop);
    }

    /// Tells `wait_round` callers to look again.
    pub fn notify_round(&self) {
        self.round_tx.send_modify(|g| *g += 1);
    }

    /// Records and broadcasts an event.
    pub fn emit(&self, state: &mut HubState, kind: EventKind) {
        state.next_seq += 1;
        let event = RunEvent { seq: state.next_seq, unix_ms: unix_ms(), kind };
        let _ = self.events.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.events.subscribe()
    }
}
