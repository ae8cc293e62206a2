//! The report end to end: [`load`] finds, loads, checks and summarises the
//! runs; [`write`] measures forgetting and the paired comparison against
//! `alternate`, and stores the tables, the figures and `qualitative.png`.

use std::path::{Path, PathBuf};

use super::comparable::check_comparable;
use super::error::ReportError;
use super::forgetting::forgetting;
use super::paired::paired;
use super::plots;
use super::qualitative::qualitative;
use super::runs::{find_runs, load_run, RunRecord};
use super::summary::{summarise, MethodSummary};
use super::table::{csv, forgetting_csv, forgetting_markdown, markdown, paired_csv, paired_markdown};

/// Loads, checks and summarises the runs under `roots`.
pub fn load(roots: &[PathBuf]) -> Result<(Vec<RunRecord>, Vec<MethodSummary>), ReportError> {
    let runs = find_runs(roots)?.iter().map(|d| load_run(d)).collect::<Result<Vec<_>, _>>()?;
    check_comparable(&runs)?;
    let summary = summarise(&runs);
    Ok((runs, summary))
}

/// Writes `results.md` (the results table, then the forgetting and the paired
/// sections), `results.csv`, `forgetting.csv`, `paired.csv`, `pareto.png`,
/// `pareto.svg`, `curves.png`, `forgetting.png` and, where it can be drawn,
/// `qualitative.png` into `out`.
pub fn write(summary: &[MethodSummary], runs: &[RunRecord], out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out).map_err(|source| ReportError::Io { path: out.to_path_buf(), source })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    let mut written = Vec::new();
    let first = &runs[0].config;
    let (forgetting_rows, paired_rows) = (forgetting(summary, runs), paired(summary, runs));
    let md = format!(
        "# Results\n\n{} runs; {}×{}, {} steps of batch {}, model width {} blocks {:?}, data `{}`.\n\
         Mean ± sample std over seeds. Δm: mean relative change of mIoU, pixel accuracy, abs err and rel err \
         (errors sign-flipped; higher is better). Gap closed: Δm vs `half` divided by Δm of `full` vs `half`.\n\n{}\n\
         {}\n{}",
        runs.len(),
        first.data.height,
        first.data.width,
        first.train.steps,
        first.train.batch_size,
        first.model.width,
        first.model.blocks,
        first.data.root,
        markdown(summary),
        forgetting_markdown(&forgetting_rows, first.train.steps),
        paired_markdown(&paired_rows),
    );
    let files = [
        ("results.md", md),
        ("results.csv", csv(summary)),
        ("forgetting.csv", forgetting_csv(&forgetting_rows)),
        ("paired.csv", paired_csv(&paired_rows)),
    ];
    for (name, text) in files {
        let path = out.join(name);
        crate::tensor_io::write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
        written.push(path);
    }
    written.extend(plots::pareto(summary, out)?);
    written.push(plots::curves(summary, &out.join("curves.png"))?);
    written.push(plots::forgetting(&forgetting_rows, &out.join("forgetting.png"))?);
    match qualitative(runs, &out.join("qualitative.png")) {
        Ok(Some(path)) => written.push(path),
        Ok(None) => {}
        Err(e) => tracing::warn!("qualitative.png not written: {e}"),
    }
    Ok(written)
}
