//! How the model computes, independently of what it is: the number format of
//! the passes (`train.precision`) and the memory layout of activations and
//! convolution weights (`train.channels_last`). Neither changes a variable's
//! name, shape or dtype, so checkpoints, the wire and the optimizer see the
//! same float32 tensors either way.

use tch::{nn, Kind, Tensor};

use crate::config::{Precision, TrainConfig};

/// The runtime number format and memory layout of a [`super::Model`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compute {
    /// `Fp32`, or `Bf16`: the input is cast to bfloat16, every convolution casts
    /// its float32 weights to the input's kind (a differentiable cast, so the
    /// gradients arrive in float32 on the float32 parameters), BatchNorm keeps
    /// float32 weights and statistics, and the heads' outputs are cast back to
    /// float32 before any loss or metric.
    pub precision: Precision,
    /// Inputs and 4-D weights with channels-last (NHWC) strides; libtorch's
    /// convolutions follow the input's layout.
    pub channels_last: bool,
}

impl Compute {
    /// The `[train]` keys `precision` and `channels_last`.
    pub fn of(train: &TrainConfig) -> Compute {
        Compute { precision: train.precision, channels_last: train.channels_last }
    }

    /// The kind activations are computed in.
    pub fn activation_kind(&self) -> Kind {
        match self.precision {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }
}

impl std::fmt::Display for Compute {
    /// `fp32` or `bf16`, with `, channels-last` when set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.precision.as_str())?;
        if self.channels_last {
            f.write_str(", channels-last")?;
        }
        Ok(())
    }
}

/// An NCHW-shaped copy of a 4-D tensor with channels-last strides
/// (`[H·W·C, 1, W·C, C]`); tch has no `memory_format` argument, so the
/// layout is made by permuting, copying and permuting back.
pub fn to_channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether a 4-D tensor is laid out channels-last (NHWC) in memory.
pub fn is_channels_last(t: &Tensor) -> bool {
    let (size, stride) = (t.size(), t.stride());
    if size.len() != 4 {
        return false;
    }
    let (c, h, w) = (size[1], size[2], size[3]);
    // Dimensions of extent 1 may have any stride.
    let want = [c * h * w, 1, w * c, c];
    (0..4).all(|i| size[i] == 1 || stride[i] == want[i])
}

