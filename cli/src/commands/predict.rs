//! `dmtl predict`.

use std::path::{Path, PathBuf};

use dmtl_core::data::dataset::{index_split, load_options};
use dmtl_core::predict::{predict_split, PredictOptions};

use super::eval::{print_report, CheckpointArgs, Opened};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: CheckpointArgs,
    /// Output folder [default: RUN_DIR/predictions/<checkpoint name> for a
    /// checkpoint in RUN_DIR/checkpoints/, else <checkpoint name>-predictions
    /// beside the checkpoint].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only the first N images of the split (sorted by id; the config's
    /// `data.val_limit` / `train_limit` apply first, as in `dmtl eval`).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print the metrics of the written files as JSON (the keys of `dmtl eval --json`).
    #[arg(long)]
    json: bool,
}

/// The default output folder of a checkpoint.
fn default_out(checkpoint: &Path) -> PathBuf {
    let stem = checkpoint.file_stem().map_or_else(|| "checkpoint".into(), |s| s.to_string_lossy().to_string());
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    match dir.file_name() {
        Some(name) if name == "checkpoints" => dir.parent().unwrap_or(Path::new(".")).join("predictions").join(stem),
        _ => dir.join(format!("{stem}-predictions")),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let input = &args.input;
    let Opened { ckpt, baseline } = input.open()?;
    if args.limit == Some(0) {
        anyhow::bail!("--limit must be at least 1");
    }
    let data = input.data(&ckpt);
    let model = input.model(&ckpt)?;
    // Like `dmtl eval`: the config's train_limit / val_limit apply.
    let mut index = index_split(&data, input.split)?;
    if let Some(limit) = args.limit {
        index.entries.truncate(limit);
    }
    let out = args.out.clone().unwrap_or_else(|| default_out(&input.checkpoint));
    let opts = PredictOptions {
        out: out.clone(),
        batch_size: ckpt.config.eval.batch_size,
        threads: data.load_threads,
        panels: true,
    };
    let report = predict_split(&model, &index, &load_options(&data), &opts, |done, total| {
        tracing::debug!(done, total, "predicted");
    })?;
    tracing::info!(images = report.images, out = %out.display(), "wrote predictions");
    let (ckpt_path, step) = (input.checkpoint.display(), ckpt.state.step);
    let heading = [
        format!("{ckpt_path} on {} ({} images, step {step}) → {}", input.split, report.images, out.display()),
        "metrics of the written files, at the label files' resolution:".to_string(),
    ];
    print_report(&report.metrics, baseline, args.json, &heading)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_output_is_in_the_run_directory() {
        assert_eq!(
            default_out(Path::new("runs/a/checkpoints/step-00000040.safetensors")),
            Path::new("runs/a/predictions/step-00000040")
        );
        assert_eq!(default_out(Path::new("/x/model.safetensors")), Path::new("/x/model-predictions"));
    }
}
