//! `dmtl eval`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use dmtl_core::checkpoint::Checkpoint;
use dmtl_core::config::{DataConfig, Precision};
use dmtl_core::data::Split;
use dmtl_core::metrics::{delta_m, EvalMetrics};
use dmtl_core::model::{Compute, Model};
use dmtl_core::run_dir::FinalReport;

use crate::table::print_metrics;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: CheckpointArgs,
    /// Print the metrics as JSON.
    #[arg(long)]
    json: bool,
}

/// What `dmtl eval` and `dmtl predict` read: a checkpoint, a split of a
/// dataset, where to compute, and an optional baseline for Δm.
#[derive(clap::Args)]
pub(crate) struct CheckpointArgs {
    /// A checkpoint written by `dmtl train` (checkpoints/step-*.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset root in the Cityscapes layout.
    #[arg(long)]
    pub data_root: PathBuf,
    /// The split to read (`train` or `val`).
    #[arg(long, default_value = "val")]
    pub split: Split,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// `fp32` or `bf16` [default: the checkpoint's `train.precision`].
    #[arg(long)]
    pub precision: Option<Precision>,
    /// A baseline run's final.json: also report Δm against it (mean relative
    /// change of mIoU, pixel accuracy, abs err and rel err, in %, higher is better).
    #[arg(long, value_name = "FINAL_JSON")]
    pub baseline: Option<PathBuf>,
}

/// A checkpoint and its baseline, read before any time is spent on the model.
pub(crate) struct Opened<'a> {
    pub ckpt: Checkpoint,
    pub baseline: Option<(&'a PathBuf, FinalReport)>,
}

impl CheckpointArgs {
    pub(crate) fn open(&self) -> anyhow::Result<Opened<'_>> {
        let ckpt = Checkpoint::load(&self.checkpoint)?;
        let baseline = self.baseline.as_ref().map(|p| FinalReport::read(p).map(|b| (p, b))).transpose()?;
        Ok(Opened { ckpt, baseline })
    }

    /// The checkpoint's data config, reading from `--data-root`.
    pub(crate) fn data(&self, ckpt: &Checkpoint) -> DataConfig {
        let mut data = ckpt.config.data.clone();
        data.root = self.data_root.display().to_string();
        data
    }

    pub(crate) fn model(&self, ckpt: &Checkpoint) -> anyhow::Result<Model> {
        load_model(ckpt, &self.checkpoint, &self.device, self.precision)
    }
}

/// The checkpoint's model on `device` (and libtorch's thread count), computing as
/// the checkpoint's `[train]` says (precision, channels-last, cuDNN benchmark)
/// unless `precision` overrides it. Shared with `dmtl predict`.
pub(crate) fn load_model(
    ckpt: &Checkpoint,
    path: &Path,
    device: &str,
    precision: Option<Precision>,
) -> anyhow::Result<Model> {
    let train = &ckpt.config.train;
    let device =
        dmtl_core::device::open_device(device, train.cudnn_benchmark).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    dmtl_core::device::set_threads(train.threads);
    let mut compute = Compute::of(train);
    compute.precision = precision.unwrap_or(compute.precision);
    let model = Model::new(&ckpt.config.model, ckpt.config.data.classes.num_classes(), device, 0).with_compute(compute);
    let weights = ckpt.model.iter().map(|(n, t)| (n.clone(), t.to_device(device))).collect();
    model.load_tensors(&weights).with_context(|| format!("{}", path.display()))?;
    Ok(model)
}

/// Prints `metrics`, with Δm against `baseline` when given: as JSON (the
/// metrics' keys and `delta_m`), or as `heading` lines and a table.
pub(crate) fn print_report(
    metrics: &EvalMetrics,
    baseline: Option<(&PathBuf, FinalReport)>,
    json: bool,
    heading: &[String],
) -> anyhow::Result<()> {
    let delta_m = baseline.map(|(path, base)| (path, base.method.clone(), delta_m(metrics, &base.metrics())));
    if json {
        let mut value = serde_json::to_value(metrics)?;
        if let Some((path, method, dm)) = &delta_m {
            value["delta_m"] = serde_json::json!({ "baseline": path, "baseline_method": method, "percent": dm });
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for line in heading {
            println!("{line}");
        }
        print_metrics(metrics);
        if let Some((path, method, dm)) = &delta_m {
            println!("Δm against {} ({method}): {dm:+.2} %", path.display());
        }
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let input = &args.input;
    let Opened { ckpt, baseline } = input.open()?;
    let model = input.model(&ckpt)?;
    let samples = dmtl_core::data::dataset::load_split(&input.data(&ckpt), input.split)?;
    let metrics = dmtl_core::train::evaluate(&model, &samples, ckpt.config.eval.batch_size);
    let (ckpt_path, step) = (input.checkpoint.display(), ckpt.state.step);
    let heading = [format!("{ckpt_path} on {} ({} images, step {step})", input.split, samples.len())];
    print_report(&metrics, baseline, args.json, &heading)?;
    Ok(())
}
