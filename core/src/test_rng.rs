//! Tests that draw random tensors from libtorch's one global generator.
//! The tests of a crate run on parallel threads, so a `manual_seed` in one can
//! land between another's seed and its draws, and "the same batch" made twice
//! differs (a flaky comparison). [`seeded`] makes seed-and-draw one step.

use std::sync::Mutex;

static GLOBAL_RNG: Mutex<()> = Mutex::new(());

/// Runs `draw` right after `tch::manual_seed(seed)`, with no other seeded draw in between.
pub fn seeded<T>(seed: i64, draw: impl FnOnce() -> T) -> T {
    let _only_us = GLOBAL_RNG.lock().unwrap_or_else(|p| p.into_inner());
    tch::manual_seed(seed);
    draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_tensor_while_other_threads_reseed() {
        let draw = || seeded(3, || tch::Tensor::randn([64], (tch::Kind::Float, tch::Device::Cpu)));
        let first = draw();
        let noise = std::thread::spawn(|| {
            (0..200).for_each(|i| drop(seeded(i, || tch::Tensor::randn([64], tch::kind::FLOAT_CPU))))
        });
        let again: Vec<tch::Tensor> = (0..200).map(|_| draw()).collect();
        noise.join().unwrap();
        assert!(again.iter().all(|t| t.equal(&first)));
    }
}
