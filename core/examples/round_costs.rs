//! The tensor work of one synchronous round of the distributed engine, piece
//! by piece, for the default model (0.9 M parameters, 7 classes): encoding
//! the weights snapshot (coordinator), loading it (worker), encoding an update
//! (worker), decoding and validating it (coordinator), merging two updates and
//! the optimizer step (coordinator). Mean of 50 after one warm-up, one thread.
//!
//! `cargo run --release -p dmtl-core --example round_costs`
//! (run it with `MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=1073741824`
//! to match the tuned `dmtl` processes, cli/src/runtime.rs).

use std::collections::HashMap;
use std::time::Instant;

use dmtl_core::config::{ModelConfig, TrainConfig};
use dmtl_core::model::Model;
use dmtl_core::optim::Optimizer;
use dmtl_core::train::step::{apply, merge, Update};
use dmtl_core::train::wire::{decode_update_with, encode_update, encode_weights, load_weights, UpdateSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tch::set_num_threads(1);
    let model = Model::new(&ModelConfig::default(), 7, tch::Device::Cpu, 0);
    let update = || Update {
        grads: model.parameters().iter().map(|(n, p)| (n.clone(), p.randn_like())).collect(),
        buffers: model.buffers().iter().map(|(n, b)| (n.clone(), b.copy())).collect(),
        samples: 8,
        losses: Default::default(),
    };
    let (a, b) = (update(), update());
    let spec = UpdateSpec::of(&model);
    let mut optimizer = Optimizer::new(&TrainConfig::default());
    let weights = encode_weights(&model, HashMap::new())?;
    let pushed = encode_update(&a)?;
    let merged = merge(&[&a, &b])?;
    println!(
        "{} variables, {:.1} MB snapshot, {:.1} MB update",
        model.variables().len(),
        weights.len() as f64 / 1e6,
        pushed.len() as f64 / 1e6
    );
    println!("| piece | where | ms |");
    println!("|---|---|---|");
    let time = |name: &str, side: &str, f: &mut dyn FnMut()| {
        f();
        let n = 50;
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        println!("| {name} | {side} | {:.2} |", start.elapsed().as_secs_f64() * 1e3 / n as f64);
    };
    time("encode the weights snapshot", "coordinator", &mut || drop(encode_weights(&model, HashMap::new())));
    time("load the snapshot into the model", "worker", &mut || drop(load_weights(&weights, &model)));
    time("encode an update", "worker", &mut || drop(encode_update(&a)));
    time("decode and validate an update", "coordinator", &mut || drop(decode_update_with(&pushed, &spec)));
    time("merge two updates", "coordinator", &mut || drop(merge(&[&a, &b])));
    time("optimizer step (AdamW)", "coordinator", &mut || apply(&model, &mut optimizer, &merged, 1e-9));
    Ok(())
}
