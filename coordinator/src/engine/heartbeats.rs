//! Workers whose heartbeats stopped: the scheduler declares them lost, the
//! hub shows it. The loop checks at every tick, waiting or collecting.

use std::time::Duration;

use super::run::Engine;
use crate::hub::{EventKind, HubState, WorkerActivity};

/// How often the loop looks at heartbeats and deadlines when nothing happens.
pub(super) const TICK: Duration = Duration::from_millis(100);

impl Engine {
    /// Declares lost every worker without a heartbeat for `heartbeat_timeout_ms`.
    pub(super) fn expire(&self, st: &mut HubState) {
        let now = self.hub.now_ms();
        for id in st.scheduler.expire(now, self.heartbeat_timeout_ms) {
            if let Some(w) = st.workers.get_mut(&id) {
                w.activity = WorkerActivity::Lost;
                let (worker, task, host) = (w.name.clone(), w.task, w.host.clone());
                tracing::warn!(worker = %worker, "worker lost (no heartbeat)");
                self.hub.emit(
                    st,
                    EventKind::WorkerLost {
                        worker,
                        task,
                        host,
                        reason: format!("no heartbeat for {} ms", self.heartbeat_timeout_ms),
                    },
                );
            }
        }
    }
}
