//! The arguments that make a run's config, shared by `train`, `coordinator`,
//! `local` and `experiment`: `--config`, `--data-root`, `--set`, `--run-dir`
//! and `--resume`, and how they are loaded.

use std::path::PathBuf;

use dmtl_core::config::{toml_string, Config, ConfigError};

/// `--data-root` and `--set`: changes to a config file's values.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Overrides {
    /// Dataset root in the Cityscapes layout (overrides `data.root`).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Override a config value, e.g. `--set train.steps=200` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl Overrides {
    /// The `key=value` overrides in the order they apply: every `--set` as
    /// given, then `data.root` from `--data-root` (which so wins over a
    /// `--set data.root=…`).
    pub fn list(&self) -> Vec<String> {
        let mut list = self.set.clone();
        if let Some(root) = &self.data_root {
            list.push(format!("data.root={}", toml_string(&root.display().to_string())));
        }
        list
    }
}

/// The config of one run and its run directory.
#[derive(clap::Args, Clone, Debug)]
pub struct ConfigArgs {
    /// The run's config (TOML).
    #[arg(long)]
    pub config: PathBuf,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Where config, split, metrics, checkpoints and final.json go.
    #[arg(long, default_value = "runs/latest")]
    pub run_dir: PathBuf,
    /// Continue from the newest valid checkpoint in the run directory.
    #[arg(long)]
    pub resume: bool,
}

impl ConfigArgs {
    /// Reads `--config`, applies the overrides, validates.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load(&self.config, &self.overrides.list())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConfigArgs,
    }

    fn parse(args: &[&str]) -> ConfigArgs {
        Cli::try_parse_from(std::iter::once("dmtl").chain(args.iter().copied())).expect("valid arguments").args
    }

    /// A valid config file (the tiny one of the tests) in `dir`.
    fn config_file(dir: &Path) -> PathBuf {
        let path = dir.join("run.toml");
        std::fs::write(&path, dmtl_core::config::tiny::Tiny::new("full").toml(Path::new("data"))).unwrap();
        path
    }

    #[test]
    fn the_run_directory_defaults_to_runs_latest_and_resume_to_off() {
        let args = parse(&["--config", "a.toml"]);
        assert_eq!(args.run_dir, Path::new("runs/latest"));
        assert!(!args.resume);
        assert!(args.overrides.list().is_empty());
    }

    #[test]
    fn set_overrides_are_listed_in_the_order_given_with_the_data_root_last() {
        let args =
            parse(&["--set", "train.steps=5", "--data-root", "/d/x", "--config", "a.toml", "--set", "train.steps=7"]);
        assert_eq!(args.overrides.list(), ["train.steps=5", "train.steps=7", "data.root=\"/d/x\""]);
    }

    #[test]
    fn a_later_set_wins_over_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_file(dir.path());
        let path = config.to_str().unwrap();
        let config = parse(&["--config", path, "--set", "train.steps=5", "--set", "train.steps=7"]).load().unwrap();
        assert_eq!(config.train.steps, 7);
        let config = parse(&["--config", path, "--set", "train.steps=7", "--set", "train.steps=5"]).load().unwrap();
        assert_eq!(config.train.steps, 5);
    }

    #[test]
    fn the_data_root_wins_over_a_set_data_root() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_file(dir.path());
        let args = parse(&["--config", config.to_str().unwrap(), "--data-root", "/d/x", "--set", "data.root=\"/y\""]);
        assert_eq!(args.load().unwrap().data.root, "/d/x");
    }

    #[test]
    fn a_data_root_with_quotes_and_backslashes_reaches_the_config_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_file(dir.path());
        let root = r#"/d/a "b" \c"#;
        let args = parse(&["--config", config.to_str().unwrap(), "--data-root", root]);
        assert_eq!(args.load().unwrap().data.root, root);
    }

    #[test]
    fn a_missing_config_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere.toml");
        let err = parse(&["--config", missing.to_str().unwrap()]).load().unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains("nowhere.toml"), "{err}");
    }

    #[test]
    fn a_bad_set_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_file(dir.path());
        let err = parse(&["--config", config.to_str().unwrap(), "--set", "train.stepz=3"]).load().unwrap_err();
        assert!(err.to_string().contains("stepz"), "{err}");
    }
}
