//! Single-process training (`dmtl train`): the loop around the shared step,
//! with evaluation, checkpoints and resumption.

use std::path::Path;
use std::time::Instant;

use super::error::TrainError;
use super::eval::evaluate;
use super::run::{open_run, RunData};
use super::state::{MergeMode, TrainingState};
use super::step::{compute_update, merge};
use crate::checkpoint;
use crate::config::{Config, TeacherKind};
use crate::data::loader::{Loader, LoaderSpec, StepBatch};
use crate::data::sampler::Sampler;
use crate::losses::LossValues;
use crate::method::DistillParams;
use crate::method::Schedule;
use crate::metrics::EvalMetrics;
use crate::run_dir::{FinalReport, MetricsLine, RunDir};

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

/// Images per second over a window of recent steps (restarted every 10 s).
struct Throughput {
    since: Instant,
    images: usize,
}

impl Throughput {
    fn add(&mut self, images: usize) -> f64 {
        self.images += images;
        let elapsed = self.since.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 { self.images as f64 / elapsed } else { 0.0 };
        if elapsed > 10.0 {
            *self = Throughput { since: Instant::now(), images: 0 };
        }
        rate
    }
}

/// A single-process run in progress.
struct Trainer<'a> {
    config: &'a Config,
    data: RunData,
    dir: RunDir,
    ts: TrainingState,
    schedule: Schedule,
    throughput: Throughput,
    session_start: Instant,
    wall_before: f64,
    last_metrics: Option<EvalMetrics>,
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
    if config.method.kind.uses_teacher() && config.distill.teacher == TeacherKind::Round {
        tracing::warn!(
            "distill.teacher = \"round\" in a single process is the model before each step; \
             it is meant for distributed rounds"
        );
    }
    observer.started(ts.state.step, config.train.steps, &message);
    tracing::info!(start = ts.state.step, total = config.train.steps, "{message}");
    let wall_before = ts.state.wall_s;
    let mut trainer = Trainer {
        config,
        data,
        dir,
        ts,
        schedule: Schedule::of(config),
        throughput: Throughput { since: Instant::now(), images: 0 },
        session_start: Instant::now(),
        wall_before,
        last_metrics: None,
    };
    trainer.run(observer)
}

impl Trainer<'_> {
    fn run(&mut self, observer: &mut dyn Observer) -> Result<FinalReport, TrainError> {
        let (start, total) = (self.ts.state.step, self.config.train.steps);
        let loader = Loader::spawn(LoaderSpec {
            samples: self.data.train.clone(),
            sampler: Sampler::new(self.config.seed, self.data.pools()),
            schedule: self.schedule.clone(),
            steps: start..total,
            draws: self.ts.state.draws.clone(),
            augment: self.config.data.augment.clone(),
            depth_target: self.config.data.depth,
            prefetch: self.config.data.prefetch,
            batch_threads: self.config.data.batch_threads,
            device: self.ts.model.device(),
        });
        for step in start..total {
            let waited = Instant::now();
            let batches = loader.next_step().ok_or(TrainError::LoaderStopped { step })?;
            let report = self.step(step, batches, waited.elapsed().as_secs_f64())?;
            observer.step(&report);
            self.after_step(report.step, report.lr, observer)?;
        }
        drop(loader);
        self.finish()
    }

    /// One step: the teacher refresh, every part's update, the merge, and
    /// the step applied to the training state.
    fn step(&mut self, step: usize, batches: StepBatch, wait_s: f64) -> Result<StepReport, TrainError> {
        self.ts.state.loader.add(batches.prepare_s, wait_s);
        let plan = &batches.plan;
        self.ts.begin_step(&self.schedule, step);
        let distill = DistillParams::of(self.config, step);
        let teacher = self.ts.teacher.as_ref().map(|t| &t.model);
        let mut updates = Vec::with_capacity(plan.parts.len());
        for (part, batch) in plan.parts.iter().zip(&batches.parts) {
            let batch = batch.as_ref().expect("the single-process loader serves every pool");
            updates.push(compute_update(&self.ts.model, batch, &part.losses, distill, teacher)?);
        }
        let merged = merge(&updates.iter().collect::<Vec<_>>())?;
        let lr = self
            .ts
            .apply_step(&self.config.train, &merged, MergeMode::Gradients)
            .map_err(|e| TrainError::at_step(step + 1, e))?;
        self.ts.state.draws = batches.draws;
        self.ts.state.wall_s = self.wall_before + self.session_start.elapsed().as_secs_f64();
        let done = step + 1;
        let images_per_s = self.throughput.add(merged.samples);
        if done.is_multiple_of(self.config.train.log_every) {
            tracing::debug!(step = done, total = merged.losses.total, images_per_s, "train step");
        }
        Ok(StepReport {
            step: done,
            total: self.config.train.steps,
            phase: plan.phase,
            losses: merged.losses,
            lr,
            images_per_s,
            prepare_s: batches.prepare_s,
            wait_s,
        })
    }

    /// Evaluation and checkpoint after step `done` where they are due, and a
    /// requested stop (with a checkpoint).
    fn after_step(&mut self, done: usize, lr: f64, observer: &mut dyn Observer) -> Result<(), TrainError> {
        let (config, total) = (self.config, self.config.train.steps);
        if done.is_multiple_of(config.train.eval_every) || done == total {
            let metrics = evaluate(&self.ts.model, &self.data.val, config.eval.batch_size);
            let line = MetricsLine {
                step: done,
                wall_s: self.ts.state.wall_s,
                images_seen: self.ts.state.images_seen,
                lr,
                train: self.ts.state.loss_sums.take(),
                val: metrics.clone(),
            };
            self.dir.append_metrics(&line)?;
            observer.evaluated(done, &metrics);
            self.last_metrics = Some(metrics);
        }
        let stop = done < total && observer.should_stop();
        if done.is_multiple_of(config.train.checkpoint_every) || done == total || stop {
            let path = checkpoint::checkpoint_path(&self.dir.checkpoints(), done);
            self.ts.checkpoint(config).save(&path)?;
            checkpoint::prune(&self.dir.checkpoints(), config.train.keep_checkpoints);
            observer.checkpointed(&path);
            if stop {
                return Err(TrainError::Stopped { step: done, total, checkpoint: path });
            }
        }
        Ok(())
    }

    /// `final.json`: the last evaluation (or one now, when none ran).
    fn finish(&mut self) -> Result<FinalReport, TrainError> {
        let metrics = match self.last_metrics.take() {
            Some(m) => m,
            None => evaluate(&self.ts.model, &self.data.val, self.config.eval.batch_size),
        };
        let s = &self.ts.state;
        let report = FinalReport {
            method: self.config.method.kind.to_string(),
            seed: self.config.seed,
            steps: s.step,
            wall_s: s.wall_s,
            seg: metrics.seg,
            depth: metrics.depth,
            images_seen: s.images_seen,
            loader: Some(s.loader.clone()),
        };
        self.dir.write_final(&report)?;
        Ok(report)
    }
}
