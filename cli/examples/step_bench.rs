//! Times the bare training step of the default model (no data loading, no
//! loader thread): `compute_update` (forward + backward) and `apply` (AdamW).
//! Compare with `bench/run.sh`, which measures whole training runs.
//!
//! `cargo run --release --example step_bench -- [steps] [threads] [data-root]`
//! (without a data root the batch is random).

use std::time::Instant;

use dmtl_core::config::{DataConfig, ModelConfig, TrainConfig};
use dmtl_core::data::{batch::build_batch, dataset::load_split, Split};
use dmtl_core::method::Losses;
use dmtl_core::model::Model;
use dmtl_core::optim::Optimizer;
use dmtl_core::train::{apply, compute_update, merge, Batch, DistillParams};
use tch::{Device, Kind, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let threads: i32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads);
    let batch = match args.get(3) {
        Some(root) => {
            let cfg = DataConfig { root: root.clone(), train_limit: 16, ..Default::default() };
            let samples = load_split(&cfg, Split::Train).expect("loading the data root");
            build_batch(&samples.iter().collect::<Vec<_>>(), true, true)
        }
        None => {
            tch::manual_seed(0);
            Batch {
                images: Tensor::randn([16, 3, 64, 128], (Kind::Float, Device::Cpu)),
                seg: Some(Tensor::randint(7, [16, 64, 128], (Kind::Int64, Device::Cpu))),
                depth: Some(Tensor::rand([16, 1, 64, 128], (Kind::Float, Device::Cpu)) * 10.0),
            }
        }
    };
    let model = Model::new(&ModelConfig::default(), 7, Device::Cpu, 0);
    let mut opt = Optimizer::new(&TrainConfig::default());
    let losses = Losses { seg: true, depth: true, ..Default::default() };
    let distill = DistillParams::uniform(1.0, 2.0);
    let (mut t_update, mut t_apply) = (0.0, 0.0);
    for i in 0..steps + 5 {
        let t0 = Instant::now();
        let u = compute_update(&model, &batch, &losses, distill, None).expect("a full batch");
        let t1 = Instant::now();
        apply(&model, &mut opt, &merge(&[&u]).expect("one update"), 1e-3);
        if i >= 5 {
            t_update += (t1 - t0).as_secs_f64();
            t_apply += t1.elapsed().as_secs_f64();
        }
    }
    let n = steps as f64;
    println!(
        "{{\"impl\": \"dmtl-step\", \"update_ms\": {:.1}, \"apply_ms\": {:.1}, \"images_per_s\": {:.1}}}",
        1e3 * t_update / n,
        1e3 * t_apply / n,
        batch.len() as f64 * n / (t_update + t_apply)
    );
}
