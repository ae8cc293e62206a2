//! The experiment report (`dmtl report`): finished run directories in, one
//! row per method out — mean ± std over seeds of every validation metric, Δm
//! against `full` and `half`, the share of the full–half gap each method
//! closes — as Markdown and CSV; then forgetting per method (or its noise
//! floor) and each method paired by seed against its `alternate` control;
//! plus the segmentation-vs-depth figure, the validation curves and the
//! forgetting bars ([`plots`]).
//!
//! The pieces: `runs` finds and loads run directories; `comparable` checks
//! that their configs differ only where a report allows (through
//! [`crate::config::diff`]); `summary` aggregates over seeds; `forgetting`
//! measures each task's loss during the other task's phases at the
//! [`crate::method::Schedule`]'s phase ends; `paired` takes the
//! per-seed differences against `alternate` and their paired t-test; `table`
//! renders Markdown and CSV; `plots` and `qualitative` draw the figures;
//! `pipeline` composes them into [`load`] and [`write`].

mod comparable;
mod error;
mod forgetting;
mod paired;
mod pipeline;
pub mod plots;
mod qualitative;
mod runs;
mod summary;
mod table;

pub use comparable::{check_comparable, check_configs, VARYING_KEYS};
pub use error::ReportError;
pub use forgetting::{forgetting, phase_schedule, run_forgetting, ForgettingStats, MethodForgetting, RunForgetting};
pub use paired::{paired, paired_t_p, Paired, PairedMethod, PairedMetric};
pub use pipeline::{load, write};
pub use qualitative::{qualitative, QUALITATIVE_METHODS};
pub use runs::{find_runs, label_of, load_run, RunRecord};
pub use summary::{mean_std, summarise, MethodSummary, METRICS};
pub use table::{csv, forgetting_csv, forgetting_markdown, markdown, paired_csv, paired_markdown};
