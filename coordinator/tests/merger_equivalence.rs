//! The merger with one segmentation and one depth worker (each computing its
//! part from a weights snapshot, shipping it as bytes) gives the same weights
//! as single-process training — the distributed engine is the same step.
//! So do two nccl-plane replicas that all-reduce their updates (in-process
//! backend) and each run the merger's bookkeeping on the result.
//! (Library level; the gRPC-level test comes with the services.)

use std::collections::BTreeMap;
use std::path::Path;

use dmtl_coordinator::merger::Merger;
use dmtl_core::checkpoint::Checkpoint;
use dmtl_core::config::tiny::Tiny;
use dmtl_core::config::Config;
use dmtl_core::data::loader::{Loader, LoaderSpec};
use dmtl_core::data::sampler::Sampler;
use dmtl_core::data::synthetic::{generate, SyntheticSpec};
use dmtl_core::method::{Pool, Schedule};
use dmtl_core::model::Model;
use dmtl_core::train::wire::{encode_update, load_weights};
use dmtl_core::train::RunData;
use dmtl_core::train::{compute_update, train, DistillParams, Silent};
use tch::Device;

const STEPS: usize = 12;

fn config(root: &Path, method: &str, teacher: &str) -> Config {
    let tiny =
        Tiny { teacher: Some(teacher), steps: STEPS, eval_every: 100, checkpoint_every: 100, ..Tiny::new(method) };
    tiny.config(root, "equivalence.toml").unwrap()
}

/// A worker: its own model (and teacher), and a loader that serves only its pool.
struct Worker {
    pool: Pool,
    model: Model,
    teacher: Model,
    loader: Loader,
}

impl Worker {
    fn new(cfg: &Config, data: &RunData, pool: Pool) -> Worker {
        let mut pools = BTreeMap::new();
        pools.insert(pool, data.split.pool(pool));
        let loader = Loader::spawn(LoaderSpec {
            samples: data.train.clone(),
            sampler: Sampler::new(cfg.seed, pools),
            schedule: Schedule::of(cfg),
            steps: 0..STEPS,
            draws: Default::default(),
            augment: cfg.data.augment.clone(),
            depth_target: cfg.data.depth,
            prefetch: 2,
            // dmtl train augments on one thread: the batches must not depend on the count.
            batch_threads: 3,
            device: Device::Cpu,
        });
        let classes = cfg.data.classes.num_classes();
        Worker {
            pool,
            model: Model::new(&cfg.model, classes, Device::Cpu, 1000),
            teacher: Model::new(&cfg.model, classes, Device::Cpu, 1001),
            loader,
        }
    }
}

/// The synthetic data (kept while the value lives), the config, the
/// single-process run's final checkpoint and the training data.
struct Reference {
    _data_dir: tempfile::TempDir,
    cfg: Config,
    single: Checkpoint,
    data: RunData,
}

fn single_process(method: &str, teacher: &str) -> Reference {
    let data_dir = tempfile::tempdir().unwrap();
    let spec = SyntheticSpec { out: data_dir.path().to_path_buf(), train: 24, val: 8, height: 32, width: 64, seed: 6 };
    generate(&spec, &|_| {}).unwrap();
    let cfg = config(data_dir.path(), method, teacher);

    let run = tempfile::tempdir().unwrap();
    train(&cfg, run.path(), false, &mut Silent).unwrap();
    let single = Checkpoint::load(&run.path().join(format!("checkpoints/step-{STEPS:08}.safetensors"))).unwrap();

    tch::set_num_threads(1);
    let data = RunData::load(&cfg).unwrap();
    Reference { _data_dir: data_dir, cfg, single, data }
}

fn distributed_matches_single_process(method: &str, teacher: &str) {
    let reference = single_process(method, teacher);
    let (cfg, single, data) = (&reference.cfg, &reference.single, &reference.data);
    let mut merger = Merger::new(cfg, Device::Cpu);
    let mut workers = [Worker::new(cfg, data, Pool::Seg), Worker::new(cfg, data, Pool::Depth)];
    for s in 0..STEPS {
        let distill = DistillParams::of(cfg, s);
        merger.begin_step();
        let plan = merger.plan();
        let weights = merger.weights().unwrap();
        let teacher = merger.teacher_weights().map(Result::unwrap);
        let mut updates = Vec::new();
        for w in workers.iter_mut() {
            load_weights(&weights, &w.model).unwrap();
            if let Some(t) = &teacher {
                load_weights(t, &w.teacher).unwrap();
            }
            let step = w.loader.next_step().unwrap();
            let index = plan.parts.iter().position(|p| p.pool == w.pool).unwrap();
            let batch = step.parts[index].as_ref().expect("the worker's pool is served");
            let losses = &plan.parts[index].losses;
            let update = compute_update(&w.model, batch, losses, distill, Some(&w.teacher)).unwrap();
            // Through bytes, as on the wire, and through the coordinator's checks.
            updates.push(merger.check(&encode_update(&update).unwrap()).unwrap());
        }
        merger.apply_round(&updates).unwrap();
    }

    let merged = merger.state().model.variables();
    let mut worst = (0.0f64, String::new());
    for (name, t) in &single.model {
        let diff = (t - &merged[name]).abs().max().double_value(&[]);
        if diff > worst.0 {
            worst = (diff, name.clone());
        }
    }
    assert!(worst.0 <= 1e-4, "{method}: `{}` differs by {}", worst.1, worst.0);
    // And training did move the weights (the comparison is not between two initial models).
    let initial = Model::new(&cfg.model, cfg.data.classes.num_classes(), Device::Cpu, cfg.seed).variables();
    let moved = merged.iter().map(|(n, t)| (t - &initial[n]).abs().max().double_value(&[])).fold(0.0, f64::max);
    assert!(moved > 1e-3, "{method}: weights moved by only {moved}");
}

