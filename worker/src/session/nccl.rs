//! A worker's round on the `nccl` data plane, on the async side: load the
//! coordinator's training state when the group has no holder of it, hand the
//! step to the training thread (which all-reduces with the group), abort a
//! collective that waits on a dead member once the coordinator has moved on,
//! and push a receipt (no tensors), the training state (rank 0, before an
//! evaluation or checkpoint) or the news that the collective failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dmtl_collective::group::{Membership, UniqueId};
use dmtl_collective::{AbortHandle, Backend};
use dmtl_proto::connect::Client;
use dmtl_proto::v1::{self, UpdateChunk};
use dmtl_proto::{chunk_messages, receive};
use tonic::Status;

use super::convert::train_losses;
use crate::trainer::{Job, NcclOutcome, NcclStep, RoundWork, TrainerHandle};
use crate::WorkerError;

/// How long after the coordinator moved on the training thread may stay in
/// an nccl step before the worker gives it up and exits. An aborted
/// collective returns at once; a step that is computing returns at its next
/// collective, which fails; only a thread blocked in NCCL's group
/// initialisation (which has no timeout) outlasts it.
pub(super) const STUCK_GRACE: Duration = Duration::from_secs(60);

/// What the watchdog of an nccl round does at one of its ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tick {
    Wait,
    /// Abort the collective (once, as soon as the coordinator has moved on
    /// and the communicator's abort handle exists).
    Abort,
    /// Give the training thread up: `grace` after the coordinator moved on
    /// it is still in the step, stuck where no abort reaches (NCCL's group
    /// initialisation waits for every member, without a timeout). The worker
    /// exits, so that its supervisor restarts it into the next generation.
    GiveUp {
        aborted: bool,
    },
}

/// Watches one nccl round from the async side while the training thread runs it.
#[derive(Debug)]
pub(super) struct Watchdog {
    round: u64,
    grace: Duration,
    moved_on: Option<Instant>,
    aborted: bool,
}

impl Watchdog {
    pub(super) fn new(round: u64, grace: Duration) -> Self {
        Watchdog { round, grace, moved_on: None, aborted: false }
    }

    /// `coordinator_round`: the coordinator's current round (heartbeats);
    /// `can_abort`: the training thread has joined and handed over its abort handle.
    pub(super) fn tick(&mut self, coordinator_round: u64, can_abort: bool, now: Instant) -> Tick {
        if coordinator_round <= self.round {
            return Tick::Wait;
        }
        let since = *self.moved_on.get_or_insert(now);
        if !self.aborted && can_abort {
            self.aborted = true;
            return Tick::Abort;
        }
        if now.duration_since(since) >= self.grace {
            return Tick::GiveUp { aborted: self.aborted };
        }
        Tick::Wait
    }
}

/// Of an nccl round's time: pulling the coordinator's state, the
/// collectives on the training thread, pushing the receipt or state.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct NcclTimes {
    pub pull_s: f64,
    pub collective_s: f64,
    pub push_s: f64,
}

/// What a worker needs for its nccl rounds.
pub(super) struct NcclRound<'a> {
    pub client: &'a mut Client,
    pub worker: &'a str,
    pub chunk_bytes: usize,
    pub handle: &'a TrainerHandle,
    pub backend: Backend,
    /// The coordinator's current round, from the heartbeats' answers.
    pub coordinator_round: &'a AtomicU64,
}

/// The membership `group` gives this worker in `round`.
fn membership(round: u64, group: &v1::NcclGroup) -> Result<Membership, WorkerError> {
    let id: [u8; 128] = group.unique_id.as_slice().try_into().map_err(|_| WorkerError::BadRound {
        round,
        problem: format!("nccl group: a unique id of {} bytes (expected 128)", group.unique_id.len()),
    })?;
    Ok(Membership {
        generation: group.generation,
        unique_id: UniqueId(id),
        rank: group.rank,
        world_size: group.world_size,
    })
}

