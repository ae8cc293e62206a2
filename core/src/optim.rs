//! Optimizers over named tensors, with explicit, checkpointable state.
//!
//! Only the parameters that received a gradient in a step are touched: a head
//! that no worker trained this step keeps its weights *and* its moments (no
//! weight decay, no momentum drift), which is what alternating training needs.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::config::{LrSchedule, OptimizerKind, TrainConfig};

/// Per-parameter state.
#[derive(Debug)]
struct Slot {
    /// Steps this parameter has been updated (Adam's bias correction).
    t: i64,
    /// Adam's first moment, or SGD's momentum buffer.
    m: Tensor,
    /// Adam's second moment.
    v: Option<Tensor>,
}

/// Adam (decoupled weight decay, i.e. AdamW) or SGD with momentum.
#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    weight_decay: f64,
    momentum: f64,
    betas: (f64, f64),
    eps: f64,
    slots: BTreeMap<String, Slot>,
}

impl Optimizer {
    pub fn new(cfg: &TrainConfig) -> Self {
        Optimizer {
            kind: cfg.optimizer,
            weight_decay: cfg.weight_decay,
            momentum: cfg.momentum,
            betas: (0.9, 0.999),
            eps: 1e-8,
            slots: BTreeMap::new(),
        }
    }

    /// Updates each parameter of `params` that has an entry in `grads`, in place.
    pub fn step(&mut self, params: &BTreeMap<String, Tensor>, grads: &BTreeMap<String, Tensor>, lr: f64) {
        tch::no_grad(|| {
            for (name, g) in grads {
                let Some(p) = params.get(name) else { continue };
                let mut p = p.shallow_clone();
                let slot = self.slots.entry(name.clone()).or_insert_with(|| Slot {
                    t: 0,
                    m: p.zeros_like(),
                    v: matches!(self.kind, OptimizerKind::Adam).then(|| p.zeros_like()),
                });
                slot.t += 1;
                match self.kind {
                    OptimizerKind::Adam => {
                        // As PyTorch's single-tensor AdamW, with few temporaries:
                        // p ← p·(1 − lr·wd); m ← lerp(m, g, 1 − β1); v ← β2·v + (1 − β2)·g²;
                        // p ← p − lr/c1 · m / (√v / √c2 + ε).
                        let (b1, b2) = self.betas;
                        if self.weight_decay > 0.0 {
                            let _ = p.g_mul_scalar_(1.0 - lr * self.weight_decay);
                        }
                        let _ = slot.m.lerp_(g, 1.0 - b1);
                        let v = slot.v.as_mut().expect("adam slots have a second moment");
                        let _ = v.g_mul_scalar_(b2).addcmul_(&(g * (1.0 - b2)), g);
                        let c1 = 1.0 - b1.powi(slot.t as i32);
                        let c2_sqrt = (1.0 - b2.powi(slot.t as i32)).sqrt();
                        let mut denom = v.sqrt();
                        let _ = denom.g_add_scalar_(self.eps * c2_sqrt);
                        let _ = p.addcdiv_(&(&slot.m * (-lr * c2_sqrt / c1)), &denom);
                    }
                    OptimizerKind::Sgd => {
                        let g = if self.weight_decay > 0.0 { g + &p * self.weight_decay } else { g.shallow_clone() };
                        let _ = slot.m.g_mul_scalar_(self.momentum).g_add_(&g);
                        let _ = p.g_sub_(&(&slot.m * lr));
                    }
                }
            }
        });
    }

    /// The state as named tensors (`<param>.m`, `<param>.v`, `<param>.t`), on the CPU.
    pub fn state_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (name, slot) in &self.slots {
            out.insert(format!("{name}.t"), Tensor::from_slice(&[slot.t]));
            out.insert(format!("{name}.m"), slot.m.to_device(tch::Device::Cpu));
            if let Some(v) = &slot.v {
                out.insert(format!("{name}.v"), v.to_device(tch::Device::Cpu));
            }
        }
        out
    }

    /// Restores the state written by [`Optimizer::state_tensors`]; tensors move to
    /// the device of the matching parameter. Names not among `params` are an error.
    pub fn load_state_tensors(
        &mut self,
        state: &BTreeMap<String, Tensor>,
        params: &BTreeMap<String, Tensor>,
    ) -> Result<(), String> {
        let mut slots = BTreeMap::new();
        for (key, t) in state {
            let (name, field) = key.rsplit_once('.').ok_or_else(|| format!("optimizer tensor `{key}`: bad name"))?;
            let p = params.get(name).ok_or_else(|| format!("optimizer tensor `{key}`: no parameter `{name}`"))?;
            let slot = slots.entry(name.to_string()).or_insert_with(|| Slot { t: 0, m: p.zeros_like(), v: None });
            match field {
                "t" => slot.t = t.int64_value(&[0]),
                "m" | "v" => {
                    if t.size() != p.size() {
                        return Err(format!(
                            "optimizer tensor `{key}`: shape {:?}, parameter has {:?}",
                            t.size(),
                            p.size()
                        ));
                    }
                    // In the parameter's memory layout (channels-last weights stay so).
                    let mut like = p.zeros_like();
                    tch::no_grad(|| like.copy_(&t.to_kind(Kind::Float).to_device(p.device())));
                    let t = like;
                    if field == "m" {
                        slot.m = t;
                    } else {
                        slot.v = Some(t);
                    }
                }
                other => return Err(format!("optimizer tensor `{key}`: unknown field `{other}`")),
            }
        }
        if matches!(self.kind, OptimizerKind::Adam) {
            if let Some((name, _)) = slots.iter().find(|(_, s)| s.v.is_none()) {
                return Err(format!("optimizer state of `{name}` has no second moment (was it written by SGD?)"));
            }
        }
        self.slots = slots;
        Ok(())
    }
}

