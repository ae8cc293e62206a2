//! `dmtl status`: one look at a running coordinator.

use std::time::Duration;

use crate::remote::{monitor, render_status, runtime, status_json, status_with_retry, Access};

#[derive(clap::Args)]
pub struct Args {
    /// The coordinator's URL, e.g. http://coordinator:50051.
    #[arg(long)]
    coordinator: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    access: Access,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = runtime()?;
    let status = rt.block_on(async {
        let mut client = monitor(&args.coordinator, &args.access)?;
        status_with_retry(&mut client, Duration::from_secs(2)).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status_json(&status))?);
    } else {
        print!("{}", render_status(&status));
    }
    Ok(())
}
