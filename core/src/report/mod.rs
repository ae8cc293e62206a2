//! The experiment report (`dmtl report`): finished run directories in, one
//! row per method out — mean ± std over seeds of every validation metric, Δm
//! against `full` and `half`, the share of the full–half gap each method
//! closes — as Markdown and CSV, plus the segmentation-vs-depth figure and the
//! validation curves ([`plots`]).
//!
//! The pieces: `runs` finds and loads run directories; `comparable` checks
//! that their configs differ only where a report allows (through
//! [`crate::config::diff`]); `summary` aggregates over seeds; `table` renders
//! Markdown and CSV; `plots` and `qualitative` draw the figures; `pipeline`
//! composes them into [`load`] and [`write`].

mod comparable;
mod error;
mod pipeline;
pub mod plots;
mod qualitative;
mod runs;
mod summary;
mod table;

pub use comparable::{check_comparable, check_configs, VARYING_KEYS};
pub use error::ReportError;
pub use pipeline::{load, write};
pub use qualitative::{qualitative, QUALITATIVE_METHODS};
pub use runs::{find_runs, label_of, load_run, RunRecord};
pub use summary::{mean_std, summarise, MethodSummary, METRICS};
pub use table::{csv, markdown};
