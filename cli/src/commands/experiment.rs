//! `dmtl experiment`: every config of a suite for every seed, skipping the
//! runs that finished, resuming the ones that did not.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use dmtl_coordinator::engine::EngineEnd;
use dmtl_core::config::Config;

use super::local::{run_local, LocalRun};
use crate::config_args::Overrides;

#[derive(clap::Args)]
#[command(mut_arg("data_root", |a| a.help("Dataset root (overrides every config's `data.root`)")))]
#[command(mut_arg("set", |a| {
    a.help("Override a config value in every run, e.g. `--set train.threads=2` (repeatable)")
}))]
pub struct Args {
    /// A folder of configs (`*.toml`), identical except [method], [distill] and seed.
    #[arg(long)]
    suite: PathBuf,
    /// Seeds per config: 0 .. N-1 (the config's `seed` key is replaced).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Where the runs go: OUT/<config name>/seed-<k>/.
    #[arg(long)]
    out: PathBuf,
    /// `local`: the distributed engine on loopback (coordinator + one seg and one
    /// depth worker, or one both-label worker); `train`: single-process.
    #[arg(long, default_value = "local", value_parser = ["local", "train"])]
    engine: String,
    #[command(flatten)]
    overrides: Overrides,
}

/// The configs of a suite, by name, checked to differ only where they may.
pub fn suite(dir: &Path, overrides: &[String]) -> anyhow::Result<Vec<(String, Config)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--suite {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("--suite {}: no *.toml config in it", dir.display());
    }
    let mut out = Vec::new();
    for f in &files {
        let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        out.push((name, Config::load(f, overrides)?));
    }
    // The same rule as the report: runs differ only in method, distillation and seed.
    let named: Vec<(&Path, &Config)> = files.iter().map(PathBuf::as_path).zip(out.iter().map(|(_, c)| c)).collect();
    dmtl_core::report::check_configs(&named)?;
    Ok(out)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let configs = suite(&args.suite, &args.overrides.list())?;
    let total = configs.len() as u64 * args.seeds;
    let mut done = 0;
    for seed in 0..args.seeds {
        for (name, config) in &configs {
            done += 1;
            let mut config = config.clone();
            config.seed = seed;
            let run_dir = args.out.join(name).join(format!("seed-{seed}"));
            if run_dir.join("final.json").is_file() {
                let saved = Config::load(&run_dir.join("config.toml"), &[])?;
                if let Some((key, old, new)) = dmtl_core::run_dir::config_difference(&saved, &config) {
                    bail!(
                        "{}: finished with `{key}` = {old}, the suite now says {new}; move the run aside to redo it",
                        run_dir.display()
                    );
                }
                eprintln!("[{done}/{total}] {name} seed {seed}: finished, skipped");
                continue;
            }
            let resume = run_dir.join("config.toml").is_file();
            eprintln!(
                "[{done}/{total}] {name} seed {seed}: {} ({})",
                if resume { "resuming" } else { "running" },
                run_dir.display()
            );
            let started = std::time::Instant::now();
            let end = match args.engine.as_str() {
                "train" => {
                    let mut progress = crate::progress::Progress::new();
                    let report = dmtl_core::train::train(&config, &run_dir, resume, &mut progress)
                        .with_context(|| format!("{name} seed {seed} in {}", run_dir.display()))?;
                    progress.finish();
                    EngineEnd::Finished(report)
                }
                _ => run_local(&LocalRun {
                    config: config.clone(),
                    run_dir: run_dir.clone(),
                    resume,
                    seg_workers: 1,
                    depth_workers: 1,
                    both_workers: 1,
                    threads: None,
                })
                .with_context(|| format!("{name} seed {seed} in {}", run_dir.display()))?,
            };
            match end {
                EngineEnd::Finished(r) => eprintln!(
                    "[{done}/{total}] {name} seed {seed}: mIoU {:.2} % · abs err {:.3} · δ<1.25 {:.2} % in {:.0} s",
                    r.seg.miou * 100.0,
                    r.depth.abs_err,
                    r.depth.delta1 * 100.0,
                    started.elapsed().as_secs_f64()
                ),
                EngineEnd::Stopped { .. } => bail!("stopped; run `dmtl experiment` again to resume"),
            }
        }
    }
    eprintln!("all {total} runs finished; `dmtl report {}` makes the table and figures", args.out.display());
    Ok(())
}
