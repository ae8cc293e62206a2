//! One module per subcommand.

pub mod data_stats;
pub mod eval;
pub mod gen_synthetic;
pub mod train;
