//! Collecting a round: answer every pushed update (checked against the
//! scheduler and the round's weights), and close the round when the barrier
//! says so — complete, timed out (merge without the stragglers), stalled
//! (too few workers left: retry), its collective failed, or a stop.

use std::collections::BTreeMap;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dmtl_core::train::Update;

use super::error::EngineError;
use super::heartbeats::TICK;
use super::plan::PlannedStep;
use super::run::{Engine, Progress};
use crate::hub::{EngineMsg, HubError, PushHeader, PushVerdict, UpdateKind};
use crate::scheduler::{FinishedRound, RoundStatus, UpdateVerdict, WorkerId};

/// What a round's collection gathered.
pub(super) struct Collected {
    /// The accepted updates by worker.
    pub updates: BTreeMap<WorkerId, Update>,
    /// nccl plane: rank 0's training state, when it pushed it.
    pub state: Option<Bytes>,
    /// When the last update was accepted (the round's opening before any).
    pub last_push_at: Instant,
    /// The finished round; None when it was abandoned (stalled, failed, stopping).
    pub finished: Option<FinishedRound>,
    /// nccl plane: a member said the round's collective failed.
    collective_failed: bool,
}

/// Where the open round stands after a tick.
enum Barrier {
    Open,
    Finished(FinishedRound),
    Abandoned,
}

/// Why an update that named a round was refused (empty when accepted).
pub(super) fn verdict_reason(v: UpdateVerdict, round: u64, open: Option<u64>) -> String {
    match v {
        UpdateVerdict::Accept => String::new(),
        UpdateVerdict::UnknownWorker => "unknown worker".into(),
        UpdateVerdict::Stale => match open {
            Some(o) => format!("round {round} is closed (round {o} is open)"),
            None => format!("round {round} is closed"),
        },
        UpdateVerdict::NotParticipant => format!("the worker is not a participant of round {round}"),
        UpdateVerdict::Duplicate => format!("the worker already pushed an update for round {round}"),
        UpdateVerdict::Dropped => format!("the worker was dropped from round {round} (missed heartbeats or left)"),
    }
}

impl Engine {
    /// Collects the open round's updates until the barrier closes it (or a
    /// stop is asked for: `p.stop`).
    pub(super) fn collect(
        &mut self,
        planned: &PlannedStep,
        opened_at: Instant,
        p: &mut Progress,
    ) -> Result<Collected, EngineError> {
        let weights_version = self.merger.version();
        let mut c = Collected {
            updates: BTreeMap::new(),
            state: None,
            last_push_at: opened_at,
            finished: None,
            collective_failed: false,
        };
        loop {
            match self.rx.recv_timeout(TICK) {
                Ok(EngineMsg::Push { id, header, update, state, reply }) => {
                    let verdict = self.on_push(id, &header, update, planned.expected, weights_version, &mut c.updates);
                    match &verdict {
                        Ok(PushVerdict::Accepted) => c.accepted(&header, state, p.round),
                        Ok(PushVerdict::Refused(reason)) => {
                            tracing::debug!(worker = %header.worker, reason, "update refused")
                        }
                        Err(_) => {}
                    }
                    let _ = reply.send(verdict);
                }
                Ok(EngineMsg::Stop) | Err(RecvTimeoutError::Disconnected) => p.stop = true,
                Ok(EngineMsg::Wake) | Err(RecvTimeoutError::Timeout) => {}
            }
            match self.barrier(p.round, p.stop, c.collective_failed)? {
                Barrier::Open => {}
                Barrier::Finished(f) => {
                    c.finished = Some(f);
                    return Ok(c);
                }
                Barrier::Abandoned => return Ok(c),
            }
        }
    }

