//! `dmtl train`.

use anyhow::Context;

use crate::config_args::ConfigArgs;
use crate::progress::Progress;
use crate::table::print_final;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: ConfigArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ConfigArgs { run_dir, resume, .. } = &args.run;
    let config = args.run.load()?;
    let mut progress = Progress::new();
    let report = dmtl_core::train::train(&config, run_dir, *resume, &mut progress)
        .with_context(|| format!("training run in {}", run_dir.display()))?;
    progress.finish();
    print_final(&report, run_dir);
    Ok(())
}
