//! The worker's training thread: owns the model, the teacher, the local
//! optimizer and the images of the worker's shard, and runs the rounds'
//! steps with the foundation engine's step (`compute_update`). It never runs
//! on the async runtime: the session sends it [`Job`]s and awaits the replies.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{channel, Sender};
use std::time::Instant;

use dmtl_core::config::Config;
use dmtl_core::data::cityscapes::CityscapesIndex;
use dmtl_core::data::dataset::{index_split, load_indices};
use dmtl_core::data::loader::draw_batch;
use dmtl_core::data::sampler::Sampler;
use dmtl_core::data::{Sample, Split};
use dmtl_core::method::{PartPlan, Schedule};
use dmtl_core::train::wire::{encode_update, load_weights};
use dmtl_core::train::{check_finite, compute_update, Batch, DistillParams, LossValues, TrainingState, Update};
use tokio::sync::oneshot;

use crate::WorkerError;

mod local;
mod nccl;
pub use nccl::{NcclOutcome, NcclStep};

/// How a round's result is pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    Gradients,
    WeightDelta,
}

/// A worker's share of one round, as the training thread needs it.
#[derive(Debug, Clone)]
pub struct RoundWork {
    pub round: u64,
    pub first_step: u64,
    pub steps: u32,
    /// Pool, images per step and losses.
    pub part: PartPlan,
    pub first_draw: u64,
    pub kind: PushKind,
}

/// What a round produced.
#[derive(Debug)]
pub struct RoundResult {
    /// The update as a safetensors buffer.
    pub payload: Vec<u8>,
    pub samples: u64,
    pub losses: LossValues,
    /// Training images per second over the round's steps.
    pub images_per_s: f64,
}

type Reply<T> = oneshot::Sender<Result<T, WorkerError>>;

/// The training thread's work.
pub enum Job {
    /// Replace the shard (image indices into the sorted training ids): loads
    /// new images, drops those no longer in it.
    Shard {
        indices: Vec<usize>,
        reply: Reply<usize>,
    },
    Weights {
        bytes: bytes::Bytes,
        reply: Reply<()>,
    },
    Teacher {
        bytes: bytes::Bytes,
        reply: Reply<()>,
    },
    Train {
        work: RoundWork,
        reply: Reply<RoundResult>,
    },
    /// Build the first batch of a round ahead of `Train` (while the weights are pulled).
    Prepare {
        work: RoundWork,
    },
    /// nccl plane: load the coordinator's training state (weights, optimizer state, teacher).
    State {
        bytes: bytes::Bytes,
        reply: Reply<()>,
    },
    /// nccl plane: one round's step, merged by all-reduce with the group.
    Nccl {
        step: Box<NcclStep>,
        reply: Reply<NcclOutcome>,
    },
}

/// The handle to a training thread; dropping it ends the thread.
pub struct TrainerHandle {
    tx: Sender<Job>,
}

impl TrainerHandle {
    /// Starts the thread: opens the device, indexes the training split and
    /// builds the model (and a teacher when the method distils).
    pub fn spawn(config: Config, dataset_size: u64) -> Result<TrainerHandle, WorkerError> {
        let (tx, rx) = channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("dmtl-train".into())
            .spawn(move || {
                let mut state = match State::new(config, dataset_size) {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Shard { indices, reply } => {
                            let _ = reply.send(state.set_shard(indices));
                        }
                        Job::Weights { bytes, reply } => {
                            let r = load_weights(&bytes, &state.ts.model).map(|_| ()).map_err(WorkerError::from);
                            let _ = reply.send(r);
                        }
                        Job::Teacher { bytes, reply } => {
                            let r = match &state.ts.teacher {
                                Some(t) => load_weights(&bytes, &t.model).map(|_| ()).map_err(WorkerError::from),
                                None => Err(WorkerError::NoTeacher),
                            };
                            let _ = reply.send(r);
                        }
                        Job::Train { work, reply } => {
                            let _ = reply.send(state.train(&work));
                        }
                        Job::Prepare { work } => state.prepare(&work),
                        Job::State { bytes, reply } => {
                            let _ = reply.send(state.ts.load_bytes(&bytes).map_err(WorkerError::from));
                        }
                        Job::Nccl { step, reply } => {
                            let _ = reply.send(state.nccl_step(&step));
                        }
                    }
                }
            })
            .map_err(WorkerError::Spawn)?;
        ready_rx.recv().map_err(|_| WorkerError::TrainerGone { when: "while starting" })??;
        Ok(TrainerHandle { tx })
    }

    /// Queues a job without waiting for it.
    pub fn submit(&self, job: Job) {
        let _ = self.tx.send(job);
    }

    /// Sends a job and awaits its reply.
    pub async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, WorkerError> {
        const GONE: WorkerError = WorkerError::TrainerGone { when: "before replying" };
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| GONE)?;
        rx.await.map_err(|_| GONE)?
    }
}