    /// Closes the round when it is over (abandoning it on a stop, a failed
    /// collective or a stall).
    fn barrier(&mut self, round: u64, stop: bool, collective_failed: bool) -> Result<Barrier, EngineError> {
        let hub = Arc::clone(&self.hub);
        let now = hub.now_ms();
        let mut st = hub.lock();
        self.expire(&mut st);
        if stop {
            st.scheduler.abandon_round().ok();
            st.open = None;
            return Ok(Barrier::Abandoned);
        }
        if collective_failed {
            // The members kept their state; the next round names a new generation.
            st.scheduler.abandon_round()?;
            st.open = None;
            self.retire_group();
            return Ok(Barrier::Abandoned);
        }
        match st.scheduler.round_status(now) {
            Some(status @ (RoundStatus::Complete | RoundStatus::TimedOut { .. })) => {
                if !matches!(status, RoundStatus::Complete) {
                    tracing::warn!(round, "round timed out; merging without its stragglers");
                }
                let f = st.scheduler.finish_round(now)?;
                st.open = None;
                Ok(Barrier::Finished(f))
            }
            Some(RoundStatus::Stalled { .. }) => {
                tracing::warn!(round, "round stalled (too few workers left); retrying it");
                st.scheduler.abandon_round()?;
                st.open = None;
                self.retire_group(); // its members may be stuck in the collective
                Ok(Barrier::Abandoned)
            }
            _ => Ok(Barrier::Open),
        }
    }

    /// nccl plane: the next round starts a new group generation.
    fn retire_group(&mut self) {
        if let Some(plane) = self.nccl.as_mut() {
            plane.retire();
        }
    }

    /// Answers one pushed update: checks it against the scheduler and the
    /// model, records it when accepted.
    fn on_push(
        &self,
        id: WorkerId,
        header: &PushHeader,
        update: Update,
        expected: UpdateKind,
        weights_version: u64,
        updates: &mut BTreeMap<WorkerId, Update>,
    ) -> Result<PushVerdict, HubError> {
        let open = self.hub.lock().scheduler.open_round().map(|p| p.round);
        let verdict = self.hub.lock().scheduler.classify_update(id, header.round);
        if verdict == UpdateVerdict::UnknownWorker {
            return Err(HubError::UnknownWorker(header.worker.clone()));
        }
        if !verdict.is_accepted() {
            return Ok(PushVerdict::Refused(verdict_reason(verdict, header.round, open)));
        }
        let nccl = self.nccl.is_some();
        if (nccl && !header.kind.is_nccl()) || (!nccl && header.kind != expected) {
            return Err(HubError::InvalidArgument(format!(
                "round {} expects {:?} updates, got {:?}",
                header.round,
                if nccl { UpdateKind::Receipt } else { expected },
                header.kind
            )));
        }
        if header.weights_version != weights_version {
            return Ok(PushVerdict::Refused(format!(
                "the update starts from weights version {}, round {} from version {weights_version}",
                header.weights_version, header.round
            )));
        }
        let mut st = self.hub.lock();
        let verdict = st.scheduler.push(id, header.round);
        if !verdict.is_accepted() {
            return Ok(PushVerdict::Refused(verdict_reason(verdict, header.round, open)));
        }
        if let Some(w) = st.workers.get_mut(&id) {
            w.last_round = w.last_round.max(header.round);
        }
        updates.insert(id, update);
        Ok(PushVerdict::Accepted)
    }
}

impl Collected {
    /// Notes an accepted push: its time, rank 0's state, a failed collective.
    fn accepted(&mut self, header: &PushHeader, state: Option<Bytes>, round: u64) {
        self.last_push_at = Instant::now();
        match header.kind {
            UpdateKind::State => self.state = state,
            UpdateKind::Failed => {
                tracing::warn!(worker = %header.worker, round, "the round's collective failed");
                self.collective_failed = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_update_has_no_reason() {
        assert_eq!(verdict_reason(UpdateVerdict::Accept, 3, Some(3)), "");
    }

    #[test]
    fn a_stale_update_names_the_open_round_when_there_is_one() {
        assert_eq!(verdict_reason(UpdateVerdict::Stale, 3, Some(5)), "round 3 is closed (round 5 is open)");
        assert_eq!(verdict_reason(UpdateVerdict::Stale, 3, None), "round 3 is closed");
    }

    #[test]
    fn each_refusal_says_what_the_worker_did_wrong() {
        assert_eq!(
            verdict_reason(UpdateVerdict::NotParticipant, 4, Some(4)),
            "the worker is not a participant of round 4"
        );
        assert_eq!(
            verdict_reason(UpdateVerdict::Duplicate, 4, Some(4)),
            "the worker already pushed an update for round 4"
        );
        assert_eq!(
            verdict_reason(UpdateVerdict::Dropped, 4, Some(4)),
            "the worker was dropped from round 4 (missed heartbeats or left)"
        );
        assert_eq!(verdict_reason(UpdateVerdict::UnknownWorker, 4, None), "unknown worker");
    }
}
