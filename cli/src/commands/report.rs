//! `dmtl report`: the results table and figures of finished runs.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Run directories, or folders holding them (e.g. the --out of `dmtl experiment`).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where results.md, results.csv, forgetting.csv, paired.csv, pareto.png/.svg, curves.png and forgetting.png go.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (runs, summary) = dmtl_core::report::load(&args.dirs)?;
    let written = dmtl_core::report::write(&summary, &runs, &args.out)
        .with_context(|| format!("writing the report into {}", args.out.display()))?;
    print!("{}", dmtl_core::report::markdown(&summary));
    println!();
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
