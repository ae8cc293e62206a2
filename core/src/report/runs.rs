//! Finding and loading finished runs: every folder holding `config.toml`
//! under the given roots, read as its config, `final.json` and
//! `metrics.jsonl`, and labelled by its experiment name.

use std::path::{Path, PathBuf};

use super::error::ReportError;
use crate::config::Config;
use crate::run_dir::{FinalReport, MetricsLine, RunDir};

/// One finished run.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub dir: PathBuf,
    /// The method label: the experiment config's name (`<label>/seed-<k>/`), else the method.
    pub label: String,
    pub config: Config,
    pub fin: FinalReport,
    pub curve: Vec<MetricsLine>,
}

/// Finds every run directory (a folder holding `config.toml`) under `roots`.
pub fn find_runs(roots: &[PathBuf]) -> Result<Vec<PathBuf>, ReportError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReportError> {
        if dir.join("config.toml").is_file() {
            out.push(dir.to_path_buf());
            return Ok(());
        }
        let entries = std::fs::read_dir(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for d in dirs {
            walk(&d, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    for root in roots {
        if !root.is_dir() {
            return Err(ReportError::Run { path: root.clone(), message: "not a directory".into() });
        }
        walk(root, &mut out)?;
    }
    if out.is_empty() {
        return Err(ReportError::Input(format!(
            "no run directory (a folder with config.toml) under {}",
            roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(out)
}

/// The label of a run directory: `<label>` for `…/<label>/seed-<k>`, else the method.
pub fn label_of(dir: &Path, config: &Config) -> String {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match (name.strip_prefix("seed-"), dir.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str())) {
        (Some(_), Some(parent)) => parent.to_string(),
        _ => config.method.kind.to_string(),
    }
}

/// Loads a finished run: its config, `final.json` and `metrics.jsonl`.
pub fn load_run(dir: &Path) -> Result<RunRecord, ReportError> {
    let rd = RunDir { path: dir.to_path_buf() };
    let config = Config::load(&rd.config_path(), &[])
        .map_err(|e| ReportError::Run { path: dir.to_path_buf(), message: e.to_string() })?;
    if !rd.final_path().is_file() {
        return Err(ReportError::Run {
            path: dir.to_path_buf(),
            message: "no final.json: the run did not finish (complete it with `dmtl experiment`, which resumes it, \
                      or leave it out)"
                .into(),
        });
    }
    let fin = FinalReport::read(&rd.final_path())
        .map_err(|e| ReportError::Run { path: dir.to_path_buf(), message: e.to_string() })?;
    let curve = rd.read_metrics().map_err(|e| ReportError::Run { path: dir.to_path_buf(), message: e.to_string() })?;
    Ok(RunRecord { dir: dir.to_path_buf(), label: label_of(dir, &config), config, fin, curve })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_folder_is_labelled_by_its_parent_and_any_other_by_its_method() {
        let config = Config::default();
        assert_eq!(label_of(Path::new("/x/masked-ema/seed-2"), &config), "masked-ema");
        assert_eq!(label_of(Path::new("/x/masked-ema/run"), &config), config.method.kind.to_string());
    }

    #[test]
    fn run_directories_are_found_in_sorted_order_without_looking_inside_one() {
        let root = tempfile::tempdir().expect("tempdir");
        for dir in ["b/seed-1", "a/seed-2", "a/seed-1", "a/seed-1/nested"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        for dir in ["b/seed-1", "a/seed-2", "a/seed-1", "a/seed-1/nested"] {
            std::fs::write(root.path().join(dir).join("config.toml"), "version = 1\n").expect("write");
        }
        let found = find_runs(&[root.path().to_path_buf()]).expect("runs");
        let rel: Vec<_> = found.iter().map(|p| p.strip_prefix(root.path()).expect("prefix").to_path_buf()).collect();
        assert_eq!(rel, ["a/seed-1", "a/seed-2", "b/seed-1"].map(PathBuf::from));
    }

    #[test]
    fn a_root_without_runs_is_an_input_error_naming_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let e = find_runs(&[root.path().to_path_buf()]).expect_err("no runs");
        assert!(matches!(e, ReportError::Input(_)), "{e}");
        assert!(e.to_string().contains(&root.path().display().to_string()), "{e}");
    }

    #[test]
    fn a_run_without_final_json_is_refused_as_unfinished() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.toml"), Config::default().to_toml()).expect("write");
        let e = load_run(dir.path()).expect_err("unfinished");
        assert!(e.to_string().contains("no final.json"), "{e}");
    }
}