/// The learning rate at `step` (0-based) of `cfg.steps`.
pub fn learning_rate(cfg: &TrainConfig, step: usize) -> f64 {
    let warmup = cfg.warmup_steps.min(cfg.steps);
    if step < warmup {
        return cfg.lr * (step + 1) as f64 / warmup as f64;
    }
    match cfg.lr_schedule {
        LrSchedule::Constant => cfg.lr,
        LrSchedule::Cosine => {
            let span = (cfg.steps - warmup).max(1) as f64;
            let progress = ((step - warmup) as f64 / span).min(1.0);
            cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BTreeMap<String, Tensor> {
        let mut p = BTreeMap::new();
        p.insert("a".to_string(), Tensor::from_slice(&[1.0f32, -2.0]));
        p.insert("b".to_string(), Tensor::from_slice(&[3.0f32]));
        p
    }

    #[test]
    fn adam_first_step_moves_each_weight_by_lr_against_the_gradient_sign() {
        let cfg = TrainConfig { weight_decay: 0.0, ..Default::default() };
        let mut opt = Optimizer::new(&cfg);
        let p = params();
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), Tensor::from_slice(&[0.5f32, -4.0]));
        opt.step(&p, &g, 0.1);
        let a: Vec<f32> = Vec::try_from(&p["a"]).unwrap();
        assert!((a[0] - 0.9).abs() < 1e-5 && (a[1] + 1.9).abs() < 1e-5, "{a:?}");
    }

    #[test]
    fn parameters_without_a_gradient_are_left_alone() {
        let mut opt = Optimizer::new(&TrainConfig::default());
        let p = params();
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), Tensor::from_slice(&[0.5f32, -4.0]));
        opt.step(&p, &g, 0.1);
        assert_eq!(p["b"].double_value(&[0]), 3.0);
        assert!(!opt.state_tensors().contains_key("b.m"));
    }

    #[test]
    fn sgd_with_momentum_accumulates_its_buffer() {
        let cfg = TrainConfig { optimizer: OptimizerKind::Sgd, weight_decay: 0.0, momentum: 0.5, ..Default::default() };
        let mut opt = Optimizer::new(&cfg);
        let p = params();
        let mut g = BTreeMap::new();
        g.insert("b".to_string(), Tensor::from_slice(&[1.0f32]));
        opt.step(&p, &g, 1.0);
        opt.step(&p, &g, 1.0);
        // 3 − 1 − (0.5 + 1) = 0.5
        assert!((p["b"].double_value(&[0]) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn saved_state_restores_the_same_trajectory() {
        let cfg = TrainConfig::default();
        let (p1, p2) = (params(), params());
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), Tensor::from_slice(&[0.5f32, -4.0]));
        let mut o1 = Optimizer::new(&cfg);
        o1.step(&p1, &g, 0.1);
        let mut o2 = Optimizer::new(&cfg);
        o2.step(&p2, &g, 0.1);
        let mut o3 = Optimizer::new(&cfg);
        o3.load_state_tensors(&o2.state_tensors(), &p2).unwrap();
        o1.step(&p1, &g, 0.1);
        o3.step(&p2, &g, 0.1);
        assert!(p1["a"].equal(&p2["a"]));
    }

    #[test]
    fn state_for_an_unknown_parameter_is_rejected() {
        let mut state = BTreeMap::new();
        state.insert("zzz.m".to_string(), Tensor::from_slice(&[0.0f32]));
        let e = Optimizer::new(&TrainConfig::default()).load_state_tensors(&state, &params()).unwrap_err();
        assert!(e.contains("zzz"), "{e}");
    }

    #[test]
    fn the_learning_rate_warms_up_then_decays_to_zero() {
        let cfg = TrainConfig { steps: 100, warmup_steps: 10, lr: 1.0, ..Default::default() };
        assert!((learning_rate(&cfg, 0) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&cfg, 9) - 1.0).abs() < 1e-12);
        assert!(learning_rate(&cfg, 55) < 0.6);
        assert!(learning_rate(&cfg, 99) < 0.01);
    }
}
