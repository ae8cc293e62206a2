//! A round of the `nccl` data plane on the training thread: join (or keep)
//! the round's communicator, copy the source's state when the generation is
//! new, refresh the teacher from the plan, compute this worker's part,
//! all-reduce-merge it with every member's, and apply the merged step with
//! the worker's own optimizer — the coordinator's `Merger` bookkeeping, run
//! identically by every member (`coordinator/tests/merger_equivalence.rs`).
//! With `local_steps > 1` (local SGD) each member first takes the round's
//! steps with its own optimizer, and the members merge their weight deltas.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dmtl_collective::group::Membership;
use dmtl_collective::state::encode_state;
use dmtl_collective::sync::{broadcast_state, broadcast_teacher};
use dmtl_collective::{all_reduce_merge, AbortHandle, Backend, CollectiveError, Communicator, Joined, MergeLayout};
use dmtl_core::config::TeacherKind;
use dmtl_core::method::Schedule;
use dmtl_core::optim::{learning_rate, Optimizer};
use dmtl_core::train::step::LossSums;
use dmtl_core::train::{apply, apply_delta, weight_delta, Batch, DistillParams, LossValues, Update};

use tch::Tensor;

use super::{RoundWork, State};

/// What the client asks of the training thread for one nccl round.
pub struct NcclStep {
    pub work: RoundWork,
    pub backend: Backend,
    pub membership: Membership,
    /// Copy the weights, optimizer state and teacher of this rank first.
    pub source_rank: Option<u32>,
    /// Return the training state after the step (rank 0, before an evaluation or checkpoint).
    pub push_state: bool,
    /// Where the communicator's abort handle is put, for the client's watchdog.
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

enum Failure {
    Collective(CollectiveError),
    Other(String),
}

impl From<CollectiveError> for Failure {
    fn from(e: CollectiveError) -> Self {
        Failure::Collective(e)
    }
}

impl State {
    pub(super) fn nccl_step(&mut self, job: &NcclStep) -> Result<NcclOutcome, String> {
        match self.nccl_round(job) {
            Ok(outcome) => Ok(outcome),
            Err(Failure::Collective(e)) => {
                self.nccl.comm.abort();
                *job.abort.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::warn!(round = job.work.round, error = %e, "nccl collective failed; communicator dropped");
                Ok(NcclOutcome::Failed(e.to_string()))
            }
            Err(Failure::Other(e)) => Err(e),
        }
    }

