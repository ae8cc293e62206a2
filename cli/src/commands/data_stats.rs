//! `dmtl data-stats`.

use std::path::PathBuf;

use dmtl_core::data::cityscapes::CityscapesIndex;
use dmtl_core::data::{LabelSet, Split};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset root in the Cityscapes layout.
    #[arg(long)]
    data_root: PathBuf,
    /// The split to summarise.
    #[arg(long, default_value = "train")]
    split: Split,
    /// Class space: 19 (train ids) or 7 (categories).
    #[arg(long, default_value_t = 19, value_parser = parse_classes)]
    classes: u32,
    /// Decoding threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_classes(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|_| format!("expected 19 or 7 (got `{s}`)"))?;
    LabelSet::try_from(n).map(|_| n)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let classes = LabelSet::try_from(args.classes).map_err(anyhow::Error::msg)?;
    let index = CityscapesIndex::open(&args.data_root, args.split)?;
    let stats = dmtl_core::data::stats::compute(&index, classes, args.threads)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{stats}");
    }
    Ok(())
}
