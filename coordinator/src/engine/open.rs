//! Opening a round: wait until every active task has its workers, assign
//! them their shares (nccl plane: name their group), and put the round in
//! the hub for the workers to fetch.

use std::collections::BTreeMap;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;

use dmtl_core::method::Pool;

use super::error::EngineError;
use super::heartbeats::TICK;
use super::plan::PlannedStep;
use super::run::{Engine, Progress};
use crate::hub::{EngineMsg, HubState, OpenRound, PushVerdict, RunState};
use crate::nccl_plane::{GroupOutcome, NcclPlane};

/// How trying to open a round ended.
pub(super) enum Opening {
    Opened(OpenedRound),
    /// Plan the step again (the nccl plane rolled back to the coordinator's state).
    Replan,
    Stop,
}

/// Who an opened round has.
pub(super) struct OpenedRound {
    /// The participants given an assignment.
    pub participants: usize,
    /// The participants drawing images from each pool.
    pub planned_workers: BTreeMap<Pool, usize>,
}

impl Engine {
    /// Opens the planned round as soon as every active task has its workers
    /// (numbering it after `p.round`).
    pub(super) fn open_round(&mut self, planned: &PlannedStep, p: &mut Progress) -> Result<Opening, EngineError> {
        loop {
            p.round += 1;
            if let Some(opening) = self.try_open(planned, p.round)? {
                return Ok(opening);
            }
            p.round -= 1; // not opened: the number is free again
            if self.wait_for_workers() {
                return Ok(Opening::Stop);
            }
        }
    }

    /// Opens round `round` if its workers are there (None: they are not).
    fn try_open(&mut self, planned: &PlannedStep, round: u64) -> Result<Option<Opening>, EngineError> {
        let hub = Arc::clone(&self.hub);
        let now = hub.now_ms();
        let mut st = hub.lock();
        self.expire(&mut st);
        let rp = st.scheduler.begin_round(round, &planned.active, now)?;
        if !rp.is_ready() {
            st.run.state = RunState::WaitingForWorkers;
            return Ok(None);
        }
        let mut assignments = self.assignments(round, planned, &rp);
        if let Some(plane) = self.nccl.as_mut() {
            let names = st.workers.iter().map(|(id, w)| (*id, w.name.clone())).collect();
            let current = plane.synced().step == self.merger.step();
            if plane.assign(&names, &mut assignments, planned.want_state, current)? == GroupOutcome::RollBack {
                self.roll_back(&mut st)?;
                return Ok(Some(Opening::Replan));
            }
        }
        let mut planned_workers = BTreeMap::new();
        for a in assignments.values().filter(|a| a.count > 0) {
            *planned_workers.entry(a.pool).or_default() += 1;
        }
        let participants = assignments.len();
        st.run.nccl_generation = self.nccl.as_ref().and_then(NcclPlane::generation).unwrap_or(0);
        st.open = Some(OpenRound { round, assignments });
        st.run.state = RunState::Running;
        st.run.round = round;
        st.run.phase = planned.plan.phase as u64;
        Ok(Some(Opening::Opened(OpenedRound { participants, planned_workers })))
    }

    /// nccl plane: no live worker holds the run's state and the coordinator's
    /// copy is older: abandon the round and roll the counters back to the copy.
    fn roll_back(&mut self, st: &mut HubState) -> Result<(), EngineError> {
        st.scheduler.abandon_round()?;
        let Some(plane) = &self.nccl else { return Ok(()) };
        let synced = plane.synced().clone();
        tracing::warn!(
            from = self.merger.step(),
            to = synced.step,
            "no live worker holds the run's state: rolling back to the coordinator's copy"
        );
        self.merger.state_mut().state = synced;
        st.run.step = self.merger.step() as u64;
        Ok(())
    }

    /// Waits a tick for workers, refusing pushes (no round is open). True
    /// when the run is to stop.
    fn wait_for_workers(&self) -> bool {
        match self.rx.recv_timeout(TICK) {
            Ok(EngineMsg::Stop) | Err(RecvTimeoutError::Disconnected) => true,
            Ok(EngineMsg::Push { header, reply, .. }) => {
                let reason = format!("round {} is closed (no round is open)", header.round);
                let _ = reply.send(Ok(PushVerdict::Refused(reason)));
                false
            }
            Ok(EngineMsg::Wake) | Err(RecvTimeoutError::Timeout) => false,
        }
    }
}
