//! [`Model`]: the network together with the variables it owns.

use std::collections::BTreeMap;

use tch::{nn, Device, Kind, Tensor};

use super::compute::{to_channels_last, Compute};
use super::init::reset_parameters;
use super::net::{MultiTaskNet, Outputs};
use crate::config::ModelConfig;

/// A tensor set that does not fit this model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("tensor `{name}` is missing")]
    Missing { name: String },
    #[error("tensor `{name}` is not a variable of this model")]
    Unknown { name: String },
    #[error("tensor `{name}` has shape {got:?}, the model expects {expected:?}")]
    Shape { name: String, expected: Vec<i64>, got: Vec<i64> },
    #[error("tensor `{name}` has dtype {got:?}, the model expects {expected:?}")]
    Kind { name: String, expected: Kind, got: Kind },
}

/// The multi-task network and its variables (parameters and BatchNorm buffers).
/// The variables are always float32; [`Compute`] only says how the passes run.
pub struct Model {
    pub vs: nn::VarStore,
    pub net: MultiTaskNet,
    pub config: ModelConfig,
    pub classes: usize,
    compute: Compute,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("classes", &self.classes)
            .field("compute", &self.compute)
            .finish()
    }
}

impl Model {
    /// Builds the model on `device` with weights initialised from `seed`, computing
    /// in float32 with the default (contiguous NCHW) layout.
    pub fn new(config: &ModelConfig, classes: usize, device: Device, seed: u64) -> Model {
        let vs = nn::VarStore::new(device);
        let net = MultiTaskNet::new(&vs.root(), config, classes as i64);
        reset_parameters(&vs, seed);
        Model { vs, net, config: config.clone(), classes, compute: Compute::default() }
    }

    /// The same model computing as `compute` says (see [`Model::set_compute`]).
    pub fn with_compute(mut self, compute: Compute) -> Model {
        self.set_compute(compute);
        self
    }

    /// Sets the number format and layout of the passes. The 4-D (convolution)
    /// weights are re-strided in place to channels-last or back to contiguous;
    /// values, names, shapes and dtypes do not change. Meant before training
    /// (a gradient that already exists keeps its layout, which is correct, only slower).
    pub fn set_compute(&mut self, compute: Compute) {
        tch::no_grad(|| {
            for (_, mut var) in self.vs.variables() {
                if var.dim() != 4 || (!compute.channels_last && var.is_contiguous()) {
                    continue;
                }
                let restrided = if compute.channels_last { to_channels_last(&var) } else { var.contiguous() };
                var.set_data(&restrided);
            }
        });
        self.compute = compute;
    }

