//! `dmtl train`.

use std::path::PathBuf;

use anyhow::Context;

use crate::progress::Progress;
use crate::table::print_final;

#[derive(clap::Args)]
pub struct Args {
    /// The run's config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Dataset root in the Cityscapes layout (overrides `data.root`).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Where config, split, metrics, checkpoints and final.json go.
    #[arg(long, default_value = "runs/latest")]
    run_dir: PathBuf,
    /// Override a config value, e.g. `--set train.steps=200` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue from the newest valid checkpoint in the run directory.
    #[arg(long)]
    resume: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = super::coordinator::load_config(&args.config, args.data_root.as_ref(), &args.overrides)?;
    let mut progress = Progress::new();
    let report = dmtl_core::train::train(&config, &args.run_dir, args.resume, &mut progress)
        .with_context(|| format!("training run in {}", args.run_dir.display()))?;
    progress.finish();
    print_final(&report, &args.run_dir);
    Ok(())
}

/// A TOML string literal (for `--set` values built from paths).
pub fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
