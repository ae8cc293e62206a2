//! The run directory: `config.toml`, `split.json`, `metrics.jsonl`,
//! `final.json` and `checkpoints/`. Nothing already written is overwritten
//! unless the run is resumed.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::losses::LossValues;
use crate::metrics::{DepthMetrics, EvalMetrics, SegMetrics};
use crate::tensor_io::write_atomic;

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already holds a run ({what}); pass --resume to continue it or choose another --run-dir")]
    Occupied { path: PathBuf, what: String },
    #[error("{path}: cannot resume: config key `{key}` differs from the run's config.toml ({old} → {new})")]
    ConfigChanged { path: PathBuf, key: String, old: String, new: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io { path: path.to_path_buf(), source }
}

/// One evaluation, a line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    pub step: usize,
    pub wall_s: f64,
    pub images_seen: u64,
    pub lr: f64,
    /// Mean train losses since the previous evaluation.
    pub train: LossValues,
    pub val: EvalMetrics,
}

/// `final.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalReport {
    pub method: String,
    pub seed: u64,
    pub steps: usize,
    pub wall_s: f64,
    pub seg: SegMetrics,
    pub depth: DepthMetrics,
    #[serde(default)]
    pub images_seen: u64,
    /// How the background loader kept up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loader: Option<crate::checkpoint::LoaderStats>,
}

impl FinalReport {
    pub fn metrics(&self) -> EvalMetrics {
        EvalMetrics { seg: self.seg.clone(), depth: self.depth.clone() }
    }

    pub fn read(path: &Path) -> Result<FinalReport, RunDirError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        serde_json::from_str(&text)
            .map_err(|e| RunDirError::Invalid { path: path.to_path_buf(), message: e.to_string() })
    }
}

#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

/// Keys that only say where or how fast to run; a resumed run may change them.
/// (`train.precision` is not one: bf16 changes the numbers a run produces.)
pub const RUNTIME_KEYS: [&str; 16] = [
    "data.root",
    "data.load_threads",
    "data.batch_threads",
    "data.prefetch",
    "train.device",
    "train.threads",
    "train.channels_last",
    "train.cudnn_benchmark",
    "train.log_every",
    "eval.batch_size",
    "distributed.data_plane",
    "distributed.min_workers_per_task",
    "distributed.round_timeout_s",
    "distributed.heartbeat_interval_ms",
    "distributed.heartbeat_timeout_ms",
    "distributed.chunk_bytes",
];

/// The first key (dotted) whose value differs between two configs, ignoring
/// [`RUNTIME_KEYS`]: `(key, old, new)` (see [`crate::config::diff`]).
pub fn config_difference(old: &Config, new: &Config) -> Option<(String, String, String)> {
    old.first_difference(new, &RUNTIME_KEYS).map(|d| {
        let (old, new) = d.values();
        (d.key, old, new)
    })
}

impl RunDir {
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    pub fn split_path(&self) -> PathBuf {
        self.path.join("split.json")
    }
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    pub fn final_path(&self) -> PathBuf {
        self.path.join("final.json")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.path.join("checkpoints")
    }

    /// Opens the run directory for `config`. A new run needs a directory
    /// without a previous run in it; a resumed run needs the same config
    /// (differences are reported by key).
    pub fn prepare(path: &Path, config: &Config, resume: bool) -> Result<RunDir, RunDirError> {
        let dir = RunDir { path: path.to_path_buf() };
        std::fs::create_dir_all(dir.checkpoints()).map_err(io(path))?;
        let config_path = dir.config_path();
        if resume && config_path.exists() {
            let text = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
            let old = Config::from_toml_str(&text, &config_path, &[])
                .map_err(|e| RunDirError::Invalid { path: config_path.clone(), message: e.to_string() })?;
            if let Some((key, old, new)) = config_difference(&old, config) {
                return Err(RunDirError::ConfigChanged { path: config_path, key, old, new });
            }
        } else if !resume {
            for (file, what) in [
                (dir.final_path(), "final.json"),
                (config_path.clone(), "config.toml"),
                (dir.metrics_path(), "metrics.jsonl"),
            ] {
                if file.exists() {
                    return Err(RunDirError::Occupied { path: path.to_path_buf(), what: what.into() });
                }
            }
            if !crate::checkpoint::list(&dir.checkpoints()).is_empty() {
                return Err(RunDirError::Occupied { path: path.to_path_buf(), what: "checkpoints".into() });
            }
        }
        write_atomic(&config_path, config.to_toml().as_bytes()).map_err(io(&config_path))?;
        Ok(dir)
    }

    /// Keeps only the metrics lines up to `step` (a resumed run recomputes the rest).
    pub fn truncate_metrics(&self, step: usize) -> Result<(), RunDirError> {
        let path = self.metrics_path();
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| serde_json::from_str::<MetricsLine>(l).map(|m| m.step <= step).unwrap_or(false))
            .collect();
        let mut out = kept.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        write_atomic(&path, out.as_bytes()).map_err(io(&path))
    }

    pub fn append_metrics(&self, line: &MetricsLine) -> Result<(), RunDirError> {
        let path = self.metrics_path();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        let text = serde_json::to_string(line).expect("metrics serialise");
        writeln!(f, "{text}").map_err(io(&path))
    }

    pub fn read_metrics(&self) -> Result<Vec<MetricsLine>, RunDirError> {
        let path = self.metrics_path();
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        text.lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| RunDirError::Invalid { path: path.clone(), message: format!("line {}: {e}", i + 1) })
            })
            .collect()
    }

    pub fn write_final(&self, report: &FinalReport) -> Result<(), RunDirError> {
        let path = self.final_path();
        let text = serde_json::to_string_pretty(report).expect("report serialises");
        write_atomic(&path, text.as_bytes()).map_err(io(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_refuses_a_directory_that_holds_one() {
        let dir = tempfile::tempdir().unwrap();
        RunDir::prepare(dir.path(), &Config::default(), false).unwrap();
        let e = RunDir::prepare(dir.path(), &Config::default(), false).unwrap_err().to_string();
        assert!(e.contains("--resume"), "{e}");
        // And nothing was lost: the config is still there.
        assert!(dir.path().join("config.toml").exists());
    }

    #[test]
    fn resuming_with_a_changed_config_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        RunDir::prepare(dir.path(), &Config::default(), false).unwrap();
        let mut changed = Config::default();
        changed.train.lr = 0.5;
        let e = RunDir::prepare(dir.path(), &changed, true).unwrap_err().to_string();
        assert!(e.contains("train.lr"), "{e}");
        RunDir::prepare(dir.path(), &Config::default(), true).unwrap();
    }

    #[test]
    fn resuming_on_another_device_or_data_location_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        RunDir::prepare(dir.path(), &Config::default(), false).unwrap();
        let mut moved = Config::default();
        moved.train.device = "cuda:1".into();
        moved.data.root = "/elsewhere".into();
        moved.train.threads = 16;
        moved.train.channels_last = true;
        moved.train.cudnn_benchmark = false;
        RunDir::prepare(dir.path(), &moved, true).unwrap();
    }

    #[test]
    fn resuming_in_another_precision_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        RunDir::prepare(dir.path(), &Config::default(), false).unwrap();
        let mut bf16 = Config::default();
        bf16.train.precision = crate::config::Precision::Bf16;
        let e = RunDir::prepare(dir.path(), &bf16, true).unwrap_err().to_string();
        assert!(e.contains("train.precision"), "{e}");
    }
}
