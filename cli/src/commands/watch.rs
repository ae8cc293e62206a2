//! `dmtl watch`: follow a run live (status, then one line per event).

use std::time::Duration;

use anyhow::bail;
use dmtl_proto::v1;

use crate::remote::{event_line, monitor, render_status, runtime, status_with_retry, Access};

#[derive(clap::Args)]
pub struct Args {
    /// The coordinator's URL, e.g. http://coordinator:50051.
    #[arg(long)]
    coordinator: String,
    /// Print the full status every this many seconds between events (0: never).
    #[arg(long, default_value_t = 30)]
    status_every_s: u64,
    #[command(flatten)]
    access: Access,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = monitor(&args.coordinator, &args.access)?;
        let status = status_with_retry(&mut client, Duration::from_secs(5)).await?;
        print!("{}", render_status(&status));
        let mut events = match client.watch(v1::WatchRequest {}).await {
            Ok(s) => s.into_inner(),
            Err(s) => bail!("Watch: {} ({:?})", s.message(), s.code()),
        };
        let mut tick = tokio::time::interval(Duration::from_secs(args.status_every_s.max(1)));
        tick.tick().await;
        loop {
            tokio::select! {
                e = events.message() => match e {
                    Ok(Some(e)) => {
                        println!("{}", event_line(&e));
                        if matches!(e.kind, Some(v1::event::Kind::RunFinished(_))) {
                            return Ok(());
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(s) => bail!("the event stream ended: {} ({:?})", s.message(), s.code()),
                },
                _ = tick.tick(), if args.status_every_s > 0 => {
                    if let Ok(s) = client.get_status(v1::GetStatusRequest {}).await {
                        print!("{}", render_status(&s.into_inner()));
                    }
                }
            }
        }
    })
}
