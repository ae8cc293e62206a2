//! The merger: the coordinator's copy of the model, its optimizer and its
//! teacher. It publishes weight snapshots, checks incoming updates and applies
//! one merged optimizer step per round (sync-SGD mode, `local_steps = 1`)
//! with exactly the functions of the single-process trainer
//! (`dmtl_core::train::{merge, apply}`), so that one segmentation and one
//! depth worker reproduce single-process `masked` training.

use std::collections::HashMap;
use std::path::Path;

use dmtl_core::checkpoint::Checkpoint;
use dmtl_core::config::Config;
use dmtl_core::method::{Schedule, StepPlan};
use dmtl_core::tensor_io::TensorIoError;
use dmtl_core::train::wire::{self, UpdateError};
use dmtl_core::train::{merge, LossValues, StateError, StepError, TrainError, TrainingState, Update};

pub use dmtl_core::train::MergeMode;

/// The coordinator-side training state of a run.
pub struct Merger {
    config: Config,
    schedule: Schedule,
    state: TrainingState,
    /// Version of the published weights; grows by one per merged round.
    version: u64,
}

impl Merger {
    /// A fresh run: weights from the config's seed, as `dmtl train` would start.
    pub fn new(config: &Config, device: tch::Device) -> Merger {
        let schedule = Schedule::of(config);
        Merger { config: config.clone(), schedule, state: TrainingState::new(config, device), version: 0 }
    }

    /// A run continued from a checkpoint (model, optimizer, teacher, step,
    /// draw counters).
    pub fn resume(config: &Config, device: tch::Device, ckpt: &Checkpoint, path: &Path) -> Result<Merger, TrainError> {
        let mut m = Merger::new(config, device);
        m.state.restore(ckpt, path)?;
        m.version = m.state.state.step as u64;
        Ok(m)
    }

    /// Steps merged so far (= the next step's index).
    pub fn step(&self) -> usize {
        self.state.state.step
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// The run's schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The plan of the next step. Call [`Merger::begin_step`] before publishing it.
    pub fn plan(&self) -> StepPlan {
        self.schedule.plan(self.step())
    }

    /// Refreshes the teacher when the next step's plan says so (a `phase`
    /// teacher at a phase boundary, a `round` teacher every round). Returns
    /// whether the teacher changed, i.e. must be broadcast again.
    pub fn begin_step(&mut self) -> bool {
        let step = self.step();
        self.state.begin_step(&self.schedule, step)
    }

    /// The current weights as a snapshot (safetensors bytes with the version).
    pub fn weights(&self) -> Result<Vec<u8>, TensorIoError> {
        let mut meta = HashMap::new();
        meta.insert("dmtl.version".to_string(), self.version.to_string());
        wire::encode_weights(&self.state.model, meta)
    }

    /// The teacher's weights, for methods that distil.
    pub fn teacher_weights(&self) -> Option<Result<Vec<u8>, TensorIoError>> {
        self.state.teacher.as_ref().map(|t| {
            let mut meta = HashMap::new();
            meta.insert("dmtl.teacher_refreshed_at".to_string(), t.refreshed_at.to_string());
            wire::encode_weights(&t.model, meta)
        })
    }

    /// Decodes and validates an update against the model; nothing is changed.
    pub fn check(&self, bytes: &[u8]) -> Result<Update, UpdateError> {
        wire::decode_update(bytes, &self.state.model)
    }

    /// Merges the round's updates (in the given order) and applies one optimizer
    /// step; updates the EMA teacher; publishes the next version.
    pub fn apply_round(&mut self, updates: &[Update]) -> Result<LossValues, StepError> {
        self.apply_merged(updates, MergeMode::Gradients).map(|(losses, _)| losses)
    }

    /// Merges the round's updates (in the given order) and applies them as
    /// `mode` says (through [`TrainingState::apply_step`], as `dmtl train`
    /// does); publishes the next version. Returns the merged losses and the
    /// images that contributed. A diverged merge changes nothing.
    pub fn apply_merged(&mut self, updates: &[Update], mode: MergeMode) -> Result<(LossValues, usize), StepError> {
        let merged = merge(&updates.iter().collect::<Vec<_>>())?;
        self.state.apply_step(&self.config.train, &merged, mode)?;
        self.version += 1;
        Ok((merged.losses, merged.samples))
    }

    /// nccl plane: counts a round that the workers merged and applied among
    /// themselves (the model here is unchanged until their state is loaded).
    pub fn advance(&mut self, steps: usize, samples: usize, losses: &LossValues) {
        self.state.count_step(steps, samples, losses);
    }

    /// nccl plane: the model, optimizer state and teacher as one buffer
    /// (what a group without a member holding the run's state loads).
    pub fn training_state(&self) -> Result<Vec<u8>, TensorIoError> {
        self.state.encode_bytes()
    }

    /// nccl plane: loads a worker's training state (checked first; nothing
    /// changes on an error) and publishes it as the next version.
    pub fn load_training_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.state.load_bytes(bytes)?;
        self.version += 1;
        Ok(())
    }

    /// The coordinator's training state (model, optimizer, teacher).
    pub fn state(&self) -> &TrainingState {
        &self.state
    }

    /// The training state, for the round loop's bookkeeping (draw counters,
    /// wall time, loss sums).
    pub fn state_mut(&mut self) -> &mut TrainingState {
        &mut self.state
    }

    /// A checkpoint of the run as `dmtl train` writes it.
    pub fn checkpoint(&self) -> Checkpoint {
        self.state.checkpoint(&self.config)
    }

    /// The version of the teacher: the step it was refreshed at, plus one
    /// (0 is "no teacher").
    pub fn teacher_version(&self) -> u64 {
        self.state.teacher.as_ref().map_or(0, |t| t.refreshed_at as u64 + 1)
    }
}
