//! The report end to end: [`load`] finds, loads, checks and summarises the
//! runs; [`write`] stores the tables, the figures and `qualitative.png`.

use std::path::{Path, PathBuf};

use super::comparable::check_comparable;
use super::error::ReportError;
use super::plots;
use super::qualitative::qualitative;
use super::runs::{find_runs, load_run, RunRecord};
use super::summary::{summarise, MethodSummary};
use super::table::{csv, markdown};

/// Loads, checks and summarises the runs under `roots`.
pub fn load(roots: &[PathBuf]) -> Result<(Vec<RunRecord>, Vec<MethodSummary>), ReportError> {
    let runs = find_runs(roots)?.iter().map(|d| load_run(d)).collect::<Result<Vec<_>, _>>()?;
    check_comparable(&runs)?;
    let summary = summarise(&runs);
    Ok((runs, summary))
}

/// Writes `results.md`, `results.csv`, `pareto.png`, `pareto.svg` and `curves.png` into `out`.
pub fn write(summary: &[MethodSummary], runs: &[RunRecord], out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out).map_err(|source| ReportError::Io { path: out.to_path_buf(), source })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    let mut written = Vec::new();
    let first = &runs[0].config;
    let md = format!(
        "# Results\n\n{} runs; {}×{}, {} steps of batch {}, model width {} blocks {:?}, data `{}`.\n\
         Mean ± sample std over seeds. Δm: mean relative change of mIoU, pixel accuracy, abs err and rel err \
         (errors sign-flipped; higher is better). Gap closed: Δm vs `half` divided by Δm of `full` vs `half`.\n\n{}",
        runs.len(),
        first.data.height,
        first.data.width,
        first.train.steps,
        first.train.batch_size,
        first.model.width,
        first.model.blocks,
        first.data.root,
        markdown(summary)
    );
    for (name, text) in [("results.md", md), ("results.csv", csv(summary))] {
        let path = out.join(name);
        crate::tensor_io::write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
        written.push(path);
    }
    written.extend(plots::pareto(summary, out)?);
    written.push(plots::curves(summary, &out.join("curves.png"))?);
    match qualitative(runs, &out.join("qualitative.png")) {
        Ok(Some(path)) => written.push(path),
        Ok(None) => {}
        Err(e) => tracing::warn!("qualitative.png not written: {e}"),
    }
    Ok(written)
}
