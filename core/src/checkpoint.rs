//! Checkpoints: one safetensors file holding the model, the teacher, the
//! optimizer state, the resolved config and the training state (step, draw
//! counters, teacher refresh), written atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::config::Config;
use crate::data::sampler::DrawCounters;
use crate::losses::{LossSums, LossValues};
use crate::tensor_io::{self, write_atomic};

/// The checkpoint format this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot read or write checkpoint: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid dmtl checkpoint: {message}")]
    Format { path: PathBuf, message: String },
}

/// Where training stands; together with the seed it determines every later
/// batch and augmentation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: usize,
    /// Draws taken from each image pool (the data RNG state).
    pub draws: DrawCounters,
    /// When the teacher was last refreshed (None without a teacher).
    pub teacher_refreshed_at: Option<usize>,
    pub images_seen: u64,
    /// Training wall time so far, in seconds.
    pub wall_s: f64,
    pub last_losses: Option<LossValues>,
    #[serde(default)]
    pub loader: LoaderStats,
    /// Train-loss sums since the last evaluation.
    #[serde(default)]
    pub loss_sums: LossSums,
}

/// How the background loader kept up (summed over steps).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoaderStats {
    pub steps: u64,
    /// Loader-thread seconds spent drawing, augmenting and stacking batches.
    pub prepare_s: f64,
    /// Training-thread seconds spent waiting for a batch.
    pub wait_s: f64,
}

impl LoaderStats {
    pub fn add(&mut self, prepare_s: f64, wait_s: f64) {
        self.steps += 1;
        self.prepare_s += prepare_s;
        self.wait_s += wait_s;
    }
}

#[derive(Debug)]
pub struct Checkpoint {
    pub config: Config,
    pub state: TrainState,
    pub model: BTreeMap<String, Tensor>,
    pub teacher: Option<BTreeMap<String, Tensor>>,
    pub optimizer: BTreeMap<String, Tensor>,
}

const MODEL: &str = "model.";
const TEACHER: &str = "teacher.";
const OPTIM: &str = "optim.";

impl Checkpoint {
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut all = BTreeMap::new();
        let groups = [(MODEL, Some(&self.model)), (TEACHER, self.teacher.as_ref()), (OPTIM, Some(&self.optimizer))];
        for (prefix, group) in groups {
            for (name, t) in group.into_iter().flatten() {
                all.insert(format!("{prefix}{name}"), t.shallow_clone());
            }
        }
        let mut meta = HashMap::new();
        meta.insert("dmtl.format".to_string(), CHECKPOINT_FORMAT.to_string());
        meta.insert("dmtl.config".to_string(), self.config.to_toml());
        meta.insert("dmtl.state".to_string(), serde_json::to_string(&self.state).expect("state serialises"));
        let bytes = tensor_io::encode(&all, meta)
            .map_err(|e| CheckpointError::Format { path: path.to_path_buf(), message: e.to_string() })?;
        write_atomic(path, &bytes).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })
    }

    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bad = |message: String| CheckpointError::Format { path: path.to_path_buf(), message };
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
        let (tensors, meta) = tensor_io::decode(&bytes).map_err(|e| bad(e.to_string()))?;
        let format = meta.get("dmtl.format").ok_or_else(|| bad("metadata `dmtl.format` is missing".into()))?;
        if format != &CHECKPOINT_FORMAT.to_string() {
            return Err(bad(format!("format {format}, this dmtl reads {CHECKPOINT_FORMAT}")));
        }
        let config_text = meta.get("dmtl.config").ok_or_else(|| bad("metadata `dmtl.config` is missing".into()))?;
        let config = Config::from_toml_str(config_text, path, &[]).map_err(|e| bad(format!("embedded config: {e}")))?;
        let state_text = meta.get("dmtl.state").ok_or_else(|| bad("metadata `dmtl.state` is missing".into()))?;
        let state: TrainState = serde_json::from_str(state_text).map_err(|e| bad(format!("embedded state: {e}")))?;
        let (mut model, mut teacher, mut optimizer) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for (name, t) in tensors {
            if let Some(n) = name.strip_prefix(MODEL) {
                model.insert(n.to_string(), t);
            } else if let Some(n) = name.strip_prefix(TEACHER) {
                teacher.insert(n.to_string(), t);
            } else if let Some(n) = name.strip_prefix(OPTIM) {
                optimizer.insert(n.to_string(), t);
            } else {
                return Err(bad(format!("unexpected tensor `{name}`")));
            }
        }
        if model.is_empty() {
            return Err(bad("it holds no model weights".into()));
        }
        let teacher = (!teacher.is_empty()).then_some(teacher);
        Ok(Checkpoint { config, state, model, teacher, optimizer })
    }
}

