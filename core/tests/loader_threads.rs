//! `data.batch_threads`: a batch is the same whatever the number of threads
//! that augment it.

use std::collections::BTreeMap;

use dmtl_core::config::tiny::Tiny;
use dmtl_core::data::loader::draw_batch;
use dmtl_core::data::sampler::Sampler;
use dmtl_core::data::synthetic::{generate, SyntheticSpec};
use dmtl_core::method::{Pool, Schedule};
use dmtl_core::train::RunData;

#[test]
fn a_batch_augmented_on_several_threads_equals_the_one_augmented_on_one() {
    let data = tempfile::tempdir().unwrap();
    let spec = SyntheticSpec { out: data.path().to_path_buf(), train: 24, val: 4, height: 32, width: 64, seed: 4 };
    generate(&spec, &|_| {}).unwrap();
    let mut config = Tiny::new("masked").config(data.path(), "loader-threads.toml").unwrap();
    config.train.batch_size = 10;
    config.data.augment.max_scale = 1.5; // scale-crop and flip both drawn
    let run = RunData::load(&config).unwrap();
    let schedule = Schedule::of(&config);
    let pools: BTreeMap<Pool, _> = [Pool::Seg, Pool::Depth].map(|p| (p, run.split.pool(p))).into();

    for step in 0..3u64 {
        for part in &schedule.plan(step as usize).parts {
            let first = step * part.count as u64;
            let batch = |threads: usize| {
                let mut sampler = Sampler::new(config.seed, pools.clone());
                let (aug, depth) = (&config.data.augment, config.data.depth);
                draw_batch(&*run.train, &mut sampler, part, first, aug, depth, threads)
            };
            let (one, four) = (batch(1), batch(4));
            assert!(one.images.equal(&four.images), "step {step}, {:?}: images differ", part.pool);
            assert_eq!(one.seg.is_some(), four.seg.is_some());
            if let (Some(a), Some(b)) = (&one.seg, &four.seg) {
                assert!(a.equal(b), "step {step}: segmentation labels differ");
            }
            if let (Some(a), Some(b)) = (&one.depth, &four.depth) {
                assert!(a.equal(b), "step {step}: depth labels differ");
            }
        }
    }
}
