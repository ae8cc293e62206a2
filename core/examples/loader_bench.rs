//! Batch preparation throughput (`data.batch_threads`): the loader's
//! `draw_batch` — draw, scale-crop, flip, normalise, stack — for batches of
//! 32 images at 128×256 with the default augmentation, on 1, 2, … threads,
//! side by side (the thread counts take turns, every repetition), medians of
//! images per second. What a GPU run's loader can feed, per thread count.
//!
//! `cargo run --release -p dmtl-core --example loader_bench -- [threads,...] [reps]`
//! (defaults: `1,2`, 5 repetitions of 20 batches).

use std::collections::BTreeMap;
use std::time::Instant;

use dmtl_core::config::tiny::Tiny;
use dmtl_core::data::loader::draw_batch;
use dmtl_core::data::sampler::Sampler;
use dmtl_core::data::synthetic::{generate, SyntheticSpec};
use dmtl_core::method::{Losses, PartPlan, Pool};
use dmtl_core::train::RunData;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let counts: Vec<usize> =
        args.get(1).map_or("1,2", String::as_str).split(',').map(|s| s.parse().expect("thread counts")).collect();
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    const BATCHES: u64 = 20;
    const BATCH: usize = 32;

    let data = tempfile::tempdir().expect("a temporary folder");
    let spec = SyntheticSpec { out: data.path().to_path_buf(), train: 256, val: 4, height: 128, width: 256, seed: 2 };
    generate(&spec, &|_| {}).expect("synthetic data");
    let tiny = Tiny { tail: "[data.augment]\nflip = true\nmax_scale = 1.5\n", ..Tiny::new("full") };
    let mut config = tiny.config(data.path(), "loader-bench.toml").expect("a config");
    (config.data.height, config.data.width) = (128, 256);
    dmtl_core::device::set_threads(1);
    let run = RunData::load(&config).expect("the dataset");
    let pools: BTreeMap<Pool, _> = [(Pool::All, run.split.pool(Pool::All))].into();
    let part =
        PartPlan { pool: Pool::All, count: BATCH, losses: Losses { seg: true, depth: true, ..Default::default() } };

    let mut rates = vec![Vec::new(); counts.len()];
    for rep in 0..reps {
        for i in 0..counts.len() {
            let c = (i + rep) % counts.len();
            let mut sampler = Sampler::new(config.seed, pools.clone());
            let start = Instant::now();
            for b in 0..BATCHES {
                let first = (rep as u64 * BATCHES + b) * BATCH as u64;
                let batch = draw_batch(
                    &*run.train,
                    &mut sampler,
                    &part,
                    first,
                    &config.data.augment,
                    config.data.depth,
                    counts[c],
                );
                std::hint::black_box(batch);
            }
            rates[c].push((BATCHES as usize * BATCH) as f64 / start.elapsed().as_secs_f64());
        }
    }
    println!("| batch_threads | images/s (median of {reps}) | ratio |\n|---|---|---|");
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&rates[0]);
    for (c, r) in counts.iter().zip(&rates) {
        println!("| {c} | {:.0} | {:.2}× |", median(r), median(r) / base);
    }
}