impl NcclRound<'_> {
    /// Runs round `info` (with its plan `work`); returns the images of an
    /// accepted receipt, or `None` when the coordinator did not count it,
    /// and where the round's time went. A failed RPC is a
    /// [`WorkerError::Rpc`] for the session to handle (as the grpc plane's).
    pub(super) async fn run(
        &mut self,
        info: &v1::RoundInfo,
        work: RoundWork,
        time: &mut NcclTimes,
    ) -> Result<Option<u64>, WorkerError> {
        let group = info.nccl.as_ref().ok_or_else(|| WorkerError::BadRound {
            round: info.round,
            problem: "an nccl round without a group".into(),
        })?;
        let membership = membership(info.round, group)?;
        if group.load_state {
            let pulling = Instant::now();
            self.load_state(info).await?;
            time.pull_s += pulling.elapsed().as_secs_f64();
        }
        let push_state =
            v1::UpdateKind::try_from(info.plan.as_ref().map_or(0, |p| p.update_kind)) == Ok(v1::UpdateKind::State);
        let step = NcclStep {
            work,
            backend: self.backend,
            membership,
            source_rank: group.source_rank,
            push_state,
            abort: Arc::default(),
        };
        let outcome = self.step(info.round, step).await?;
        let pushing = Instant::now();
        let counted = self.push(info, outcome, time).await?;
        time.push_s += pushing.elapsed().as_secs_f64();
        Ok(counted)
    }

    /// Loads the coordinator's training state (the weights snapshot of `info`).
    async fn load_state(&mut self, info: &v1::RoundInfo) -> Result<(), WorkerError> {
        let request = v1::PullSnapshotRequest {
            worker_id: self.worker.to_string(),
            kind: v1::SnapshotKind::Weights as i32,
            version: info.weights_version,
        };
        let mut stream = self.client.pull_snapshot(request).await?.into_inner();
        let (_, bytes) = receive(&mut stream, 1 << 40).await.map_err(Status::from)?;
        self.handle.call(|reply| Job::State { bytes, reply }).await
    }

    /// Hands `step` to the training thread and watches it: once the
    /// coordinator opened a later round, this round is over without us (see
    /// [`Watchdog`]).
    async fn step(&self, round: u64, step: NcclStep) -> Result<NcclOutcome, WorkerError> {
        let abort: Arc<Mutex<Option<AbortHandle>>> = step.abort.clone();
        // A round of K local steps may compute K times as long after the coordinator gave up on it.
        let grace = STUCK_GRACE * step.work.steps.max(1);
        let call = self.handle.call(|reply| Job::Nccl { step: Box::new(step), reply });
        tokio::pin!(call);
        let mut watchdog = Watchdog::new(round, grace);
        loop {
            tokio::select! {
                r = &mut call => return r,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    let handle = abort.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    match watchdog.tick(self.coordinator_round.load(Ordering::SeqCst), handle.is_some(), Instant::now()) {
                        Tick::Wait => {}
                        Tick::Abort => {
                            tracing::warn!(round, "the coordinator moved on: aborting the collective");
                            if let Some(abort) = handle {
                                abort();
                            }
                        }
                        Tick::GiveUp { aborted } => {
                            return Err(WorkerError::Stuck { round, grace_s: grace.as_secs(), aborted });
                        }
                    }
                }
            }
        }
    }

    /// Pushes what `outcome` says: a receipt, the training state, or that the
    /// collective failed; the images the coordinator counted, if it did.
    async fn push(
        &mut self,
        info: &v1::RoundInfo,
        outcome: NcclOutcome,
        time: &mut NcclTimes,
    ) -> Result<Option<u64>, WorkerError> {
        let (kind, samples, losses, payload) = match outcome {
            NcclOutcome::Done { samples, losses, state, collective_s, .. } => {
                time.collective_s += collective_s;
                match state {
                    Some(bytes) => (v1::UpdateKind::State, samples, losses, bytes),
                    None => (v1::UpdateKind::Receipt, samples, losses, Vec::new()),
                }
            }
            NcclOutcome::Failed(_) => (v1::UpdateKind::Failed, 0, Default::default(), Vec::new()),
        };
        let header = v1::UpdateHeader {
            worker_id: self.worker.to_string(),
            round: info.round,
            weights_version: info.weights_version,
            samples,
            kind: kind as i32,
            losses: Some(train_losses(&losses)),
            encoding: v1::PayloadEncoding::Safetensors as i32,
        };
        let messages = chunk_messages::<UpdateChunk>(header, Bytes::from(payload), self.chunk_bytes);
        let r = self.client.push_update(tokio_stream::iter(messages)).await?.into_inner();
        if !r.accepted {
            tracing::info!(round = info.round, reason = %r.reason, "receipt not counted");
        }
        Ok((r.accepted && kind != v1::UpdateKind::Failed).then_some(samples))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(60);

    #[test]
    fn the_watchdog_waits_while_the_coordinator_is_still_on_the_round() {
        let mut w = Watchdog::new(7, GRACE);
        let t0 = Instant::now();
        assert_eq!(w.tick(7, true, t0), Tick::Wait);
        assert_eq!(w.tick(6, true, t0 + 2 * GRACE), Tick::Wait, "no later round: never give up");
    }

    #[test]
    fn the_watchdog_aborts_once_when_the_coordinator_moves_on_then_gives_up_after_the_grace() {
        let mut w = Watchdog::new(7, GRACE);
        let t0 = Instant::now();
        assert_eq!(w.tick(8, true, t0), Tick::Abort);
        assert_eq!(w.tick(8, true, t0 + GRACE / 2), Tick::Wait, "aborted once, not again");
        assert_eq!(w.tick(9, true, t0 + GRACE), Tick::GiveUp { aborted: true });
    }

    #[test]
    fn a_worker_that_never_joined_the_group_gives_up_after_the_grace() {
        let mut w = Watchdog::new(7, GRACE);
        let t0 = Instant::now();
        assert_eq!(w.tick(8, false, t0), Tick::Wait);
        assert_eq!(w.tick(8, false, t0 + GRACE - Duration::from_millis(1)), Tick::Wait);
        assert_eq!(w.tick(8, false, t0 + GRACE), Tick::GiveUp { aborted: false });
    }

    #[test]
    fn a_handle_that_appears_late_is_still_used_before_giving_up() {
        let mut w = Watchdog::new(7, GRACE);
        let t0 = Instant::now();
        assert_eq!(w.tick(8, false, t0), Tick::Wait);
        assert_eq!(w.tick(8, true, t0 + GRACE), Tick::Abort, "abort first");
        assert_eq!(w.tick(8, true, t0 + GRACE), Tick::GiveUp { aborted: true });
    }
}
