//! Single-process training (`dmtl train`): the loop around the shared step,
//! with evaluation, checkpoints and resumption.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::eval::evaluate;
use super::step::{apply, compute_update, merge, DistillParams, LossValues, StepError};
use crate::checkpoint::{self, Checkpoint, CheckpointError, TrainState};
use crate::config::Config;
use crate::data::dataset::load_split;
use crate::data::loader::{Loader, LoaderSpec};
use crate::data::sampler::Sampler;
use crate::data::split::{DisjointSplit, Manifest};
use crate::data::{DataError, Sample, Split};
use crate::method::{Pool, Schedule, Teacher};
use crate::metrics::EvalMetrics;
use crate::model::{Compute, Model, ModelError};
use crate::optim::{learning_rate, Optimizer};
use crate::run_dir::{FinalReport, MetricsLine, RunDir, RunDirError};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: {source}")]
    Model {
        path: std::path::PathBuf,
        #[source]
        source: ModelError,
    },
    #[error("{0}")]
    Step(#[from] StepError),
    #[error("config key `train.device`: {0}")]
    Device(String),
    #[error("training diverged at step {step}: the loss is {loss} ({losses}); nothing from this step was saved")]
    Diverged { step: usize, loss: f64, losses: String },
    #[error("{path}: cannot resume: {message}")]
    Resume { path: std::path::PathBuf, message: String },
    #[error("stopped at step {step} of {total}; checkpoint {checkpoint} (continue with --resume)")]
    Stopped { step: usize, total: usize, checkpoint: std::path::PathBuf },
    #[error("{0}")]
    Other(String),
}

/// A finished step, for progress display.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Steps done (1-based).
    pub step: usize,
    pub total: usize,
    pub phase: usize,
    pub losses: LossValues,
    pub lr: f64,
    /// Images per second over the recent steps.
    pub images_per_s: f64,
    /// Seconds the loader thread spent preparing this step's batches.
    pub prepare_s: f64,
    /// Seconds the training thread waited for them (0 when prefetching keeps up).
    pub wait_s: f64,
}

/// What the trainer tells its caller; every method has a no-op default.
pub trait Observer {
    fn started(&mut self, _start_step: usize, _total: usize, _message: &str) {}
    fn step(&mut self, _report: &StepReport) {}
    fn evaluated(&mut self, _step: usize, _metrics: &EvalMetrics) {}
    fn checkpointed(&mut self, _path: &Path) {}
    /// Asked after every step: `true` stops training after writing a checkpoint
    /// (Ctrl-C, a time budget, a preemption notice).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// The loaded dataset of a run.
pub struct RunData {
    pub train: Arc<Vec<Sample>>,
    pub val: Vec<Sample>,
    pub split: DisjointSplit,
}

impl RunData {
    pub fn load(config: &Config) -> Result<RunData, TrainError> {
        let train = load_split(&config.data, Split::Train)?;
        let val = load_split(&config.data, Split::Val)?;
        let ids: Vec<String> = train.iter().map(|s| s.id.clone()).collect();
        let split = RunData::split(config, &ids)?;
        Ok(RunData { train: Arc::new(train), val, split })
    }

    /// The disjoint split of the sorted training ids, refused when a half would be empty.
    pub fn split(config: &Config, ids: &[String]) -> Result<DisjointSplit, TrainError> {
        let split = DisjointSplit::new(ids, config.seed);
        if split.seg.is_empty() || split.depth.is_empty() {
            return Err(TrainError::Other(format!(
                "{}: {} training image(s) cannot be split into two non-empty halves",
                config.data.root,
                ids.len()
            )));
        }
        Ok(split)
    }

