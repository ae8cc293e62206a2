//! A run's training state (model, optimizer, teacher, counters) and the one
//! place where a step changes it: [`TrainingState::begin_step`] before the
//! step (the teacher refresh of the schedule) and
//! [`TrainingState::apply_step`] after the merge (apply, teacher hook,
//! counters). `dmtl train`, the coordinator's merger and the nccl plane's
//! members all go through these two functions.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::TrainError;
use super::step::{apply, apply_delta, check_finite, StepError, Update};
use crate::checkpoint::{Checkpoint, CheckpointError, TrainState};
use crate::config::{Config, TrainConfig};
use crate::losses::LossValues;
use crate::method::{Schedule, Teacher};
use crate::model::{Compute, Model};
use crate::optim::{learning_rate, Optimizer};

/// How a merged update changes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// Gradients of one step (`local_steps = 1`): the optimizer applies their merge.
    Gradients,
    /// Weight deltas of `steps` local steps: their merge is added to the weights.
    WeightDelta { steps: usize },
}

/// Model, optimizer and teacher of a run, restored from a checkpoint when given.
pub struct TrainingState {
    pub model: Model,
    pub optimizer: Optimizer,
    pub teacher: Option<Teacher>,
    pub state: TrainState,
}

impl TrainingState {
    /// A fresh run: weights from the config's seed, and a teacher when the method distils.
    pub fn new(config: &Config, device: tch::Device) -> TrainingState {
        let model = Model::new(&config.model, config.data.classes.num_classes(), device, config.seed)
            .with_compute(Compute::of(&config.train));
        let teacher = config.method.kind.uses_teacher().then(|| Teacher::new(&model, &config.model, &config.distill));
        TrainingState { optimizer: Optimizer::new(&config.train), model, teacher, state: TrainState::default() }
    }

    /// Before step `step`: refreshes the teacher where the schedule says so (a
    /// `phase` teacher at a phase boundary, a `round` teacher every step or
    /// round). Returns whether the teacher changed (and must be broadcast again).
    pub fn begin_step(&mut self, schedule: &Schedule, step: usize) -> bool {
        match self.teacher.as_mut() {
            Some(t) if schedule.refreshes_teacher(step) => {
                t.refresh(&self.model, step);
                true
            }
            _ => false,
        }
    }

    /// After the merge: refuses a diverged update (nothing changes), applies
    /// the merged update as `mode` says at the learning rate of the current
    /// step, lets the teacher follow (`ema`), and counts the step(s), images
    /// and losses. Returns the learning rate of the step.
    pub fn apply_step(&mut self, train: &TrainConfig, merged: &Update, mode: MergeMode) -> Result<f64, StepError> {
        check_finite(merged)?;
        let step = self.state.step;
        let lr = learning_rate(train, step);
        let steps = match mode {
            MergeMode::Gradients => {
                apply(&self.model, &mut self.optimizer, merged, lr);
                1
            }
            MergeMode::WeightDelta { steps } => {
                apply_delta(&self.model, merged);
                steps
            }
        };
        if let Some(t) = self.teacher.as_mut() {
            t.after_step(&self.model, step + steps);
        }
        self.count_step(steps, merged.samples, &merged.losses);
        Ok(lr)
    }

    /// Counts `steps` steps that were applied elsewhere (the nccl plane's
    /// members), or by [`TrainingState::apply_step`].
    pub fn count_step(&mut self, steps: usize, samples: usize, losses: &LossValues) {
        let s = &mut self.state;
        s.step += steps;
        s.images_seen += samples as u64;
        s.last_losses = Some(losses.clone());
        s.loss_sums.add(losses);
    }

    /// Loads a checkpoint's model, teacher, optimizer state and counters.
    pub fn restore(&mut self, ckpt: &Checkpoint, path: &Path) -> Result<(), TrainError> {
        let model_err = |source| TrainError::Model { path: path.to_path_buf(), source };
        let on_device = |m: &BTreeMap<String, tch::Tensor>| -> BTreeMap<String, tch::Tensor> {
            m.iter().map(|(n, t)| (n.clone(), t.to_device(self.model.device()))).collect()
        };
        self.model.load_tensors(&on_device(&ckpt.model)).map_err(model_err)?;
        if let (Some(teacher), Some(saved)) = (self.teacher.as_mut(), ckpt.teacher.as_ref()) {
            teacher.model.load_tensors(&on_device(saved)).map_err(model_err)?;
            teacher.refreshed_at = ckpt.state.teacher_refreshed_at.unwrap_or(0);
        }
        self.optimizer
            .load_state_tensors(&ckpt.optimizer, &self.model.parameters())
            .map_err(|m| TrainError::Checkpoint(CheckpointError::Format { path: path.to_path_buf(), message: m }))?;
        self.state = ckpt.state.clone();
        Ok(())
    }