struct State {
    config: Config,
    device: tch::Device,
    index: CityscapesIndex,
    images: HashMap<usize, Sample>,
    shard: Vec<usize>,
    /// Model, teacher, and the local optimizer of local-SGD and nccl rounds
    /// (kept across rounds).
    ts: TrainingState,
    schedule: Schedule,
    /// The first batch of a round, built ahead: (round, batch).
    prepared: Option<(u64, dmtl_core::train::Batch)>,
    /// The nccl plane's communicator and merge layout.
    nccl: nccl::NcclState,
}

impl State {
    fn new(config: Config, dataset_size: u64) -> Result<State, WorkerError> {
        let device = dmtl_core::device::open_device(&config.train.device, config.train.cudnn_benchmark)
            .map_err(WorkerError::Device)?;
        dmtl_core::device::set_threads(config.train.threads);
        let index = index_split(&config.data, Split::Train)?;
        if index.len() as u64 != dataset_size {
            return Err(WorkerError::DatasetMismatch {
                root: config.data.root.clone(),
                found: index.len(),
                expected: dataset_size,
            });
        }
        Ok(State {
            ts: TrainingState::new(&config, device),
            schedule: Schedule::of(&config),
            config,
            device,
            index,
            images: HashMap::new(),
            shard: Vec::new(),
            prepared: None,
            nccl: Default::default(),
        })
    }

    fn sampler(&self, work: &RoundWork) -> Sampler {
        let mut pools = BTreeMap::new();
        pools.insert(work.part.pool, self.shard.clone());
        Sampler::new(self.config.seed, pools)
    }

    fn draw(&self, sampler: &mut Sampler, work: &RoundWork, j: u64) -> dmtl_core::train::Batch {
        let batch = draw_batch(
            &self.images,
            sampler,
            &work.part,
            work.first_draw + j * work.part.count as u64,
            &self.config.data.augment,
            self.config.data.depth,
            self.config.data.batch_threads,
        );
        if self.device == tch::Device::Cpu {
            batch
        } else {
            batch.to_device(self.device)
        }
    }

    fn prepare(&mut self, work: &RoundWork) {
        if self.shard.is_empty() || work.part.count == 0 {
            return;
        }
        let mut sampler = self.sampler(work);
        self.prepared = Some((work.round, self.draw(&mut sampler, work, 0)));
    }

    fn set_shard(&mut self, indices: Vec<usize>) -> Result<usize, WorkerError> {
        if let Some(&index) = indices.iter().find(|&&i| i >= self.index.len()) {
            return Err(WorkerError::ShardIndex { index, images: self.index.len() });
        }
        let missing: Vec<usize> = indices.iter().copied().filter(|i| !self.images.contains_key(i)).collect();
        let started = Instant::now();
        let loaded = load_indices(&self.config.data, &self.index, &missing)?;
        let keep: std::collections::BTreeSet<usize> = indices.iter().copied().collect();
        self.images.retain(|i, _| keep.contains(i));
        self.images.extend(missing.iter().copied().zip(loaded));
        tracing::info!(
            images = indices.len(),
            loaded = missing.len(),
            seconds = started.elapsed().as_secs_f32(),
            "shard ready"
        );
        self.shard = indices;
        Ok(self.shard.len())
    }

    /// The first batch of `work` if [`Job::Prepare`] built it ahead.
    fn take_prepared(&mut self, work: &RoundWork) -> Option<Batch> {
        self.prepared.take().filter(|(round, _)| *round == work.round).map(|(_, b)| b)
    }

    /// This worker's update of step `step`: its part's gradients, or why it
    /// failed (a diverged loss included). Both data planes train through it.
    fn part_update(&self, work: &RoundWork, batch: &Batch, step: usize) -> Result<Update, WorkerError> {
        let teacher = self.ts.teacher.as_ref().map(|t| &t.model);
        let distill = DistillParams::of(&self.config, step);
        let u = compute_update(&self.ts.model, batch, &work.part.losses, distill, teacher)?;
        check_finite(&u).map_err(|source| WorkerError::Diverged { round: work.round, source })?;
        Ok(u)
    }

    /// A grpc-plane round: one step's gradients, or (local SGD) the weight
    /// delta of the round's steps, encoded for the push.
    fn train(&mut self, work: &RoundWork) -> Result<RoundResult, WorkerError> {
        if self.shard.is_empty() {
            return Err(WorkerError::NoShard);
        }
        let started = Instant::now();
        let prepared = self.take_prepared(work);
        let update = match work.kind {
            PushKind::Gradients => {
                let batch = match prepared {
                    Some(b) => b,
                    None => self.draw(&mut self.sampler(work), work, 0),
                };
                self.part_update(work, &batch, work.first_step as usize)?
            }
            PushKind::WeightDelta => self.local_steps(work, prepared, false)?.0,
        };
        let payload = encode_update(&update).map_err(|source| WorkerError::Encode { what: "update", source })?;
        let elapsed = started.elapsed().as_secs_f64();
        Ok(RoundResult {
            payload,
            samples: update.samples as u64,
            images_per_s: if elapsed > 0.0 { update.samples as f64 / elapsed } else { 0.0 },
            losses: update.losses,
        })
    }
}
