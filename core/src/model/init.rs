//! Deterministic weight initialisation from the run's seed, independent of
//! libtorch's global generator (so that concurrent runs in one process, and
//! runs on different devices, start from the same weights).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{nn::VarStore, Kind, Tensor};

/// Convolution weights: Kaiming-uniform for ReLU (bound √(6 / fan_in)); biases
/// 0; BatchNorm weight 1, bias 0, running mean 0, running variance 1.
pub fn reset_parameters(vs: &VarStore, seed: u64) {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_1417);
    tch::no_grad(|| {
        for (name, mut var) in vars {
            let leaf = name.rsplit('.').next().unwrap_or("");
            let is_bn = name.contains(".bn.");
            let shape = var.size();
            let value = match (leaf, is_bn) {
                ("running_var", _) | ("weight", true) => Tensor::ones(&shape, (Kind::Float, var.device())),
                ("weight", false) => {
                    let fan_in: i64 = shape[1..].iter().product();
                    let bound = (6.0 / fan_in as f64).sqrt() as f32;
                    let n: i64 = shape.iter().product();
                    let data: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
                    Tensor::from_slice(&data).reshape(&shape).to_device(var.device())
                }
                _ => Tensor::zeros(&shape, (Kind::Float, var.device())),
            };
            var.copy_(&value);
        }
    });
}