    pub fn compute(&self) -> Compute {
        self.compute
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// See [`MultiTaskNet::forward_t`]: in the layout and number format of
    /// [`Model::compute`]; the outputs are always float32.
    pub fn forward_t(&self, xs: &Tensor, train: bool, seg: bool, depth: bool) -> Outputs {
        let mut x = if self.compute.channels_last && xs.dim() == 4 { to_channels_last(xs) } else { xs.shallow_clone() };
        let kind = self.compute.activation_kind();
        if x.kind() != kind {
            x = x.to_kind(kind);
        }
        let out = self.net.forward_t(&x, train, seg, depth);
        let float = |t: Tensor| if t.kind() == Kind::Float { t } else { t.to_kind(Kind::Float) };
        Outputs { seg: out.seg.map(float), depth: out.depth.map(float) }
    }

    /// The forward pass of distillation targets: BatchNorm normalises with the
    /// batch's own statistics, as the student's training forward does, and
    /// every buffer (running statistics, batch counters) is left as it was.
    /// No gradient is recorded.
    pub fn forward_batch_stats(&self, xs: &Tensor, seg: bool, depth: bool) -> Outputs {
        let saved: Vec<(Tensor, Tensor)> = self.buffers().into_values().map(|b| (b.copy(), b)).collect();
        tch::no_grad(|| {
            let out = self.forward_t(xs, true, seg, depth);
            for (old, mut live) in saved {
                live.copy_(&old);
            }
            out
        })
    }

    /// Every variable by name (parameters and buffers), sorted; shallow handles.
    pub fn variables(&self) -> BTreeMap<String, Tensor> {
        self.vs.variables().into_iter().collect()
    }

    /// Trainable parameters by name, sorted.
    pub fn parameters(&self) -> BTreeMap<String, Tensor> {
        self.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect()
    }

    /// BatchNorm running statistics by name, sorted.
    pub fn buffers(&self) -> BTreeMap<String, Tensor> {
        self.variables().into_iter().filter(|(_, t)| !t.requires_grad()).collect()
    }

    /// Number of trainable scalars.
    pub fn num_parameters(&self) -> i64 {
        self.parameters().values().map(Tensor::numel).map(|n| n as i64).sum()
    }

    /// Copies every variable of `other` (same architecture) into this model.
    pub fn copy_from(&mut self, other: &Model) {
        self.vs.copy(&other.vs).expect("models of the same architecture");
    }

    /// Checks that `tensors` holds exactly this model's variables with their
    /// shapes and dtypes, then copies them in. On error the model is unchanged.
    pub fn load_tensors(&self, tensors: &BTreeMap<String, Tensor>) -> Result<(), ModelError> {
        let vars = self.variables();
        self.check_tensors(tensors, true)?;
        tch::no_grad(|| {
            for (name, mut var) in vars {
                var.copy_(&tensors[&name]);
            }
        });
        Ok(())
    }

    /// Checks names, shapes and dtypes of `tensors` against this model's variables;
    /// with `complete`, every variable must be present.
    pub fn check_tensors(&self, tensors: &BTreeMap<String, Tensor>, complete: bool) -> Result<(), ModelError> {
        let vars = self.variables();
        for (name, t) in tensors {
            let var = vars.get(name).ok_or_else(|| ModelError::Unknown { name: name.clone() })?;
            if t.size() != var.size() {
                return Err(ModelError::Shape { name: name.clone(), expected: var.size(), got: t.size() });
            }
            if t.kind() != var.kind() {
                return Err(ModelError::Kind { name: name.clone(), expected: var.kind(), got: t.kind() });
            }
        }
        if complete {
            if let Some(name) = vars.keys().find(|n| !tensors.contains_key(*n)) {
                return Err(ModelError::Missing { name: name.clone() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Part;

    fn small() -> ModelConfig {
        ModelConfig { width: 8, blocks: vec![1, 1, 1], decoder_ratio: 1.0 }
    }

    #[test]
    fn outputs_have_the_input_resolution() {
        let m = Model::new(&small(), 7, Device::Cpu, 0);
        let x = Tensor::zeros([2, 3, 32, 48], (Kind::Float, Device::Cpu));
        let out = m.forward_t(&x, false, true, true);
        assert_eq!(out.seg.unwrap().size(), vec![2, 7, 32, 48]);
        assert_eq!(out.depth.unwrap().size(), vec![2, 1, 32, 48]);
    }

    #[test]
    fn every_variable_belongs_to_one_of_the_three_parts() {
        let m = Model::new(&small(), 19, Device::Cpu, 0);
        let vars = m.variables();
        for name in vars.keys() {
            assert!(Part::of(name).is_some(), "{name}");
        }
        for part in [Part::Encoder, Part::SegHead, Part::DepthHead] {
            assert!(vars.keys().any(|n| Part::of(n) == Some(part)), "{part:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_weights_and_another_seed_does_not() {
        let a = Model::new(&small(), 7, Device::Cpu, 1);
        let b = Model::new(&small(), 7, Device::Cpu, 1);
        let c = Model::new(&small(), 7, Device::Cpu, 2);
        let (va, vb, vc) = (a.parameters(), b.parameters(), c.parameters());
        assert!(va.iter().all(|(n, t)| t.equal(&vb[n])));
        assert!(va.iter().any(|(n, t)| !t.equal(&vc[n])));
    }

    #[test]
    fn the_default_cpu_model_has_between_half_and_one_million_parameters() {
        let m = Model::new(&ModelConfig::default(), 7, Device::Cpu, 0);
        let n = m.num_parameters();
        assert!((500_000..=1_000_000).contains(&n), "{n}");
    }

    #[test]
    fn a_resnet18_sized_encoder_comes_from_width_and_depth_alone() {
        let cfg = ModelConfig { width: 64, blocks: vec![2, 2, 2, 2], decoder_ratio: 0.5 };
        let m = Model::new(&cfg, 19, Device::Cpu, 0);
        let enc: i64 = m
            .parameters()
            .iter()
            .filter(|(n, _)| Part::of(n) == Some(Part::Encoder))
            .map(|(_, t)| t.numel() as i64)
            .sum();
        assert!((10_000_000..=12_000_000).contains(&enc), "{enc}");
    }

    #[test]
    fn loading_a_tensor_of_the_wrong_shape_is_rejected_and_changes_nothing() {
        let m = Model::new(&small(), 7, Device::Cpu, 0);
        let before = m.variables();
        let mut wrong: BTreeMap<String, Tensor> = before.iter().map(|(n, t)| (n.clone(), t.zeros_like())).collect();
        let name = wrong.keys().next().unwrap().clone();
        wrong.insert(name.clone(), Tensor::zeros([1], (Kind::Float, Device::Cpu)));
        let err = m.load_tensors(&wrong).unwrap_err().to_string();
        assert!(err.contains(&name), "{err}");
        let after = m.variables();
        assert!(before.iter().all(|(n, t)| t.equal(&after[n]) && t.abs().sum(Kind::Float).double_value(&[]) >= 0.0));
    }
}
