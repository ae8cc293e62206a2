//! The experiment report (`dmtl report`): finished run directories in, one
//! row per method out — mean ± std over seeds of every validation metric, Δm
//! against `full` and `half`, the share of the full–half gap each method
//! closes — as Markdown and CSV, plus the segmentation-vs-depth figure and the
//! validation curves ([`plots`]).

pub mod plots;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::metrics::{delta_m, DepthMetrics, EvalMetrics, SegMetrics};
use crate::run_dir::{FinalReport, MetricsLine, RunDir};

/// Why a report cannot be made. Messages name the run directory or file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {message}")]
    Run { path: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: drawing the figure failed: {message}")]
    Plot { path: PathBuf, message: String },
}

/// Config keys that may differ between the runs of one report: the method,
/// its distillation knobs and the seed. Everything else must be equal.
pub const VARYING_KEYS: [&str; 3] = ["method", "distill", "seed"];

/// One finished run.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub dir: PathBuf,
    /// The method label: the experiment config's name (`<label>/seed-<k>/`), else the method.
    pub label: String,
    pub config: Config,
    pub fin: FinalReport,
    pub curve: Vec<MetricsLine>,
}

/// Finds every run directory (a folder holding `config.toml`) under `roots`.
pub fn find_runs(roots: &[PathBuf]) -> Result<Vec<PathBuf>, ReportError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReportError> {
        if dir.join("config.toml").is_file() {
            out.push(dir.to_path_buf());
            return Ok(());
        }
        let entries = std::fs::read_dir(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for d in dirs {
            walk(&d, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    for root in roots {
        if !root.is_dir() {
            return Err(ReportError::Run { path: root.clone(), message: "not a directory".into() });
        }
        walk(root, &mut out)?;
    }
    if out.is_empty() {
        return Err(ReportError::Input(format!(
            "no run directory (a folder with config.toml) under {}",
            roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(out)
}

/// The label of a run directory: `<label>` for `…/<label>/seed-<k>`, else the method.
pub fn label_of(dir: &Path, config: &Config) -> String {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match (name.strip_prefix("seed-"), dir.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str())) {
        (Some(_), Some(parent)) => parent.to_string(),
        _ => config.method.kind.to_string(),
    }
}

/// Loads a finished run: its config, `final.json` and `metrics.jsonl`.
pub fn load_run(dir: &Path) -> Result<RunRecord, ReportError> {
    let rd = RunDir { path: dir.to_path_buf() };
    let config = Config::load(&rd.config_path(), &[])
        .map_err(|e| ReportError::Run { path: dir.to_path_buf(), message: e.to_string() })?;
    if !rd.final_path().is_file() {
        return Err(ReportError::Run {
            path: dir.to_path_buf(),
            message: "no final.json: the run did not finish (complete it with `dmtl experiment`, which resumes it, \
                      or leave it out)"
                .into(),
        });
    }
    let fin = FinalReport::read(&rd.final_path())
        .map_err(|e| ReportError::Run { path: dir.to_path_buf(), message: e.to_string() })?;
    let curve = rd.read_metrics().map_err(|e| ReportError::Run { path: dir.to_path_buf(), message: e.to_string() })?;
    Ok(RunRecord { dir: dir.to_path_buf(), label: label_of(dir, &config), config, fin, curve })
}

/// The config with the keys that may vary removed, as a TOML table.
fn comparable(config: &Config) -> toml::Table {
    let mut t: toml::Table = toml::from_str(&config.to_toml()).expect("a config round-trips");
    for k in VARYING_KEYS {
        t.remove(k);
    }
    // Where and how fast a run ran does not change what it measures.
    for key in crate::run_dir::RUNTIME_KEYS {
        let mut parts = key.split('.');
        if let (Some(table), Some(field)) = (parts.next(), parts.next()) {
            if let Some(toml::Value::Table(inner)) = t.get_mut(table) {
                inner.remove(field);
            }
        }
    }
    t
}

/// The first key (dotted) where two tables differ.
fn first_difference(a: &toml::Table, b: &toml::Table, prefix: &str) -> Option<(String, String, String)> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().find_map(|k| {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match (a.get(k), b.get(k)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => first_difference(x, y, &key),
            (x, y) if x == y => None,
            (x, y) => Some((
                key,
                x.map_or("(absent)".into(), ToString::to_string),
                y.map_or("(absent)".into(), ToString::to_string),
            )),
        }
    })
}

/// Checks that the runs differ only in method, distillation knobs and seed;
/// otherwise names the key and two runs that differ.
pub fn check_comparable(runs: &[RunRecord]) -> Result<(), ReportError> {
    let configs: Vec<(&Path, &Config)> = runs.iter().map(|r| (r.dir.as_path(), &r.config)).collect();
    check_configs(&configs)
}

/// [`check_comparable`] for configs named by a path (a run directory or a config file).
pub fn check_configs(configs: &[(&Path, &Config)]) -> Result<(), ReportError> {
    let Some((first_path, first)) = configs.first() else { return Ok(()) };
    let base = comparable(first);
    for (path, config) in &configs[1..] {
        if let Some((key, a, b)) = first_difference(&base, &comparable(config), "") {
            return Err(ReportError::Input(format!(
                "mixed configs: `{key}` is {a} in {} but {b} in {}; runs compared together may differ only in \
                 [method], [distill] and seed",
                first_path.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The metrics reported per method, in order.
pub const METRICS: [(&str, &str, bool); 5] = [
    ("miou", "mIoU (%)", true),
    ("pixel_acc", "pixel acc (%)", true),
    ("abs_err", "abs err", false),
    ("rel_err", "rel err", false),
    ("delta1", "δ<1.25 (%)", true),
];

fn metric(m: &EvalMetrics, key: &str) -> f64 {
    match key {
        "miou" => m.seg.miou,
        "pixel_acc" => m.seg.pixel_acc,
        "abs_err" => m.depth.abs_err,
        "rel_err" => m.depth.rel_err,
        "delta1" => m.depth.delta1,
        _ => unreachable!("unknown metric {key}"),
    }
}

/// One method over its seeds.
#[derive(Debug, Clone)]
pub struct MethodSummary {
    pub label: String,
    pub method: String,
    pub seeds: Vec<u64>,
    /// `(mean, std)` per entry of [`METRICS`], in the units of `final.json` (fractions for mIoU etc.).
    pub stats: Vec<(f64, f64)>,
    /// Δm (%) of the mean metrics against the mean of `full` / `half`, when present.
    pub delta_full: Option<f64>,
    pub delta_half: Option<f64>,
    /// Δm(method vs half) / Δm(full vs half): the share of the full–half gap closed.
    pub gap_closed: Option<f64>,
    /// Mean validation curve: (images seen, mIoU, abs err) at each evaluation.
    pub curve: Vec<(f64, f64, f64)>,
}

impl MethodSummary {
    pub fn mean_metrics(&self) -> EvalMetrics {
        EvalMetrics {
            seg: SegMetrics { miou: self.stats[0].0, pixel_acc: self.stats[1].0, per_class_iou: Vec::new() },
            depth: DepthMetrics { abs_err: self.stats[2].0, rel_err: self.stats[3].0, delta1: self.stats[4].0 },
        }
    }
}

/// The display order of the labels: full, half, the methods in DESIGN order, then the rest by name.
fn order(label: &str) -> (usize, String) {
    const KNOWN: [&str; 7] = ["full", "half", "alternate", "distill", "distill-ema", "masked", "masked-distill"];
    (KNOWN.iter().position(|k| *k == label).unwrap_or(KNOWN.len()), label.to_string())
}

/// Groups the runs by label and summarises each group.
pub fn summarise(runs: &[RunRecord]) -> Vec<MethodSummary> {
    let mut groups: BTreeMap<(usize, String), Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        groups.entry(order(&r.label)).or_default().push(r);
    }
    let mut out: Vec<MethodSummary> = groups
        .into_values()
        .map(|rs| {
            let stats = METRICS
                .iter()
                .map(|(k, _, _)| mean_std(&rs.iter().map(|r| metric(&r.fin.metrics(), k)).collect::<Vec<_>>()))
                .collect();
            // Curves: the evaluations every run of the group has (by step), averaged.
            let steps: Vec<usize> = rs[0].curve.iter().map(|l| l.step).collect();
            let curve = steps
                .iter()
                .filter_map(|&s| {
                    let lines: Vec<&MetricsLine> =
                        rs.iter().filter_map(|r| r.curve.iter().find(|l| l.step == s)).collect();
                    (lines.len() == rs.len()).then(|| {
                        let n = lines.len() as f64;
                        (
                            lines.iter().map(|l| l.images_seen as f64).sum::<f64>() / n,
                            lines.iter().map(|l| l.val.seg.miou).sum::<f64>() / n,
                            lines.iter().map(|l| l.val.depth.abs_err).sum::<f64>() / n,
                        )
                    })
                })
                .collect();
            let mut seeds: Vec<u64> = rs.iter().map(|r| r.config.seed).collect();
            seeds.sort();
            MethodSummary {
                label: rs[0].label.clone(),
                method: rs[0].config.method.kind.to_string(),
                seeds,
                stats,
                delta_full: None,
                delta_half: None,
                gap_closed: None,
                curve,
            }
        })
        .collect();
    let reference = |name: &str| out.iter().find(|s| s.label == name).map(MethodSummary::mean_metrics);
    let (full, half) = (reference("full"), reference("half"));
    let gap = full.as_ref().zip(half.as_ref()).map(|(f, h)| delta_m(f, h));
    for s in &mut out {
        let m = s.mean_metrics();
        s.delta_full = full.as_ref().map(|f| delta_m(&m, f));
        s.delta_half = half.as_ref().map(|h| delta_m(&m, h));
        s.gap_closed = match (s.delta_half, gap) {
            (Some(d), Some(g)) if g.abs() > 1e-9 => Some(d / g),
            _ => None,
        };
    }
    out
}

fn pct(v: f64, percent: bool) -> f64 {
    if percent {
        v * 100.0
    } else {
        v
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:+.digits$}"))
}

/// The results table in Markdown.
pub fn markdown(summary: &[MethodSummary]) -> String {
    let mut s = String::new();
    let _ = write!(s, "| method | seeds |");
    for (_, name, _) in METRICS {
        let _ = write!(s, " {name} |");
    }
    s.push_str(" Δm vs full (%) | Δm vs half (%) | gap closed |\n|---|---|");
    for _ in METRICS {
        s.push_str("---|");
    }
    s.push_str("---|---|---|\n");
    for m in summary {
        let _ = write!(s, "| `{}` | {} |", m.label, m.seeds.len());
        for ((key, _, _), (mean, std)) in METRICS.iter().zip(&m.stats) {
            let percent = matches!(*key, "miou" | "pixel_acc" | "delta1");
            let digits = if percent { 2 } else { 4 };
            let _ = write!(s, " {:.digits$} ± {:.digits$} |", pct(*mean, percent), pct(*std, percent));
        }
        let gap = m.gap_closed.map_or("–".into(), |g| format!("{:.0} %", g * 100.0));
        let _ = writeln!(s, " {} | {} | {gap} |", opt(m.delta_full, 2), opt(m.delta_half, 2));
    }
    s
}

/// The results table as CSV (fractions as in `final.json`, not percent).
pub fn csv(summary: &[MethodSummary]) -> String {
    let mut s = String::from("method,kind,seeds");
    for (k, _, _) in METRICS {
        let _ = write!(s, ",{k}_mean,{k}_std");
    }
    s.push_str(",delta_m_vs_full,delta_m_vs_half,gap_closed\n");
    for m in summary {
        let seeds = m.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
        let _ = write!(s, "{},{},{seeds}", m.label, m.method);
        for (mean, std) in &m.stats {
            let _ = write!(s, ",{mean:.6},{std:.6}");
        }
        let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        let _ = writeln!(s, ",{},{},{}", f(m.delta_full), f(m.delta_half), f(m.gap_closed));
    }
    s
}

/// Loads, checks and summarises the runs under `roots`.
pub fn load(roots: &[PathBuf]) -> Result<(Vec<RunRecord>, Vec<MethodSummary>), ReportError> {
    let runs = find_runs(roots)?.iter().map(|d| load_run(d)).collect::<Result<Vec<_>, _>>()?;
    check_comparable(&runs)?;
    let summary = summarise(&runs);
    Ok((runs, summary))
}

/// Writes `results.md`, `results.csv`, `pareto.png`, `pareto.svg` and `curves.png` into `out`.
pub fn write(summary: &[MethodSummary], runs: &[RunRecord], out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out).map_err(|source| ReportError::Io { path: out.to_path_buf(), source })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    let mut written = Vec::new();
    let first = &runs[0].config;
    let md = format!(
        "# Results\n\n{} runs; {}×{}, {} steps of batch {}, model width {} blocks {:?}, data `{}`.\n\
         Mean ± sample std over seeds. Δm: mean relative change of mIoU, pixel accuracy, abs err and rel err \
         (errors sign-flipped; higher is better). Gap closed: Δm vs `half` divided by Δm of `full` vs `half`.\n\n{}",
        runs.len(),
        first.data.height,
        first.data.width,
        first.train.steps,
        first.train.batch_size,
        first.model.width,
        first.model.blocks,
        first.data.root,
        markdown(summary)
    );
    for (name, text) in [("results.md", md), ("results.csv", csv(summary))] {
        let path = out.join(name);
        crate::tensor_io::write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
        written.push(path);
    }
    written.extend(plots::pareto(summary, out)?);
    written.push(plots::curves(summary, &out.join("curves.png"))?);
    match qualitative(runs, &out.join("qualitative.png")) {
        Ok(Some(path)) => written.push(path),
        Ok(None) => {}
        Err(e) => tracing::warn!("qualitative.png not written: {e}"),
    }
    Ok(written)
}

/// The methods shown side by side in `qualitative.png`, in order.
pub const QUALITATIVE_METHODS: [&str; 5] = ["full", "half", "alternate", "distill", "masked-distill"];

/// Writes `qualitative.png`: the same fixed validation images predicted by the
/// last checkpoint of the first seed of each of [`QUALITATIVE_METHODS`] that
/// is present. `None` when no run of them has a checkpoint (or none of those
/// methods is in the report).
pub fn qualitative(runs: &[RunRecord], path: &Path) -> Result<Option<PathBuf>, ReportError> {
    let mut rows: Vec<(String, crate::model::Model)> = Vec::new();
    let mut data = None;
    for label in QUALITATIVE_METHODS {
        let mut candidates: Vec<&RunRecord> = runs.iter().filter(|r| r.label == label).collect();
        candidates.sort_by_key(|r| r.config.seed);
        let Some(run) = candidates.first() else { continue };
        let Some((ckpt_path, ckpt)) = crate::checkpoint::newest_valid(&run.dir.join("checkpoints")) else { continue };
        let model =
            crate::model::Model::new(&ckpt.config.model, ckpt.config.data.classes.num_classes(), tch::Device::Cpu, 0);
        model
            .load_tensors(&ckpt.model)
            .map_err(|e| ReportError::Run { path: ckpt_path.clone(), message: e.to_string() })?;
        data.get_or_insert_with(|| run.config.data.clone());
        rows.push((label.to_string(), model));
    }
    let Some(data) = data else { return Ok(None) };
    let samples = crate::predict::load_qualitative_samples(&data, crate::predict::QUALITATIVE_IMAGES)
        .map_err(|e| ReportError::Input(format!("qualitative.png: {e}")))?;
    let refs: Vec<(String, &crate::model::Model)> = rows.iter().map(|(l, m)| (l.clone(), m)).collect();
    let image = crate::predict::qualitative_grid(&refs, &samples, data.classes, data.depth)
        .map_err(|e| ReportError::Plot { path: path.to_path_buf(), message: e.to_string() })?;
    image.save(path).map_err(|e| ReportError::Plot { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(Some(path.to_path_buf()))
}
