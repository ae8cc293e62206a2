//! `dmtl train`.

use std::path::PathBuf;

use anyhow::Context;
use dmtl_core::config::Config;

use crate::progress::Progress;
use crate::table::print_metrics;

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
    let mut overrides = args.overrides.clone();
    if let Some(root) = &args.data_root {
        overrides.push(format!("data.root={}", toml_string(&root.display().to_string())));
    }
    let config = Config::load(&args.config, &overrides)?;
    let mut progress = Progress::new();
    let report = dmtl_core::train::train(&config, &args.run_dir, args.resume, &mut progress)
        .with_context(|| format!("training run in {}", args.run_dir.display()))?;
    progress.finish();
    println!(
        "\n{} · seed {} · {} steps · {} images · {:.0} s  ({})",
        report.method,
        report.seed,
        report.steps,
        report.images_seen,
        report.wall_s,
        args.run_dir.join("final.json").display()
    );
    print_metrics(&report.metrics());
    Ok(())
}

/// A TOML string literal (for `--set` values built from paths).
pub fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
