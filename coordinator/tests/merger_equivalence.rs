//! The merger with one segmentation and one depth worker (each computing its
//! part from a weights snapshot, shipping it as bytes) gives the same weights
//! as single-process training — the distributed engine is the same step.
//! (Library level; the gRPC-level test comes with the services.)

use std::collections::BTreeMap;
use std::path::Path;

use dmtl_coordinator::merger::Merger;
use dmtl_core::checkpoint::Checkpoint;
use dmtl_core::config::Config;
use dmtl_core::data::loader::{Loader, LoaderSpec};
use dmtl_core::data::sampler::Sampler;
use dmtl_core::data::synthetic::{generate, SyntheticSpec};
use dmtl_core::method::{Pool, Schedule};
use dmtl_core::model::Model;
use dmtl_core::train::trainer::RunData;
use dmtl_core::train::wire::{encode_update, load_weights};
use dmtl_core::train::{compute_update, train, DistillParams, Silent};
use tch::Device;

const STEPS: usize = 12;

fn config(root: &Path, method: &str, teacher: &str) -> Config {
    let text = format!(
        r#"version = 1
seed = 9
[data]
root = "{}"
height = 32
width = 64
load_threads = 1
[model]
width = 6
blocks = [1, 1]
[method]
kind = "{method}"
switch_every = 4
[distill]
teacher = "{teacher}"
[train]
steps = {STEPS}
batch_size = 4
eval_every = 100
checkpoint_every = 100
threads = 1
"#,
        root.display()
    );
    Config::from_toml_str(&text, Path::new("equivalence.toml"), &[]).unwrap()
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
            schedule: Schedule::new(&cfg.method, &cfg.distill, cfg.train.batch_size),
            steps: 0..STEPS,
            draws: Default::default(),
            augment: cfg.data.augment.clone(),
            depth_target: cfg.data.depth,
            prefetch: 2,
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

fn distributed_matches_single_process(method: &str, teacher: &str) {
    let data_dir = tempfile::tempdir().unwrap();
    let spec = SyntheticSpec { out: data_dir.path().to_path_buf(), train: 24, val: 8, height: 32, width: 64, seed: 6 };
    generate(&spec, &|_| {}).unwrap();
    let cfg = config(data_dir.path(), method, teacher);

    let run = tempfile::tempdir().unwrap();
    train(&cfg, run.path(), false, &mut Silent).unwrap();
    let single = Checkpoint::load(&run.path().join(format!("checkpoints/step-{STEPS:08}.safetensors"))).unwrap();

    tch::set_num_threads(1);
    let data = RunData::load(&cfg).unwrap();
    let mut merger = Merger::new(&cfg, Device::Cpu);
    let mut workers = [Worker::new(&cfg, &data, Pool::Seg), Worker::new(&cfg, &data, Pool::Depth)];
    let distill = DistillParams { weight: cfg.distill.weight, temperature: cfg.distill.temperature };
    for _ in 0..STEPS {
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
