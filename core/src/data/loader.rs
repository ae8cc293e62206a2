//! The background loader: a thread that draws, augments and stacks the batches
//! of the coming steps, `prefetch` steps ahead of training.

use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::augment::augment;
use super::batch::build_batch;
use super::batch::Batch;
use super::cityscapes::parallel_map;
use super::error::DataError;
use super::sampler::{DrawCounters, Sampler};
use super::{DepthTarget, Sample};
use crate::config::AugmentConfig;
use crate::method::{PartPlan, Schedule, StepPlan};

/// The batches of one step, one per plan part (`None` for a part whose pool
/// this loader does not serve, e.g. the other task's half on a worker).
#[derive(Debug)]
pub struct StepBatch {
    pub plan: StepPlan,
    pub parts: Vec<Option<Batch>>,
    /// Draw counters after this step (what a checkpoint taken after it stores).
    pub draws: DrawCounters,
    /// Seconds the loader thread spent preparing this step.
    pub prepare_s: f64,
}

/// Samples by image index (into the sorted training id list).
pub trait SampleSource: Sync {
    fn sample(&self, index: usize) -> &Sample;
}

impl SampleSource for Vec<Sample> {
    fn sample(&self, index: usize) -> &Sample {
        &self[index]
    }
}

impl SampleSource for std::collections::HashMap<usize, Sample> {
    fn sample(&self, index: usize) -> &Sample {
        &self[&index]
    }
}

/// The batch of one plan part: draws `first .. first + part.count` of
/// `part.pool`, augmented, stacked with only the labels the part's losses use
/// (an image of D_depth never carries its segmentation label into a step).
/// The single-process loader and the distributed workers both build their
/// batches here.
pub fn draw_batch(
    samples: &dyn SampleSource,
    sampler: &mut Sampler,
    part: &PartPlan,
    first: u64,
    aug: &AugmentConfig,
    depth_target: DepthTarget,
    threads: usize,
) -> Batch {
    // The draws in order (they advance the sampler), then the augmentation,
    // which depends only on each draw, on `threads` threads.
    let draws: Vec<_> = (first..first + part.count as u64)
        .map(|k| (sampler.image(part.pool, k), sampler.augment(part.pool, k, aug.max_scale, aug.flip)))
        .collect();
    let items: Vec<Sample> = parallel_map(&draws, threads, |(image, draw)| {
        Ok::<_, DataError>(augment(samples.sample(*image), draw, depth_target))
    })
    .expect("augmenting cannot fail");
    let refs: Vec<&Sample> = items.iter().collect();
    build_batch(&refs, part.losses.seg, part.losses.depth)
}

/// What the loader produces.
pub struct LoaderSpec {
    pub samples: Arc<Vec<Sample>>,
    pub sampler: Sampler,
    pub schedule: Schedule,
    pub steps: Range<usize>,
    pub draws: DrawCounters,
    pub augment: AugmentConfig,
    pub depth_target: DepthTarget,
    pub prefetch: usize,
    /// Threads that augment each batch (`data.batch_threads`).
    pub batch_threads: usize,
    pub device: tch::Device,
}

pub struct Loader {
    rx: Option<Receiver<StepBatch>>,
    handle: Option<JoinHandle<()>>,
}

impl Loader {
    pub fn spawn(spec: LoaderSpec) -> Loader {
        let (tx, rx) = sync_channel(spec.prefetch.max(1));
        let handle = std::thread::Builder::new()
            .name("dmtl-loader".into())
            .spawn(move || {
                let LoaderSpec {
                    samples,
                    mut sampler,
                    schedule,
                    steps,
                    mut draws,
                    augment: aug,
                    depth_target,
                    batch_threads,
                    device,
                    ..
                } = spec;
                for step in steps {
                    let started = Instant::now();
                    let plan = schedule.plan(step);
                    let parts = plan
                        .parts
                        .iter()
                        .map(|part| {
                            if sampler.pool_len(part.pool) == 0 {
                                return None;
                            }
                            let first = draws.get(part.pool);
                            let batch =
                                draw_batch(&*samples, &mut sampler, part, first, &aug, depth_target, batch_threads);
                            draws.0.insert(part.pool, first + part.count as u64);
                            Some(if device == tch::Device::Cpu { batch } else { batch.to_device(device) })
                        })
                        .collect();
                    let out =
                        StepBatch { plan, parts, draws: draws.clone(), prepare_s: started.elapsed().as_secs_f64() };
                    if tx.send(out).is_err() {
                        return; // the trainer stopped early
                    }
                }
            })
            .expect("spawning the loader thread");
        Loader { rx: Some(rx), handle: Some(handle) }
    }

    /// The next step's batches; `None` after the last step.
    pub fn next_step(&self) -> Option<StepBatch> {
        self.rx.as_ref().and_then(|rx| rx.recv().ok())
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        drop(self.rx.take()); // unblocks a send in progress
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
