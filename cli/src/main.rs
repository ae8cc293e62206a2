//! `dmtl`: multi-task learning on disjoint datasets.

mod commands;
mod config_args;
mod progress;
mod remote;
mod runtime;
mod stop;
mod table;

use clap::{Parser, Subcommand};

/// Train one network for semantic segmentation and depth when each task is
/// labelled on its own, disjoint half of the data.
#[derive(Parser)]
#[command(name = "dmtl", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train single-process on one device.
    Train(commands::train::Args),
    /// Evaluate a checkpoint on a split.
    Eval(commands::eval::Args),
    /// Write a procedural street-scene dataset in the Cityscapes layout.
    GenSynthetic(commands::gen_synthetic::Args),
    /// Summarise a dataset: images, class pixels, disparity statistics.
    DataStats(commands::data_stats::Args),
    /// Serve a run to segmentation and depth workers (gRPC); evaluate, checkpoint, monitor.
    Coordinator(commands::coordinator::Args),
    /// Train rounds for a coordinator on one device.
    Worker(commands::worker::Args),
    /// Run coordinator and workers on this machine (loopback), with one progress bar.
    Local(commands::local::Args),
    /// Show a running coordinator's status.
    Status(commands::status::Args),
    /// Follow a running coordinator: rounds, losses, metrics, workers.
    Watch(commands::watch::Args),
    /// Run every config of a suite for every seed (resumable).
    Experiment(commands::experiment::Args),
    /// Results table and figures of finished runs.
    Report(commands::report::Args),
    /// Write a checkpoint's predictions in the Cityscapes formats, with panels; score the written files.
    Predict(commands::predict::Args),
    /// Time sum all-reduces over this machine's GPUs (NCCL) and print the bus bandwidth.
    AllreduceBench(commands::allreduce_bench::Args),
}

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Train(_) | Command::Eval(_) | Command::Predict(_) => runtime::tune(runtime::Waiting::Spin),
        Command::Worker(_) => runtime::tune(runtime::Waiting::Default),
        Command::Coordinator(_) | Command::Local(_) | Command::Experiment(_) => runtime::tune(runtime::Waiting::Sleep),
        _ => {}
    }
    let result = match cli.command {
        Command::Train(args) => commands::train::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::GenSynthetic(args) => commands::gen_synthetic::run(args),
        Command::DataStats(args) => commands::data_stats::run(args),
        Command::Coordinator(args) => commands::coordinator::run(args),
        Command::Worker(args) => commands::worker::run(args),
        Command::Local(args) => commands::local::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Watch(args) => commands::watch::run(args),
        Command::Experiment(args) => commands::experiment::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::AllreduceBench(args) => commands::allreduce_bench::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
