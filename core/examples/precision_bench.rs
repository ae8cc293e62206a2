//! Training-step throughput of the default model in each number format and
//! layout (`train.precision`, `train.channels_last`): fp32, bf16, fp32 with
//! channels-last, bf16 with channels-last. The four run side by side in one
//! process on the same random batch of 16, one step each in turn (the order
//! rotates every repetition), so that a shared machine's load hits them alike.
//! Two figures per variant, each the median over repetitions: images per
//! second of wall time, and images per second of CPU time (the process's
//! threads' run time from `/proc/self/task/*/schedstat`, which does not count
//! the time the scheduler gave to other processes — the robust figure on a
//! loaded machine, with one thread or `OMP_WAIT_POLICY=PASSIVE`, so that no
//! thread spins). Ratios are medians of the per-repetition ratios to fp32.
//!
//! `bench/precision.sh` (sets the OpenMP and malloc variables `dmtl train` sets), or
//! `cargo run --release -p dmtl-core --example precision_bench -- [steps] [reps] [threads] [HxW,...] [device] [batch]`
//! (defaults: 1 step per repetition, 9 repetitions, 2 threads, `64x128,128x256`, `cpu`, 16 images;
//! CPU time is measured on the CPU only).

use std::time::Instant;

use dmtl_core::config::{ModelConfig, Precision, TrainConfig};
use dmtl_core::method::Losses;
use dmtl_core::model::{Compute, Model};
use dmtl_core::optim::Optimizer;
use dmtl_core::train::{apply, compute_update, merge, Batch, DistillParams};
use tch::{Kind, Tensor};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Nanoseconds this process's threads have run on a CPU (Linux; 0 elsewhere).
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(9);
    let threads: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2);
    let sizes: Vec<(i64, i64)> = args
        .get(4)
        .map_or("64x128,128x256", String::as_str)
        .split(',')
        .map(|s| {
            let (h, w) = s.split_once('x').expect("sizes as HxW,HxW");
            (h.parse().expect("height"), w.parse().expect("width"))
        })
        .collect();
    let cudnn_benchmark = true;
    let device =
        dmtl_core::device::open_device(args.get(5).map_or("cpu", String::as_str), cudnn_benchmark).expect("a device");
    dmtl_core::device::set_threads(threads);
    let batch_size: i64 = args.get(6).and_then(|s| s.parse().ok()).unwrap_or(16);

    let variants = [
        ("fp32", Compute { precision: Precision::Fp32, channels_last: false }),
        ("bf16", Compute { precision: Precision::Bf16, channels_last: false }),
        ("fp32+channels-last", Compute { precision: Precision::Fp32, channels_last: true }),
        ("bf16+channels-last", Compute { precision: Precision::Bf16, channels_last: true }),
    ];
    let losses = Losses { seg: true, depth: true, ..Default::default() };
    let distill = DistillParams::uniform(1.0, 2.0);
    let step = |model: &Model, opt: &mut Optimizer, batch: &Batch| {
        let u = compute_update(model, batch, &losses, distill, None).expect("a full batch");
        apply(model, opt, &merge(&[&u]).expect("one update"), 1e-3);
    };
    let sync = || {
        if let tch::Device::Cuda(n) = device {
            tch::Cuda::synchronize(n as i64);
        }
    };

    println!("{device:?}, batch {batch_size}, {steps} step(s) per repetition, {reps} repetitions");
    println!(
        "| size | variant | images/s wall | ratio | images/s CPU time | ratio | CPU use |\n|---|---|---|---|---|---|---|"
    );
    for &(h, w) in &sizes {
        tch::manual_seed(0);
        let batch = Batch {
            images: Tensor::randn([batch_size, 3, h, w], (Kind::Float, device)),
            seg: Some(Tensor::randint(7, [batch_size, h, w], (Kind::Int64, device))),
            depth: Some(Tensor::rand([batch_size, 1, h, w], (Kind::Float, device)) * 10.0),
        };
        let mut runs: Vec<(Model, Optimizer)> = variants
            .iter()
            .map(|(_, c)| {
                let model = Model::new(&ModelConfig::default(), 7, device, 0).with_compute(*c);
                (model, Optimizer::new(&TrainConfig::default()))
            })
            .collect();
        // Warm-up: allocator, oneDNN primitive caches, cuDNN benchmark.
        for (model, opt) in runs.iter_mut() {
            for _ in 0..2 {
                step(model, opt, &batch);
            }
        }
        sync();
        // Per variant and repetition: (wall s, CPU s) of `steps` steps.
        let mut times = vec![Vec::new(); variants.len()];
        for rep in 0..reps {
            for k in 0..variants.len() {
                let v = (k + rep) % variants.len();
                let (model, opt) = &mut runs[v];
                let (t0, c0) = (Instant::now(), cpu_ns());
                for _ in 0..steps {
                    step(model, opt, &batch);
                }
                sync();
                times[v].push((t0.elapsed().as_secs_f64(), (cpu_ns() - c0) as f64 * 1e-9));
            }
        }
        let images = (batch_size as usize * steps) as f64;
        let rate = |v: usize, r: usize, cpu: bool| {
            let (wall, c) = times[v][r];
            images / if cpu { c.max(1e-9) } else { wall }
        };
        for (v, (name, _)) in variants.iter().enumerate() {
            let med = |cpu: bool| median((0..reps).map(|r| rate(v, r, cpu)).collect());
            let ratio = |cpu: bool| median((0..reps).map(|r| rate(v, r, cpu) / rate(0, r, cpu)).collect());
            let usage = median(times[v].iter().map(|(wall, c)| c / wall).collect());
            println!(
                "| {h}×{w} | {name} | {:.1} | {:.2}× | {:.1} | {:.2}× | {:.2} |",
                med(false),
                ratio(false),
                med(true),
                ratio(true),
                usage
            );
        }
    }
}
