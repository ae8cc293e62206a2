//! `dmtl gen-synthetic`.

use std::path::PathBuf;

use dmtl_core::data::synthetic::{generate, SyntheticSpec};

#[derive(clap::Args)]
pub struct Args {
    /// Output folder (gets leftImg8bit/, gtFine/, disparity/, camera/).
    #[arg(long)]
    out: PathBuf,
    /// Training images.
    #[arg(long, default_value_t = 1000)]
    train: usize,
    /// Validation images.
    #[arg(long, default_value_t = 200)]
    val: usize,
    /// Image height in pixels (a multiple of 16).
    #[arg(long, default_value_t = 128)]
    height: u32,
    /// Image width in pixels (a multiple of 16).
    #[arg(long, default_value_t = 256)]
    width: u32,
    /// Seed of the scenes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = SyntheticSpec {
        out: args.out.clone(),
        train: args.train,
        val: args.val,
        height: args.height,
        width: args.width,
        seed: args.seed,
    };
    let bar = crate::progress::counter((args.train + args.val) as u64, "rendering");
    let summary = generate(&spec, &|n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    println!(
        "wrote {} images ({} train, {} val, {}x{}) to {} in {:.1} s",
        summary.images,
        args.train,
        args.val,
        args.width,
        args.height,
        args.out.display(),
        summary.wall_s
    );
    Ok(())
}