/// `checkpoints/step-<step>.safetensors`.
pub fn checkpoint_path(dir: &Path, step: usize) -> PathBuf {
    dir.join(format!("step-{step:08}.safetensors"))
}

/// The checkpoints in `dir`, oldest first.
pub fn list(dir: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name.strip_prefix("step-")?.strip_suffix(".safetensors")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The newest checkpoint in `dir` that loads; broken ones are skipped with a warning.
pub fn newest_valid(dir: &Path) -> Option<(PathBuf, Checkpoint)> {
    for (_, path) in list(dir).into_iter().rev() {
        match Checkpoint::load(&path) {
            Ok(c) => return Some((path, c)),
            Err(e) => tracing::warn!(error = %e, "skipping unreadable checkpoint"),
        }
    }
    None
}

/// Deletes all but the `keep` newest checkpoints.
pub fn prune(dir: &Path, keep: usize) {
    let all = list(dir);
    for (_, path) in all.iter().take(all.len().saturating_sub(keep)) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        let mut model = BTreeMap::new();
        model.insert("encoder.w".to_string(), Tensor::from_slice(&[1.0f32, 2.0]));
        let mut optimizer = BTreeMap::new();
        optimizer.insert("encoder.w.t".to_string(), Tensor::from_slice(&[3i64]));
        let mut state = TrainState { step: 40, images_seen: 640, ..Default::default() };
        state.draws.0.insert(crate::method::Pool::Seg, 320);
        Checkpoint { config: Config::default(), state, model, teacher: None, optimizer }
    }

    #[test]
    fn a_checkpoint_round_trips_with_its_config_and_state() {
        let dir = tempfile::tempdir().unwrap();
        let p = checkpoint_path(dir.path(), 40);
        checkpoint().save(&p).unwrap();
        let back = Checkpoint::load(&p).unwrap();
        assert_eq!(back.config, Config::default());
        assert_eq!(back.state, checkpoint().state);
        assert!(back.model["encoder.w"].equal(&checkpoint().model["encoder.w"]));
        assert!(back.teacher.is_none());
        assert_eq!(back.optimizer["encoder.w.t"].int64_value(&[0]), 3);
    }

    #[test]
    fn the_newest_valid_checkpoint_skips_a_corrupt_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        checkpoint().save(&checkpoint_path(dir.path(), 40)).unwrap();
        std::fs::write(checkpoint_path(dir.path(), 80), b"torn").unwrap();
        let (path, c) = newest_valid(dir.path()).unwrap();
        assert_eq!(path, checkpoint_path(dir.path(), 40));
        assert_eq!(c.state.step, 40);
        let e = Checkpoint::load(&checkpoint_path(dir.path(), 80)).unwrap_err().to_string();
        assert!(e.contains("step-00000080"), "{e}");
    }

    #[test]
    fn pruning_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for step in [10, 20, 30] {
            std::fs::write(checkpoint_path(dir.path(), step), b"x").unwrap();
        }
        prune(dir.path(), 2);
        let steps: Vec<usize> = list(dir.path()).into_iter().map(|(s, _)| s).collect();
        assert_eq!(steps, vec![20, 30]);
    }
}
