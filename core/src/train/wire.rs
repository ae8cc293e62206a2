//! Updates and weights as bytes: what travels between workers and the
//! coordinator (as chunked safetensors buffers, see `dmtl-proto`).
//!
//! Decoding validates everything before a tensor can touch a model: every
//! name must be a parameter (gradients) or a BatchNorm buffer (statistics) of
//! the model, with its shape and dtype, every value finite, the sample count
//! positive. A rejected update leaves nothing behind.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tch::Kind;

use super::step::Update;
use crate::losses::LossValues;
use crate::model::{Model, ModelError};
use crate::tensor_io::{self, TensorIoError};

const GRAD: &str = "grad.";
const BUFFER: &str = "buffer.";
const META: &str = "dmtl.update";

/// Why an update was rejected. Messages name the offending tensor.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("malformed update: {0}")]
    Format(#[from] TensorIoError),
    #[error("malformed update: {0}")]
    Metadata(String),
    #[error("update tensor `{0}` is neither `grad.<parameter>` nor `buffer.<statistic>`")]
    BadName(String),
    #[error("update tensor `{name}`: `{param}` is not a {what} of this model")]
    Unknown { name: String, param: String, what: &'static str },
    #[error("update tensor `{name}` has shape {got:?}, the model's is {expected:?}")]
    Shape { name: String, expected: Vec<i64>, got: Vec<i64> },
    #[error("update tensor `{name}` has dtype {got:?}, expected {expected:?}")]
    Kind { name: String, expected: Kind, got: Kind },
    #[error("update tensor `{name}` holds NaN or infinite values")]
    NonFinite { name: String },
    #[error("update claims {0} samples; it must be at least 1")]
    NoSamples(usize),
    #[error("update carries no gradients")]
    Empty,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    samples: usize,
    losses: LossValues,
}

/// Encodes an update as one safetensors buffer.
pub fn encode_update(update: &Update) -> Result<Vec<u8>, TensorIoError> {
    let mut tensors = BTreeMap::new();
    for (n, t) in &update.grads {
        tensors.insert(format!("{GRAD}{n}"), t.shallow_clone());
    }
    for (n, t) in &update.buffers {
        tensors.insert(format!("{BUFFER}{n}"), t.shallow_clone());
    }
    let meta = Meta { samples: update.samples, losses: update.losses.clone() };
    let mut info = HashMap::new();
    info.insert(META.to_string(), serde_json::to_string(&meta).expect("update metadata serialises"));
    tensor_io::encode(&tensors, info)
}

/// What an update is checked against: the shape and dtype of every parameter
/// and BatchNorm statistic of a model, and its device. Holds no tensor, so it
/// can be shared with the threads that validate updates in parallel.
#[derive(Debug, Clone)]
pub struct UpdateSpec {
    params: BTreeMap<String, (Vec<i64>, Kind)>,
    buffers: BTreeMap<String, (Vec<i64>, Kind)>,
    device: tch::Device,
}

impl UpdateSpec {
    pub fn of(model: &Model) -> UpdateSpec {
        let shape = |m: BTreeMap<String, tch::Tensor>| m.into_iter().map(|(n, t)| (n, (t.size(), t.kind()))).collect();
        UpdateSpec { params: shape(model.parameters()), buffers: shape(model.buffers()), device: model.device() }
    }
}

/// Decodes and validates an update against `model`; the tensors are moved to
/// the model's device. `model` itself is not touched.
pub fn decode_update(bytes: &[u8], model: &Model) -> Result<Update, UpdateError> {
    decode_update_with(bytes, &UpdateSpec::of(model))
}

/// [`decode_update`] against a model's [`UpdateSpec`].
pub fn decode_update_with(bytes: &[u8], spec: &UpdateSpec) -> Result<Update, UpdateError> {
    let (tensors, info) = tensor_io::decode(bytes)?;
    let meta: Meta = info
        .get(META)
        .ok_or_else(|| UpdateError::Metadata(format!("metadata `{META}` is missing")))
        .and_then(|m| serde_json::from_str(m).map_err(|e| UpdateError::Metadata(format!("`{META}`: {e}"))))?;
    if meta.samples == 0 {
        return Err(UpdateError::NoSamples(0));
    }
    let (mut grads, mut stats) = (BTreeMap::new(), BTreeMap::new());
    for (name, t) in tensors {
        let (target, what, param, out) = if let Some(p) = name.strip_prefix(GRAD) {
            (spec.params.get(p), "parameter", p.to_string(), &mut grads)
        } else if let Some(b) = name.strip_prefix(BUFFER) {
            (spec.buffers.get(b), "BatchNorm statistic", b.to_string(), &mut stats)
        } else {
            return Err(UpdateError::BadName(name));
        };
        let (size, kind) =
            target.ok_or_else(|| UpdateError::Unknown { name: name.clone(), param: param.clone(), what })?;
        if t.size() != *size {
            return Err(UpdateError::Shape { name, expected: size.clone(), got: t.size() });
        }
        if t.kind() != *kind {
            return Err(UpdateError::Kind { name, expected: *kind, got: t.kind() });
        }
        if !all_finite(&t) {
            return Err(UpdateError::NonFinite { name });
        }
        out.insert(param, t.to_device(spec.device));
    }
    if grads.is_empty() {
        return Err(UpdateError::Empty);
    }
    Ok(Update { grads, buffers: stats, samples: meta.samples, losses: meta.losses })
}

/// Whether every element of a floating-point tensor is finite.
///
/// One reduction instead of `isfinite().all()` (four full-size temporaries):
/// a NaN or an infinity anywhere makes the sum non-finite, so a finite sum
/// proves every element finite. Only a sum that overflowed from finite
/// elements takes the exact, slower check. On the coordinator this check
/// ran on every pushed update and took most of the update's validation.
pub fn all_finite(t: &tch::Tensor) -> bool {
    if !t.is_floating_point() {
        return true;
    }
    let sum = t.sum(t.kind()).double_value(&[]);
    sum.is_finite() || bool::try_from(t.isfinite().all()).unwrap_or(false)
}

/// Every variable of the model as one safetensors buffer (a weights snapshot).
pub fn encode_weights(model: &Model, metadata: HashMap<String, String>) -> Result<Vec<u8>, TensorIoError> {
    tensor_io::encode(&model.variables(), metadata)
}

/// Loads a weights snapshot into `model` after checking that it holds exactly
/// the model's variables; on error the model is unchanged.
pub fn load_weights(bytes: &[u8], model: &Model) -> Result<HashMap<String, String>, WeightsError> {
    let (tensors, info) = tensor_io::decode(bytes)?;
    let tensors = tensors.into_iter().map(|(n, t)| (n, t.to_device(model.device()))).collect();
    model.load_tensors(&tensors)?;
    Ok(info)
}

/// A weights snapshot that does not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("malformed weights snapshot: {0}")]
    Format(#[from] TensorIoError),
    #[error("weights snapshot: {0}")]
    Model(#[from] ModelError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::method::Losses;
    use crate::train::{compute_update, Batch, DistillParams};
    use tch::{Device, Tensor};

    fn model(seed: u64) -> Model {
        Model::new(&ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 }, 3, Device::Cpu, seed)
    }

    fn update(m: &Model) -> Update {
        let batch = crate::test_rng::seeded(1, || Batch {
            images: Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu)),
            seg: Some(Tensor::randint(3, [2, 8, 8], (Kind::Int64, Device::Cpu))),
            depth: None,
        });
        let losses = Losses { seg: true, ..Default::default() };
        compute_update(m, &batch, &losses, DistillParams::uniform(1.0, 2.0), None).unwrap()
    }

    fn tamper(bytes: &[u8], f: impl FnOnce(&mut BTreeMap<String, Tensor>)) -> Vec<u8> {
        let (mut tensors, info) = tensor_io::decode(bytes).unwrap();
        f(&mut tensors);
        tensor_io::encode(&tensors, info).unwrap()
    }

    #[test]
    fn an_update_survives_encoding_exactly() {
        let m = model(0);
        let u = update(&m);
        let back = decode_update(&encode_update(&u).unwrap(), &m).unwrap();
        assert_eq!(back.samples, u.samples);
        assert_eq!(back.losses, u.losses);
        assert_eq!(back.grads.len(), u.grads.len());
        assert!(u.grads.iter().all(|(n, g)| g.equal(&back.grads[n])));
        assert!(u.buffers.iter().all(|(n, b)| b.equal(&back.buffers[n])));
    }

    #[test]
    fn a_nan_gradient_is_rejected_with_its_name() {
        let m = model(0);
        let bytes = tamper(&encode_update(&update(&m)).unwrap(), |t| {
            let (name, g) = t.iter_mut().find(|(n, _)| n.starts_with(GRAD)).unwrap();
            let _ = g.fill_(f64::NAN);
            assert!(!name.is_empty());
        });
        let e = decode_update(&bytes, &m).unwrap_err();
        assert!(matches!(e, UpdateError::NonFinite { .. }), "{e}");
    }

    #[test]
    fn a_wrong_shape_or_unknown_parameter_or_wrong_dtype_is_rejected() {
        let m = model(0);
        let good = encode_update(&update(&m)).unwrap();
        let wrong_shape = tamper(&good, |t| {
            let name = t.keys().find(|n| n.starts_with(GRAD)).unwrap().clone();
            t.insert(name, Tensor::zeros([1, 2], (Kind::Float, Device::Cpu)));
        });
        assert!(matches!(decode_update(&wrong_shape, &m), Err(UpdateError::Shape { .. })));
        let unknown = tamper(&good, |t| {
            t.insert("grad.encoder.nope.weight".into(), Tensor::zeros([1], (Kind::Float, Device::Cpu)));
        });
        let e = decode_update(&unknown, &m).unwrap_err().to_string();
        assert!(e.contains("encoder.nope.weight"), "{e}");
        let wrong_kind = tamper(&good, |t| {
            let name = t.keys().find(|n| n.starts_with(GRAD)).unwrap().clone();
            let d = t[&name].to_kind(Kind::Double);
            t.insert(name, d);
        });
        assert!(matches!(decode_update(&wrong_kind, &m), Err(UpdateError::Kind { .. })));
        let bad_name = tamper(&good, |t| {
            t.insert("weights.x".into(), Tensor::zeros([1], (Kind::Float, Device::Cpu)));
        });
        assert!(matches!(decode_update(&bad_name, &m), Err(UpdateError::BadName(_))));
        assert!(matches!(decode_update(b"garbage", &m), Err(UpdateError::Format(_))));
    }

    #[test]
    fn finiteness_is_exact_for_nan_infinities_and_sums_that_overflow() {
        let t = |v: &[f32]| Tensor::from_slice(v);
        assert!(all_finite(&t(&[1.0, -2.0, 3.5])));
        assert!(!all_finite(&t(&[1.0, f32::NAN])));
        assert!(!all_finite(&t(&[f32::INFINITY, 1.0])));
        assert!(!all_finite(&t(&[f32::INFINITY, f32::NEG_INFINITY])));
        // Finite elements whose sum overflows f32 (and would overflow f64 in bulk) are finite.
        assert!(all_finite(&t(&[f32::MAX, f32::MAX, f32::MAX])));
        let huge = Tensor::from_slice(&[f64::MAX, f64::MAX]);
        assert!(all_finite(&huge));
        assert!(all_finite(&Tensor::from_slice(&[1i64, 2])));
    }

    #[test]
    fn a_gradient_for_a_buffer_is_rejected() {
        let m = model(0);
        let bytes = tamper(&encode_update(&update(&m)).unwrap(), |t| {
            let (name, b) = t.iter().find(|(n, _)| n.starts_with(BUFFER)).map(|(n, b)| (n.clone(), b.copy())).unwrap();
            t.insert(name.replacen(BUFFER, GRAD, 1), b);
        });
        assert!(matches!(decode_update(&bytes, &m), Err(UpdateError::Unknown { what: "parameter", .. })));
    }

    #[test]
    fn weights_move_between_models_and_a_mismatch_changes_nothing() {
        let (a, b) = (model(1), model(2));
        load_weights(&encode_weights(&a, HashMap::new()).unwrap(), &b).unwrap();
        let (va, vb) = (a.variables(), b.variables());
        assert!(va.iter().all(|(n, t)| t.equal(&vb[n])));
        let other = Model::new(&ModelConfig { width: 6, blocks: vec![1, 1], decoder_ratio: 1.0 }, 3, Device::Cpu, 3);
        let before: Vec<Tensor> = b.variables().values().map(Tensor::copy).collect();
        assert!(load_weights(&encode_weights(&other, HashMap::new()).unwrap(), &b).is_err());
        let after: Vec<Tensor> = b.variables().values().map(Tensor::copy).collect();
        assert!(before.iter().zip(&after).all(|(x, y)| x.equal(y)));
    }
}