/// `xs ⊛ conv` (groups 1, dilation 1) in `xs`'s kind: float32 weights (and
/// bias) are cast to a bfloat16 input's kind inside the graph, so their
/// gradients come back in float32.
pub(super) fn conv2d(xs: &Tensor, conv: &nn::Conv2D, stride: i64, padding: i64) -> Tensor {
    let kind = xs.kind();
    if conv.ws.kind() == kind {
        return xs.conv2d(&conv.ws, conv.bs.as_ref(), [stride, stride], [padding, padding], [1, 1], 1);
    }
    let ws = conv.ws.to_kind(kind);
    let bs = conv.bs.as_ref().map(|b| b.to_kind(kind));
    xs.conv2d(&ws, bs.as_ref(), [stride, stride], [padding, padding], [1, 1], 1)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use tch::{Device, Kind, Tensor};

    use super::*;
    use crate::config::{Config, ModelConfig, TeacherKind};
    use crate::method::{Losses, Teacher};
    use crate::model::Model;
    use crate::optim::Optimizer;
    use crate::train::{apply, compute_update, merge, wire, Batch, DistillParams, TrainingState, Update};

    fn small() -> ModelConfig {
        ModelConfig { width: 8, blocks: vec![1, 1, 1], decoder_ratio: 1.0 }
    }

    fn model(compute: Compute) -> Model {
        Model::new(&small(), 7, Device::Cpu, 5).with_compute(compute)
    }

    fn batch() -> Batch {
        crate::test_rng::seeded(11, || Batch {
            images: Tensor::randn([4, 3, 32, 64], (Kind::Float, Device::Cpu)),
            seg: Some(Tensor::randint(7, [4, 32, 64], (Kind::Int64, Device::Cpu))),
            depth: Some(Tensor::rand([4, 1, 32, 64], (Kind::Float, Device::Cpu)) + 0.5),
        })
    }

    /// Both task losses and depth distillation, so the teacher's forward runs too.
    fn losses() -> Losses {
        Losses { seg: true, depth: true, distill_depth: true, ..Default::default() }
    }

    const DISTILL: DistillParams = DistillParams::uniform(1.0, 2.0);

    fn step(m: &Model) -> Update {
        let teacher = Teacher::new(
            m,
            &small(),
            &crate::config::DistillConfig { teacher: TeacherKind::Phase, ..Default::default() },
        );
        compute_update(m, &batch(), &losses(), DISTILL, Some(&teacher.model)).unwrap()
    }

    fn loss_values(u: &Update) -> Vec<f64> {
        let l = &u.losses;
        vec![l.seg.unwrap(), l.depth.unwrap(), l.distill_depth.unwrap(), l.total]
    }

    /// All gradients as one flat float64 vector (sorted by name).
    fn flat(grads: &BTreeMap<String, Tensor>) -> Tensor {
        Tensor::cat(&grads.values().map(|g| g.flatten(0, -1).to_kind(Kind::Double)).collect::<Vec<_>>(), 0)
    }

    fn bf16() -> Compute {
        Compute { precision: Precision::Bf16, channels_last: false }
    }

    fn all_float(tensors: &BTreeMap<String, Tensor>, what: &str) {
        for (n, t) in tensors {
            assert_eq!(t.kind(), Kind::Float, "{what} `{n}`");
        }
    }

    #[test]
    fn a_bf16_step_is_close_to_fp32_with_fp32_outputs_gradients_and_statistics() {
        let (fp32, half) = (model(Compute::default()), model(bf16()));
        let out = half.forward_t(&batch().images, false, true, true);
        assert_eq!(out.seg.unwrap().kind(), Kind::Float);
        assert_eq!(out.depth.unwrap().kind(), Kind::Float);

        let (a, b) = (step(&fp32), step(&half));
        // bfloat16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.2 %); over the
        // ~12 convolutions of a pass the outputs drift by ~1 %, so the losses agree to
        // 2 %. Gradients drift more: at initialisation on random images and labels they
        // are small sums of large cancelling terms, and the backward pass runs in bf16
        // as well; the heads' gradients agree to ~1 %, the encoder's to ~20 % per
        // tensor. As a whole: relative error < 0.2, cosine > 0.99 (measured here 0.105
        // and 0.9944; PyTorch's own CPU autocast to bf16 gives 0.095 and 0.9955 for the
        // same model at the same point, bench/pytorch_train.py).
        for (x, y) in loss_values(&a).iter().zip(loss_values(&b)) {
            assert!((x - y).abs() <= 2e-2 * x.abs(), "loss fp32 {x} vs bf16 {y}");
        }
        assert_eq!(a.grads.keys().collect::<Vec<_>>(), b.grads.keys().collect::<Vec<_>>());
        all_float(&b.grads, "gradient");
        all_float(&b.buffers, "BatchNorm statistic");
        let (ga, gb) = (flat(&a.grads), flat(&b.grads));
        let rel = (&ga - &gb).norm().double_value(&[]) / ga.norm().double_value(&[]);
        let cos = (&ga * &gb).sum(Kind::Double).double_value(&[])
            / (ga.norm().double_value(&[]) * gb.norm().double_value(&[]));
        assert!(rel < 0.2 && cos > 0.99, "gradients: relative error {rel:.2e}, cosine {cos:.6}");
        let (sa, sb) = (flat(&a.buffers), flat(&b.buffers));
        let rel = (&sa - &sb).norm().double_value(&[]) / sa.norm().double_value(&[]);
        assert!(rel < 1e-2, "BatchNorm statistics: relative error {rel:.2e}");
    }

    #[test]
    fn parameters_optimizer_state_checkpoints_and_the_wire_stay_fp32_in_bf16() {
        let mut config = Config { model: small(), ..Default::default() };
        config.train.precision = Precision::Bf16;
        config.method.kind = crate::config::MethodKind::Distill;
        let mut ts = TrainingState::new(&config, Device::Cpu);
        assert_eq!(ts.model.compute().precision, Precision::Bf16);
        let teacher = ts.teacher.as_ref().expect("distill has a teacher");
        assert_eq!(teacher.model.compute(), ts.model.compute(), "the teacher computes like the student");
        for _ in 0..2 {
            let t = &ts.teacher.as_ref().unwrap().model;
            let u = compute_update(&ts.model, &batch(), &losses(), DISTILL, Some(t)).unwrap();
            let bytes = wire::encode_update(&u).unwrap();
            let back = wire::decode_update(&bytes, &ts.model).expect("a bf16 update is a valid fp32 update");
            all_float(&back.grads, "decoded gradient");
            apply(&ts.model, &mut ts.optimizer, &merge(&[&u]).unwrap(), 1e-3);
        }
        all_float(&ts.model.variables(), "variable");
        let ckpt = ts.checkpoint(&config);
        all_float(&ckpt.model, "checkpoint model");
        all_float(ckpt.teacher.as_ref().unwrap(), "checkpoint teacher");
        let moments: BTreeMap<String, Tensor> =
            ckpt.optimizer.into_iter().filter(|(n, _)| !n.ends_with(".t")).collect();
        assert!(!moments.is_empty());
        all_float(&moments, "optimizer state");
        let bytes = wire::encode_weights(&ts.model, HashMap::new()).unwrap();
        wire::load_weights(&bytes, &model(Compute::default())).expect("bf16 weights load into an fp32 model");
    }

    /// max |a − b| ≤ 1e-5 · max(1, max |a|).
    fn close(a: &Tensor, b: &Tensor, what: &str) {
        let diff = (a - b).abs().max().double_value(&[]);
        let scale = a.abs().max().double_value(&[]).max(1.0);
        assert!(diff <= 1e-5 * scale, "{what}: max difference {diff:.3e} (scale {scale:.3e})");
    }

    #[test]
    fn channels_last_gives_the_default_layouts_outputs_and_gradients_within_1e_5() {
        let cl = Compute { precision: Precision::Fp32, channels_last: true };
        let (plain, nhwc) = (model(Compute::default()), model(cl));
        let mut restrided = 0;
        for (name, w) in nhwc.parameters() {
            if w.dim() == 4 && w.size()[1] > 1 && w.size()[2] > 1 {
                assert!(is_channels_last(&w) && !w.is_contiguous(), "`{name}` strides {:?}", w.stride());
                restrided += 1;
            }
        }
        assert!(restrided >= 10, "{restrided} 3×3 convolution weights");

        let x = batch().images;
        let (oa, ob) = (plain.forward_t(&x, false, true, true), nhwc.forward_t(&x, false, true, true));
        close(oa.seg.as_ref().unwrap(), ob.seg.as_ref().unwrap(), "seg logits");
        close(oa.depth.as_ref().unwrap(), ob.depth.as_ref().unwrap(), "depth");

        // SGD: Adam's first steps move every weight by about ±lr whatever the
        // gradient's size, which would turn float noise in tiny gradients into lr.
        let sgd = crate::config::TrainConfig { optimizer: crate::config::OptimizerKind::Sgd, ..Default::default() };
        let (mut opt_a, mut opt_b) = (Optimizer::new(&sgd), Optimizer::new(&sgd));
        for _ in 0..2 {
            let (a, b) = (step(&plain), step(&nhwc));
            for (x, y) in loss_values(&a).iter().zip(loss_values(&b)) {
                assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "loss {x} vs {y}");
            }
            for (name, g) in &a.grads {
                close(g, &b.grads[name], name);
            }
            for (name, s) in &a.buffers {
                close(s, &b.buffers[name], name);
            }
            let w = "encoder.stage1.block0.conv1.conv.weight";
            assert!(is_channels_last(&b.grads[w]), "the gradient follows its weight's layout");
            apply(&plain, &mut opt_a, &merge(&[&a]).unwrap(), 1e-2);
            apply(&nhwc, &mut opt_b, &merge(&[&b]).unwrap(), 1e-2);
        }
        let (va, vb) = (plain.variables(), nhwc.variables());
        for (name, t) in &va {
            close(t, &vb[name], name);
        }
        let w = "encoder.stage1.block0.conv1.conv.weight";
        assert!(is_channels_last(&vb[w]), "the optimizer updates in place, keeping the layout");

        // A checkpoint's (contiguous) tensors and a weight snapshot load into the
        // channels-last model without changing its layout, and come out equal.
        let fresh = model(cl);
        fresh.load_tensors(&va).unwrap();
        assert!(is_channels_last(&fresh.variables()[w]));
        let bytes = wire::encode_weights(&nhwc, HashMap::new()).unwrap();
        let back = model(Compute::default());
        wire::load_weights(&bytes, &back).unwrap();
        for (name, t) in back.variables() {
            assert!(t.equal(&vb[&name]), "{name} survives the wire");
        }
        // And back to the default layout.
        let mut m = nhwc;
        m.set_compute(Compute::default());
        assert!(m.variables().values().all(Tensor::is_contiguous));
    }
}
