//! A round of the `nccl` data plane on the training thread: join (or keep)
//! the round's communicator, copy the source's state when the generation is
//! new, refresh the teacher from the plan, compute this worker's part,
//! all-reduce-merge it with every member's, and apply the merged step with
//! the worker's own optimizer — the coordinator's `Merger` bookkeeping, run
//! identically by every member (`coordinator/tests/merger_equivalence.rs`).
//! With `local_steps > 1` (local SGD) each member first takes the round's
//! steps with its own optimizer, and the members merge their weight deltas.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use dmtl_collective::group::Membership;
use dmtl_collective::sync::{broadcast_state, broadcast_teacher};
use dmtl_collective::{all_reduce_merge, AbortHandle, Backend, Communicator, Joined, MergeLayout};
use dmtl_core::train::{LossValues, MergeMode, Update};

use super::{RoundWork, State};
use crate::WorkerError;

/// What the session asks of the training thread for one nccl round.
pub struct NcclStep {
    pub work: RoundWork,
    pub backend: Backend,
    pub membership: Membership,
    /// Copy the weights, optimizer state and teacher of this rank first.
    pub source_rank: Option<u32>,
    /// Return the training state after the step (rank 0, before an evaluation or checkpoint).
    pub push_state: bool,
    /// Where the communicator's abort handle is put, for the session's watchdog.
    pub abort: Arc<Mutex<Option<AbortHandle>>>,
}

/// How an nccl round ended on the training thread.
#[derive(Debug)]
pub enum NcclOutcome {
    /// The step was merged and applied: this worker's own samples and losses
    /// (the receipt), and the training state when asked.
    /// `collective_s`: of the step's time, joining the group and the collectives (state sync,
    /// the all-reduce merge).
    Done { samples: u64, losses: LossValues, state: Option<Vec<u8>>, images_per_s: f64, collective_s: f64 },
    /// A collective failed (a member died, or the group was aborted): the
    /// model is unchanged and the communicator dropped.
    Failed(String),
}

/// The nccl plane's part of the training thread's state.
#[derive(Default)]
pub(super) struct NcclState {
    comm: Communicator<Joined>,
    layout: Option<MergeLayout>,
}

impl State {
    /// Runs `job`; a failed collective drops the communicator and ends the
    /// round as [`NcclOutcome::Failed`], any other failure is an error.
    pub(super) fn nccl_step(&mut self, job: &NcclStep) -> Result<NcclOutcome, WorkerError> {
        match self.nccl_round(job) {
            Err(WorkerError::Collective(e)) => {
                self.nccl.comm.abort();
                *job.abort.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::warn!(round = job.work.round, error = %e, "nccl collective failed; communicator dropped");
                Ok(NcclOutcome::Failed(e.to_string()))
            }
            other => other,
        }
    }

    fn nccl_round(&mut self, job: &NcclStep) -> Result<NcclOutcome, WorkerError> {
        let work = &job.work;
        let started = Instant::now();
        let step = work.first_step as usize;
        // Every member counts the coordinator's steps (the learning rate of the step).
        self.ts.state.step = step;
        // The batch first (it needs only the shard), then the collectives.
        let batch = if work.part.count == 0 {
            None
        } else {
            if self.shard.is_empty() {
                return Err(WorkerError::NoShard);
            }
            Some(match self.take_prepared(work) {
                Some(b) => b,
                None => self.draw(&mut self.sampler(work), work, 0),
            })
        };
        let layout = match &self.nccl.layout {
            Some(l) => l.clone(),
            None => self.nccl.layout.insert(MergeLayout::of(&self.ts.model)).clone(),
        };
        let collectives = Instant::now();
        self.join_and_sync(job)?;
        let mut collective_s = collectives.elapsed().as_secs_f64();
        self.ts.begin_step(&self.schedule, step);
        // Local SGD (`distributed.local_steps > 1`): each member takes the round's steps with its own
        // optimizer, then the members average their weight deltas, as the grpc plane's coordinator does.
        let local = work.steps > 1 || self.config.distributed.local_steps > 1;
        let (update, start) = match batch {
            Some(batch) if local => {
                let (update, start) = self.local_steps(work, Some(batch), true)?;
                (update, Some(start))
            }
            Some(batch) => (self.part_update(work, &batch, step)?, None),
            None => {
                let nothing = Update {
                    grads: Default::default(),
                    buffers: Default::default(),
                    samples: 0,
                    losses: LossValues::default(),
                };
                (nothing, None)
            }
        };
        let merging = Instant::now();
        // The communicator joined above (`ensure` keeps it: same membership).
        let joined = self.nccl.comm.ensure(job.membership, |m| job.backend.join(self.device, m))?;
        let merged = match all_reduce_merge(&*joined.collective, &layout, &update, self.device) {
            Ok(merged) => merged,
            Err(e) => {
                // The round is not merged: a member that took local steps goes back to the
                // round's start (its weights, which every survivor shares, and its optimizer state).
                if let Some(start) = &start {
                    start.restore(&self.ts.model, &mut self.ts.optimizer);
                }
                return Err(e.into());
            }
        };
        collective_s += merging.elapsed().as_secs_f64();
        let mode = if local {
            if let Some(start) = &start {
                // Back to the round's start; the merged delta and BatchNorm statistics go on top.
                start.restore_weights(&self.ts.model);
            }
            MergeMode::WeightDelta { steps: (work.steps as usize).max(1) }
        } else {
            MergeMode::Gradients
        };
        self.ts.apply_step(&self.config.train, &merged, mode)?;
        let state = if job.push_state {
            let bytes =
                self.ts.encode_bytes().map_err(|source| WorkerError::Encode { what: "training state", source })?;
            Some(bytes)
        } else {
            None
        };
        let elapsed = started.elapsed().as_secs_f64();
        Ok(NcclOutcome::Done {
            samples: update.samples as u64,
            images_per_s: if elapsed > 0.0 { update.samples as f64 / elapsed } else { 0.0 },
            losses: update.losses,
            state,
            collective_s,
        })
    }

    /// Joins (or keeps) the round's communicator, hands the watchdog its
    /// abort handle, and copies the source rank's state when the group asks.
    fn join_and_sync(&mut self, job: &NcclStep) -> Result<(), WorkerError> {
        let device = self.device;
        let joined = self.nccl.comm.ensure(job.membership, |m| job.backend.join(device, m))?;
        *job.abort.lock().unwrap_or_else(|p| p.into_inner()) = Some(joined.abort.clone());
        let c = &*joined.collective;
        if let Some(source) = job.source_rank {
            broadcast_state(c, source as usize, &self.ts.model, &mut self.ts.optimizer, device)?;
            if let Some(t) = self.ts.teacher.as_mut() {
                broadcast_teacher(c, source as usize, t, device)?;
            }
        }
        Ok(())
    }
}
