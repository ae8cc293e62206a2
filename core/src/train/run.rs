//! What a run starts from: its loaded data and split, and its run directory
//! opened for a fresh start or a resume. Shared by `dmtl train` and the
//! coordinator.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::error::TrainError;
use crate::checkpoint::{self, Checkpoint};
use crate::config::Config;
use crate::data::dataset::load_split;
use crate::data::split::{DisjointSplit, Manifest};
use crate::data::{Sample, Split};
use crate::method::Pool;
use crate::run_dir::RunDir;

/// The loaded dataset of a run.
pub struct RunData {
    pub train: Arc<Vec<Sample>>,
    pub val: Vec<Sample>,
    pub split: DisjointSplit,
}

impl RunData {
    pub fn load(config: &Config) -> Result<RunData, TrainError> {
        let train = load_split(&config.data, Split::Train)?;
        let val = load_split(&config.data, Split::Val)?;
        let ids: Vec<String> = train.iter().map(|s| s.id.clone()).collect();
        let split = RunData::split(config, &ids)?;
        Ok(RunData { train: Arc::new(train), val, split })
    }

    /// The disjoint split of the sorted training ids, refused when a half would be empty.
    pub fn split(config: &Config, ids: &[String]) -> Result<DisjointSplit, TrainError> {
        let split = DisjointSplit::new(ids, config.seed);
        if split.seg.is_empty() || split.depth.is_empty() {
            return Err(TrainError::EmptyHalf { root: config.data.root.clone(), images: ids.len() });
        }
        Ok(split)
    }

    /// The image pools of the whole split.
    pub fn pools(&self) -> BTreeMap<Pool, Vec<usize>> {
        Pool::ALL.iter().map(|&p| (p, self.split.pool(p))).collect()
    }
}

/// Writes (or, when resuming, checks) the split manifest of `dir` and finds
/// the checkpoint to continue from: the newest valid one, after checking
/// that the config matches it; unreadable newer ones are moved aside, never
/// deleted. Refuses to resume a run directory that holds results but no
/// checkpoint. Appends what it did to `message`.
pub fn open_run(
    config: &Config,
    dir: &RunDir,
    split: &DisjointSplit,
    resume: bool,
    message: &mut String,
) -> Result<Option<(PathBuf, Checkpoint)>, TrainError> {
    let manifest = split.manifest();
    if resume && dir.split_path().exists() {
        let old = Manifest::read(&dir.split_path())?;
        if old != manifest {
            return Err(TrainError::SplitChanged { path: dir.split_path(), root: config.data.root.clone() });
        }
    } else {
        manifest.write(&dir.split_path())?;
    }
    if !resume {
        return Ok(None);
    }
    let found = find_resume_point(config, dir, message)?;
    dir.truncate_metrics(found.as_ref().map_or(0, |(_, c)| c.state.step))?;
    Ok(found)
}

/// The newest valid checkpoint of `dir`, checked against `config`.
fn find_resume_point(
    config: &Config,
    dir: &RunDir,
    message: &mut String,
) -> Result<Option<(PathBuf, Checkpoint)>, TrainError> {
    let listed = checkpoint::list(&dir.checkpoints());
    match checkpoint::newest_valid(&dir.checkpoints()) {
        Some((path, ckpt)) => {
            if let Some((key, old, new)) = crate::run_dir::config_difference(&ckpt.config, config) {
                return Err(TrainError::Resume {
                    path,
                    message: format!("config key `{key}` differs from the checkpoint's ({old} → {new})"),
                });
            }
            // Newer checkpoints that do not load are kept aside (never deleted), so that
            // pruning cannot keep them instead of the ones this run writes.
            for (step, broken) in listed.iter().filter(|(s, _)| *s > ckpt.state.step) {
                let aside = broken.with_extension("safetensors.unreadable");
                std::fs::rename(broken, &aside).map_err(|e| TrainError::Resume {
                    path: broken.clone(),
                    message: format!("cannot move the unreadable checkpoint of step {step} aside: {e}"),
                })?;
                tracing::warn!(path = %aside.display(), "unreadable checkpoint moved aside");
            }
            message.push_str(&format!(", resumed from {}", path.display()));
            Ok(Some((path, ckpt)))
        }
        None if !listed.is_empty() => Err(TrainError::Resume {
            path: dir.checkpoints(),
            message: format!("none of its {} checkpoint(s) loads; nothing was changed", listed.len()),
        }),
        None if dir.metrics_path().exists() || dir.final_path().exists() => Err(TrainError::Resume {
            path: dir.path.clone(),
            message: "it holds metrics but no checkpoint to continue from; nothing was changed".into(),
        }),
        None => {
            message.push_str(", no checkpoint to resume from: starting at step 0");
            Ok(None)
        }
    }
}
