//! A worker's training state as one safetensors buffer: the model, the
//! optimizer state and the teacher. On the `nccl` plane the workers own the
//! optimizer, so this is what rank 0 pushes when the coordinator evaluates or
//! checkpoints, and what the coordinator hands to a group that has no member
//! holding the run's state (the first generation, `--resume`).

use std::collections::{BTreeMap, HashMap};

use tch::Tensor;

use super::state::TrainingState;
use super::wire::all_finite;
use crate::method::Teacher;
use crate::model::{Model, ModelError};
use crate::optim::Optimizer;
use crate::tensor_io::{self, TensorIoError};

/// Why a training-state buffer was refused (nothing was loaded).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("malformed training state: {0}")]
    Malformed(#[from] TensorIoError),
    #[error("training state: tensor `{0}` has NaN or infinite values")]
    NonFinite(String),
    #[error("training state: unknown tensor `{0}`")]
    Unknown(String),
    #[error("training state{of}: {source}")]
    Model {
        /// `""` for the model, `", teacher"` for the teacher.
        of: &'static str,
        #[source]
        source: ModelError,
    },
    #[error("training state: {0}")]
    Optimizer(String),
}

const MODEL: &str = "model.";
const OPTIM: &str = "optim.";
const TEACHER: &str = "teacher.";
const REFRESHED_AT: &str = "dmtl.teacher_refreshed_at";

/// Model variables (`model.*`), optimizer state (`optim.*`) and teacher
/// variables (`teacher.*`, with its refresh step in the metadata).
pub fn encode_state(model: &Model, optimizer: &Optimizer, teacher: Option<&Teacher>) -> Result<Vec<u8>, TensorIoError> {
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut add = |prefix: &str, map: BTreeMap<String, Tensor>| {
        tensors.extend(map.into_iter().map(|(n, t)| (format!("{prefix}{n}"), t.detach())));
    };
    add(MODEL, model.variables());
    add(OPTIM, optimizer.state_tensors());
    let mut meta = HashMap::new();
    if let Some(t) = teacher {
        add(TEACHER, t.model.variables());
        meta.insert(REFRESHED_AT.to_string(), t.refreshed_at.to_string());
    }
    tensor_io::encode(&tensors, meta)
}

/// Checks a state buffer against `model` (every variable, shapes, dtypes,
/// finite values; the teacher's when there is one) and loads it into
/// `model`, `optimizer` and `teacher`. On error nothing is changed.
pub fn load_state(
    bytes: &[u8],
    model: &Model,
    optimizer: &mut Optimizer,
    teacher: Option<&mut Teacher>,
) -> Result<(), StateError> {
    let (tensors, meta) = tensor_io::decode(bytes)?;
    let device = model.device();
    let mut parts: [BTreeMap<String, Tensor>; 3] = Default::default();
    for (name, t) in tensors {
        if !all_finite(&t) {
            return Err(StateError::NonFinite(name));
        }
        let (i, rest) = if let Some(r) = name.strip_prefix(MODEL) {
            (0, r)
        } else if let Some(r) = name.strip_prefix(OPTIM) {
            (1, r)
        } else if let Some(r) = name.strip_prefix(TEACHER) {
            (2, r)
        } else {
            return Err(StateError::Unknown(name));
        };
        let t = if i == 1 { t } else { t.to_device(device) };
        parts[i].insert(rest.to_string(), t);
    }
    let [m, o, t] = parts;
    let of_model = |source| StateError::Model { of: "", source };
    let of_teacher = |source| StateError::Model { of: ", teacher", source };
    model.check_tensors(&m, true).map_err(of_model)?;
    if let Some(teacher) = &teacher {
        teacher.model.check_tensors(&t, true).map_err(of_teacher)?;
    }
    // The optimizer leaves its state unchanged when it refuses; the model and
    // the teacher are checked above, so nothing changes on an error.
    optimizer.load_state_tensors(&o, &model.parameters()).map_err(StateError::Optimizer)?;
    model.load_tensors(&m).map_err(of_model)?;
    if let Some(teacher) = teacher {
        teacher.model.load_tensors(&t).map_err(of_teacher)?;
        if let Some(at) = meta.get(REFRESHED_AT).and_then(|v| v.parse().ok()) {
            teacher.refreshed_at = at;
        }
    }
    Ok(())
}

impl TrainingState {
    /// The model, optimizer state and teacher as one buffer ([`encode_state`]).
    pub fn encode_bytes(&self) -> Result<Vec<u8>, TensorIoError> {
        encode_state(&self.model, &self.optimizer, self.teacher.as_ref())
    }

    /// Loads a buffer of [`TrainingState::encode_bytes`] ([`load_state`]):
    /// checked first, nothing changes on an error. The counters stay.
    pub fn load_bytes(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        load_state(bytes, &self.model, &mut self.optimizer, self.teacher.as_mut())
    }
}