    /// The image pools of the whole split.
    pub fn pools(&self) -> BTreeMap<Pool, Vec<usize>> {
        Pool::ALL.iter().map(|&p| (p, self.split.pool(p))).collect()
    }
}

/// Model, optimizer and teacher of a run, restored from a checkpoint when given.
pub struct TrainingState {
    pub model: Model,
    pub optimizer: Optimizer,
    pub teacher: Option<Teacher>,
    pub state: TrainState,
}

impl TrainingState {
    pub fn new(config: &Config, device: tch::Device) -> TrainingState {
        let model = Model::new(&config.model, config.data.classes.num_classes(), device, config.seed)
            .with_compute(Compute::of(&config.train));
        let teacher = config
            .method
            .kind
            .uses_teacher()
            .then(|| Teacher::new(&model, &config.model, config.distill.teacher, config.distill.ema_decay));
        TrainingState { optimizer: Optimizer::new(&config.train), model, teacher, state: TrainState::default() }
    }

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

/// Writes (or, when resuming, checks) the split manifest of `dir` and finds
/// the checkpoint to continue from: the newest valid one, after checking
/// that the config matches it; unreadable newer ones are moved aside, never
/// deleted. Refuses to resume a run directory that holds results but no
/// checkpoint. Appends what it did to `message`. Shared by `dmtl train` and
/// the coordinator.
pub fn open_run(
    config: &Config,
    dir: &RunDir,
    split: &DisjointSplit,
    resume: bool,
    message: &mut String,
) -> Result<Option<(std::path::PathBuf, Checkpoint)>, TrainError> {
    let manifest = split.manifest();
    if resume && dir.split_path().exists() {
        let old = Manifest::read(&dir.split_path())?;
        if old != manifest {
            return Err(TrainError::Other(format!(
                "{}: the split of the data under {} differs from the run's manifest (were images added or removed?)",
                dir.split_path().display(),
                config.data.root
            )));
        }
    } else {
        manifest.write(&dir.split_path())?;
    }
    if !resume {
        return Ok(None);
    }
    let listed = checkpoint::list(&dir.checkpoints());
    let found = match checkpoint::newest_valid(&dir.checkpoints()) {
        Some((path, ckpt)) => {
            if let Some((key, old, new)) = crate::run_dir::config_difference(&ckpt.config, config) {
                return Err(TrainError::Resume {
                    path,
                    message: format!("config key `{key}` differs from the checkpoint's ({old} → {new})"),
                });
            }
            // Newer checkpoints that do not load are kept aside (never deleted), so that
            // pruning cannot keep them instead of the ones this run writes.
            for (step, broken) in listed.iter().filter(|(s, _)| *s > ckpt.state.step) {
                let aside = broken.with_extension("safetensors.unreadable");
                std::fs::rename(broken, &aside).map_err(|e| TrainError::Resume {
                    path: broken.clone(),
                    message: format!("cannot move the unreadable checkpoint of step {step} aside: {e}"),
                })?;
                tracing::warn!(path = %aside.display(), "unreadable checkpoint moved aside");
            }
            message.push_str(&format!(", resumed from {}", path.display()));
            Some((path, ckpt))
        }
        None if !listed.is_empty() => {
            return Err(TrainError::Resume {
                path: dir.checkpoints(),
                message: format!("none of its {} checkpoint(s) loads; nothing was changed", listed.len()),
            });
        }
        None if dir.metrics_path().exists() || dir.final_path().exists() => {
            return Err(TrainError::Resume {
                path: dir.path.clone(),
                message: "it holds metrics but no checkpoint to continue from; nothing was changed".into(),
            });
        }
        None => {
            message.push_str(", no checkpoint to resume from: starting at step 0");
            None
        }
    };
    dir.truncate_metrics(found.as_ref().map_or(0, |(_, c)| c.state.step))?;
    Ok(found)
}

/// Trains `config` in `run_dir` (resuming from its newest valid checkpoint with
/// `resume`), and writes metrics, checkpoints and `final.json`.
pub fn train(
    config: &Config,
    run_dir: &Path,
    resume: bool,
    observer: &mut dyn Observer,
) -> Result<FinalReport, TrainError> {
    let device =
        crate::device::open_device(&config.train.device, config.train.cudnn_benchmark).map_err(TrainError::Device)?;
    crate::device::set_threads(config.train.threads);
    // Check the data before touching the run directory.
    let data = RunData::load(config)?;
    let dir = RunDir::prepare(run_dir, config, resume)?;

    let mut ts = TrainingState::new(config, device);
    let mut message = format!(
        "{} method, {} train images ({} seg / {} depth), {} val images, {} parameters on {:?} ({})",
        config.method.kind,
        data.train.len(),
        data.split.seg.len(),
        data.split.depth.len(),
        data.val.len(),
        ts.model.num_parameters(),
        device,
        ts.model.compute()
    );
    if let Some((path, ckpt)) = open_run(config, &dir, &data.split, resume, &mut message)? {
        ts.restore(&ckpt, &path)?;
    }
    if config.method.kind.uses_teacher() && config.distill.teacher == crate::config::TeacherKind::Round {
        tracing::warn!(
            "distill.teacher = \"round\" in a single process is the model before each step; \
             it is meant for distributed rounds"
        );
    }
    let total = config.train.steps;
    let start = ts.state.step;
    observer.started(start, total, &message);
    tracing::info!(start, total, "{message}");

    let schedule = Schedule::new(&config.method, &config.distill, config.train.batch_size);
    let loader = Loader::spawn(LoaderSpec {
        samples: data.train.clone(),
        sampler: Sampler::new(config.seed, data.pools()),
        schedule,
        steps: start..total,
        draws: ts.state.draws.clone(),
        augment: config.data.augment.clone(),
        depth_target: config.data.depth,
        prefetch: config.data.prefetch,
        batch_threads: config.data.batch_threads,
        device,
    });
    let distill = DistillParams { weight: config.distill.weight, temperature: config.distill.temperature };
    let mut last_metrics = None;
    let mut window = (Instant::now(), 0usize);
    let session_start = Instant::now();
    let wall_before = ts.state.wall_s;

    for step in start..total {
        let waited = Instant::now();
        let batches = loader.next_step().ok_or_else(|| TrainError::Other("the data loader stopped early".into()))?;
        let wait_s = waited.elapsed().as_secs_f64();
        let batches_prepare_s = batches.prepare_s;
        ts.state.loader.add(batches_prepare_s, wait_s);
        let plan = &batches.plan;
        if plan.refresh_teacher {
            if let Some(t) = ts.teacher.as_mut() {
                t.refresh(&ts.model, step);
            }
        }
        let teacher = ts.teacher.as_ref().map(|t| &t.model);
        let mut updates = Vec::with_capacity(plan.parts.len());
        for (part, batch) in plan.parts.iter().zip(&batches.parts) {
            let batch = batch.as_ref().expect("the single-process loader serves every pool");
            updates.push(compute_update(&ts.model, batch, &part.losses, distill, teacher)?);
        }
        let merged = merge(&updates.iter().collect::<Vec<_>>())?;
        if !merged.losses.total.is_finite() {
            return Err(TrainError::Diverged {
                step: step + 1,
                loss: merged.losses.total,
                losses: serde_json::to_string(&merged.losses).unwrap_or_default(),
            });
        }
        let lr = learning_rate(&config.train, step);
        apply(&ts.model, &mut ts.optimizer, &merged, lr);
        if let Some(t) = ts.teacher.as_mut() {
            if config.distill.teacher == crate::config::TeacherKind::Ema {
                t.ema_update(&ts.model, step + 1);
            }
        }
        ts.state.step = step + 1;
        ts.state.draws = batches.draws;
        ts.state.images_seen += merged.samples as u64;
        ts.state.wall_s = wall_before + session_start.elapsed().as_secs_f64();
        ts.state.last_losses = Some(merged.losses.clone());
        ts.state.loss_sums.add(&merged.losses);

        window.1 += merged.samples;
        let elapsed = window.0.elapsed().as_secs_f64();
        let images_per_s = if elapsed > 0.0 { window.1 as f64 / elapsed } else { 0.0 };
        if elapsed > 10.0 {
            window = (Instant::now(), 0);
        }
        let done = step + 1;
        observer.step(&StepReport {
            step: done,
            total,
            phase: plan.phase,
            losses: merged.losses.clone(),
            lr,
            images_per_s,
            prepare_s: batches_prepare_s,
            wait_s,
        });
        if done % config.train.log_every == 0 {
            tracing::debug!(step = done, total = merged.losses.total, images_per_s, "train step");
        }

        if done % config.train.eval_every == 0 || done == total {
            let metrics = evaluate(&ts.model, &data.val, config.eval.batch_size);
            let line = MetricsLine {
                step: done,
                wall_s: ts.state.wall_s,
                images_seen: ts.state.images_seen,
                lr,
                train: ts.state.loss_sums.take(),
                val: metrics.clone(),
            };
            dir.append_metrics(&line)?;
            observer.evaluated(done, &metrics);
            last_metrics = Some(metrics);
        }
        let stop = done < total && observer.should_stop();
        if done % config.train.checkpoint_every == 0 || done == total || stop {
            let path = checkpoint::checkpoint_path(&dir.checkpoints(), done);
            ts.checkpoint(config).save(&path)?;
            checkpoint::prune(&dir.checkpoints(), config.train.keep_checkpoints);
            observer.checkpointed(&path);
            if stop {
                return Err(TrainError::Stopped { step: done, total, checkpoint: path });
            }
        }
    }
    drop(loader);

    let metrics = match last_metrics {
        Some(m) => m,
        None => evaluate(&ts.model, &data.val, config.eval.batch_size),
    };
    let report = FinalReport {
        method: config.method.kind.to_string(),
        seed: config.seed,
        steps: ts.state.step,
        wall_s: ts.state.wall_s,
        seg: metrics.seg,
        depth: metrics.depth,
        images_seen: ts.state.images_seen,
        loader: Some(ts.state.loader.clone()),
    };
    dir.write_final(&report)?;
    Ok(report)
}