    /// The state as a checkpoint (every tensor on the CPU).
    pub fn checkpoint(&self, config: &Config) -> Checkpoint {
        let cpu =
            |m: BTreeMap<String, tch::Tensor>| m.into_iter().map(|(n, t)| (n, t.to_device(tch::Device::Cpu))).collect();
        let mut state = self.state.clone();
        state.teacher_refreshed_at = self.teacher.as_ref().map(|t| t.refreshed_at);
        Checkpoint {
            config: config.clone(),
            state,
            model: cpu(self.model.variables()),
            teacher: self.teacher.as_ref().map(|t| cpu(t.model.variables())),
            optimizer: self.optimizer.state_tensors(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tiny::Tiny;
    use crate::losses::LossValues;

    fn state(method: &str, teacher: &str) -> (Config, TrainingState) {
        let tiny = Tiny { teacher: Some(teacher), ..Tiny::new(method) };
        let config = tiny.config(Path::new("/unused"), "tiny.toml").expect("a valid tiny config");
        let ts = TrainingState::new(&config, tch::Device::Cpu);
        (config, ts)
    }

    fn update(ts: &TrainingState, total: f64) -> Update {
        let grads = ts.model.parameters().iter().map(|(n, p)| (n.clone(), p.ones_like())).collect();
        Update {
            grads,
            buffers: Default::default(),
            samples: 4,
            losses: LossValues { seg: Some(total), total, ..Default::default() },
        }
    }

    #[test]
    fn applying_a_step_counts_it_once_with_its_images_and_losses() {
        let (config, mut ts) = state("masked", "phase");
        ts.apply_step(&config.train, &update(&ts, 2.0), MergeMode::Gradients).unwrap();
        ts.apply_step(&config.train, &update(&ts, 4.0), MergeMode::WeightDelta { steps: 3 }).unwrap();
        assert_eq!(ts.state.step, 4);
        assert_eq!(ts.state.images_seen, 8);
        assert_eq!(ts.state.last_losses.as_ref().map(|l| l.total), Some(4.0));
        assert_eq!(ts.state.loss_sums.take().total, 3.0);
    }

    #[test]
    fn a_diverged_update_changes_nothing() {
        let (config, mut ts) = state("masked", "phase");
        let before: BTreeMap<String, tch::Tensor> =
            ts.model.variables().into_iter().map(|(n, t)| (n, t.copy())).collect();
        let err = ts.apply_step(&config.train, &update(&ts, f64::NAN), MergeMode::Gradients).unwrap_err();
        assert!(matches!(err, StepError::Diverged { .. }), "{err}");
        assert_eq!(ts.state.step, 0);
        let after = ts.model.variables();
        assert!(before.iter().all(|(n, t)| t.equal(&after[n])), "a diverged update moved the weights");
    }

    #[test]
    fn the_ema_teacher_follows_the_student_after_each_applied_step() {
        let (config, mut ts) = state("distill", "ema");
        ts.apply_step(&config.train, &update(&ts, 1.0), MergeMode::Gradients).unwrap();
        let teacher = ts.teacher.as_ref().unwrap();
        assert_eq!(teacher.refreshed_at, 1);
    }

    #[test]
    fn a_fresh_teacher_of_every_kind_gives_no_distillation_loss_in_every_distilling_method() {
        use crate::method::DistillParams;
        use crate::train::{compute_update, Batch};
        use tch::{Kind, Tensor};
        for method in ["distill", "masked-distill"] {
            for kind in ["phase", "ema", "round"] {
                let (config, ts) = state(method, kind);
                let step = Schedule::of(&config).distill_start();
                let plan = Schedule::of(&config).plan(step);
                let classes = config.data.classes.num_classes() as i64;
                for (i, part) in plan.parts.iter().enumerate() {
                    let n = part.count as i64;
                    let opts = (Kind::Float, tch::Device::Cpu);
                    let images = Tensor::from_slice(&vec![0.0f32; (n * 3 * 16 * 16) as usize]).reshape([n, 3, 16, 16])
                        + Tensor::arange(16, opts).sin() * (i as f64 + 1.0);
                    let labels = Tensor::arange(n * 16 * 16, (Kind::Int64, tch::Device::Cpu)).remainder(classes);
                    let batch = Batch {
                        images,
                        seg: part.losses.seg.then(|| labels.reshape([n, 16, 16])),
                        depth: part.losses.depth.then(|| Tensor::ones([n, 1, 16, 16], opts)),
                    };
                    let teacher = ts.teacher.as_ref().map(|t| &t.model);
                    let u = compute_update(&ts.model, &batch, &part.losses, DistillParams::of(&config, step), teacher)
                        .unwrap();
                    for (term, value) in [("seg", u.losses.distill_seg), ("depth", u.losses.distill_depth)] {
                        if let Some(v) = value {
                            assert!(v.abs() < 1e-6, "{method}, {kind} teacher: distill_{term} = {v}");
                        }
                    }
                    assert!(part.losses.needs_teacher(), "{method} distils at step {step}");
                }
            }
        }
    }

    #[test]
    fn the_phase_teacher_refreshes_only_where_the_schedule_says() {
        let (config, mut ts) = state("distill", "phase");
        let schedule = Schedule::of(&config);
        let every = config.method.switch_every;
        assert!(!ts.begin_step(&schedule, every - 1));
        assert!(ts.begin_step(&schedule, every));
        assert_eq!(ts.teacher.as_ref().unwrap().refreshed_at, every);
    }
}