#[test]
fn one_seg_and_one_depth_worker_reproduce_single_process_masked_training() {
    distributed_matches_single_process("masked", "phase");
}

#[test]
fn one_seg_and_one_depth_worker_reproduce_masked_distill_with_an_ema_teacher() {
    distributed_matches_single_process("masked-distill", "ema");
}

/// The nccl data plane on the in-process backend: no coordinator merge, but
/// one replica per worker that all-reduces its update with the other's and
/// runs the coordinator's own bookkeeping on the result (optimizer step,
/// teacher refresh and EMA, counters) — what nccl workers do. Each replica
/// ends with the single-process weights, as the grpc plane does.
fn nccl_replicas_match_single_process(method: &str, teacher: &str) {
    use dmtl_collective::local::local_group;
    use dmtl_collective::{all_reduce_merge, Collective, MergeLayout};
    use dmtl_coordinator::merger::MergeMode;

    let reference = single_process(method, teacher);
    let (cfg, single, data) = (&reference.cfg, &reference.single, &reference.data);
    // Each worker's batches of every step, drawn up front (the loaders as in the grpc test).
    let schedule = Schedule::of(cfg);
    let batches: Vec<Vec<_>> = [Pool::Seg, Pool::Depth]
        .into_iter()
        .map(|pool| {
            let w = Worker::new(cfg, data, pool);
            (0..STEPS)
                .map(|s| {
                    let index = schedule.plan(s).parts.iter().position(|p| p.pool == pool).unwrap();
                    w.loader.next_step().unwrap().parts[index].take().expect("the worker's pool is served")
                })
                .collect()
        })
        .collect();
    let group = local_group(2, std::time::Duration::from_secs(120));
    let replicas: Vec<BTreeMap<String, tch::Tensor>> = std::thread::scope(|s| {
        let handles: Vec<_> = group
            .into_iter()
            .zip(batches)
            .map(|(c, mine)| {
                s.spawn(move || {
                    let mut replica = Merger::new(cfg, Device::Cpu);
                    let layout = MergeLayout::of(&replica.state().model);
                    for (s, batch) in mine.iter().enumerate() {
                        let distill = DistillParams::of(cfg, s);
                        replica.begin_step();
                        let plan = replica.plan();
                        let pool = if c.rank() == 0 { Pool::Seg } else { Pool::Depth };
                        let losses = plan.parts.iter().find(|p| p.pool == pool).unwrap().losses;
                        let st = replica.state();
                        let teacher = st.teacher.as_ref().map(|t| &t.model);
                        let update = compute_update(&st.model, batch, &losses, distill, teacher).unwrap();
                        let merged = all_reduce_merge(&c, &layout, &update, Device::Cpu).unwrap();
                        replica.apply_merged(&[merged], MergeMode::Gradients).unwrap();
                    }
                    replica.state().model.variables().into_iter().map(|(n, t)| (n, t.copy())).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("replica")).collect()
    });
    for (rank, merged) in replicas.iter().enumerate() {
        let worst = single
            .model
            .iter()
            .map(|(name, t)| ((t - &merged[name]).abs().max().double_value(&[]), name))
            .fold((0.0, None), |a, (d, n)| if d > a.0 { (d, Some(n)) } else { a });
        assert!(worst.0 <= 1e-4, "{method}, rank {rank}: `{:?}` differs by {}", worst.1, worst.0);
    }
}

#[test]
fn nccl_plane_replicas_reproduce_single_process_masked_training() {
    nccl_replicas_match_single_process("masked", "phase");
}

#[test]
fn nccl_plane_replicas_reproduce_masked_distill_with_an_ema_teacher() {
    nccl_replicas_match_single_process("masked-distill", "ema");
}
