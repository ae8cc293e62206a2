//! `qualitative.png`: the same fixed validation images predicted by one run
//! of each of a few methods, side by side.

use std::path::{Path, PathBuf};

use super::error::ReportError;
use super::runs::RunRecord;

/// The methods shown side by side in `qualitative.png`, in order.
pub const QUALITATIVE_METHODS: [&str; 5] = ["full", "half", "alternate", "distill", "masked-distill"];

/// Writes `qualitative.png`: the same fixed validation images predicted by the
/// last checkpoint of the first seed of each of [`QUALITATIVE_METHODS`] that
/// is present. `None` when no run of them has a checkpoint (or none of those
/// methods is in the report).
pub fn qualitative(runs: &[RunRecord], path: &Path) -> Result<Option<PathBuf>, ReportError> {
    let mut rows: Vec<(String, crate::model::Model)> = Vec::new();
    let mut data = None;
    for label in QUALITATIVE_METHODS {
        let mut candidates: Vec<&RunRecord> = runs.iter().filter(|r| r.label == label).collect();
        candidates.sort_by_key(|r| r.config.seed);
        let Some(run) = candidates.first() else { continue };
        let Some((ckpt_path, ckpt)) = crate::checkpoint::newest_valid(&run.dir.join("checkpoints")) else { continue };
        let model =
            crate::model::Model::new(&ckpt.config.model, ckpt.config.data.classes.num_classes(), tch::Device::Cpu, 0);
        model
            .load_tensors(&ckpt.model)
            .map_err(|e| ReportError::Run { path: ckpt_path.clone(), message: e.to_string() })?;
        data.get_or_insert_with(|| run.config.data.clone());
        rows.push((label.to_string(), model));
    }
    let Some(data) = data else { return Ok(None) };
    let samples = crate::predict::load_qualitative_samples(&data, crate::predict::QUALITATIVE_IMAGES)
        .map_err(|e| ReportError::Input(format!("qualitative.png: {e}")))?;
    let refs: Vec<(String, &crate::model::Model)> = rows.iter().map(|(l, m)| (l.clone(), m)).collect();
    let image = crate::predict::qualitative_grid(&refs, &samples, data.classes, data.depth)
        .map_err(|e| ReportError::Plot { path: path.to_path_buf(), message: e.to_string() })?;
    image.save(path).map_err(|e| ReportError::Plot { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(Some(path.to_path_buf()))
}