    fn nccl_round(&mut self, job: &NcclStep) -> Result<NcclOutcome, Failure> {
        let work = &job.work;
        let started = Instant::now();
        let device = self.device;
        let step = work.first_step as usize;
        // The batch first (it needs only the shard), then the collectives.
        let batch = if work.part.count == 0 {
            None
        } else {
            if self.shard.is_empty() {
                return Err(Failure::Other("no shard assigned".into()));
            }
            let prepared = self.prepared.take().filter(|(round, _)| *round == work.round).map(|(_, b)| b);
            Some(match prepared {
                Some(b) => b,
                None => self.draw(&mut self.sampler(work), work, 0),
            })
        };
        let layout = match &self.nccl.layout {
            Some(l) => l.clone(),
            None => self.nccl.layout.insert(MergeLayout::of(&self.model)).clone(),
        };
        let collectives = Instant::now();
        {
            let joined = self.nccl.comm.ensure(job.membership, |m| job.backend.join(device, m))?;
            *job.abort.lock().unwrap_or_else(|p| p.into_inner()) = Some(joined.abort.clone());
            let c = &*joined.collective;
            if let Some(source) = job.source_rank {
                broadcast_state(c, source as usize, &self.model, &mut self.optimizer, device)?;
                if let Some(t) = self.teacher.as_mut() {
                    broadcast_teacher(c, source as usize, t, device)?;
                }
            }
        }
        let mut collective_s = collectives.elapsed().as_secs_f64();
        let schedule = Schedule::new(&self.config.method, &self.config.distill, self.config.train.batch_size);
        if let (Some(t), true) = (self.teacher.as_mut(), schedule.plan(step).refresh_teacher) {
            t.refresh(&self.model, step);
        }
        let distill =
            DistillParams { weight: self.config.distill.weight, temperature: self.config.distill.temperature };
        // Local SGD (`distributed.local_steps > 1`): each member takes the round's steps with its own
        // optimizer, then the members average their weight deltas, as the grpc plane's coordinator does.
        let local = work.steps > 1 || self.config.distributed.local_steps > 1;
        let steps = (work.steps as usize).max(1);
        let (update, start) = match batch {
            Some(batch) if local => {
                let (update, start) = self.local_steps(work, batch, steps, distill)?;
                (update, Some(start))
            }
            Some(batch) => (self.part_update(work, &batch, distill).map_err(Failure::Other)?, None),
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
        let joined = self.nccl.comm.ensure(job.membership, |m| job.backend.join(device, m))?;
        let merged = match all_reduce_merge(&*joined.collective, &layout, &update, device) {
            Ok(merged) => merged,
            Err(e) => {
                // The round is not merged: a member that took local steps goes back to the
                // round's start (its weights, which every survivor shares, and its optimizer state).
                if let Some(start) = &start {
                    start.restore(&self.model, &mut self.optimizer);
                }
                return Err(e.into());
            }
        };
        collective_s += merging.elapsed().as_secs_f64();
        if local {
            if let Some(start) = &start {
                // Back to the round's start; the merged delta and BatchNorm statistics go on top.
                start.restore_weights(&self.model);
            }
            apply_delta(&self.model, &merged);
        } else {
            apply(&self.model, &mut self.optimizer, &merged, learning_rate(&self.config.train, step));
        }
        if let Some(t) = self.teacher.as_mut() {
            if t.kind == TeacherKind::Ema {
                t.ema_update(&self.model, step + steps);
            }
        }
        let state = if job.push_state {
            let bytes = encode_state(&self.model, &self.optimizer, self.teacher.as_ref())
                .map_err(|e| Failure::Other(format!("encoding the training state: {e}")))?;
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

    /// Local SGD: `steps` steps on this member's batches (the first one
    /// `first`) with its own optimizer and the schedule's learning rates.
    /// Returns the weight delta and the parameters the round started from.
    fn local_steps(
        &mut self,
        work: &RoundWork,
        first: Batch,
        steps: usize,
        distill: DistillParams,
    ) -> Result<(Update, RoundStart), Failure> {
        let start = RoundStart::of(&self.model, &self.optimizer);
        let mut sampler = self.sampler(work);
        let mut first = Some(first);
        let mut sums = LossSums::default();
        let mut samples = 0;
        for j in 0..steps {
            let batch = match first.take() {
                Some(b) => b,
                None => self.draw(&mut sampler, work, j as u64),
            };
            let update = self.part_update(work, &batch, distill).map_err(Failure::Other)?;
            samples += update.samples;
            sums.add(&update.losses);
            let lr = learning_rate(&self.config.train, work.first_step as usize + j);
            apply(&self.model, &mut self.optimizer, &update, lr);
        }
        Ok((weight_delta(&self.model, &start.variables, samples, sums.take()), start))
    }
}

/// Where a member's local-SGD round started: copies of the model's variables
/// and of the optimizer's state.
struct RoundStart {
    variables: BTreeMap<String, Tensor>,
    optimizer: BTreeMap<String, Tensor>,
}

impl RoundStart {
    fn of(model: &dmtl_core::model::Model, optimizer: &Optimizer) -> Self {
        let copy = |m: BTreeMap<String, Tensor>| m.into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
        RoundStart { variables: copy(model.variables()), optimizer: copy(optimizer.state_tensors()) }
    }

    /// Back to the start: every variable of the model.
    fn restore_weights(&self, model: &dmtl_core::model::Model) {
        // The same model's own tensors: these cannot mismatch.
        if let Err(e) = model.load_tensors(&self.variables) {
            tracing::error!(error = %e, "restoring the round's start weights");
        }
    }

    /// Back to the start: every variable and the optimizer state.
    fn restore(&self, model: &dmtl_core::model::Model, optimizer: &mut Optimizer) {
        self.restore_weights(model);
        if let Err(e) = optimizer.load_state_tensors(&self.optimizer, &model.parameters()) {
            tracing::error!(error = %e, "restoring the round's start optimizer state");
        }
    }
}
