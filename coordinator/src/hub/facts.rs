//! The fixed facts of the run the hub serves.

use std::sync::Arc;

use dmtl_core::train::wire::UpdateSpec;

/// Fixed facts about the run the hub serves; workers are told them when they join.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run_id: String,
    pub method: String,
    pub config_toml: String,
    pub dataset_size: u64,
    pub local_steps: u32,
    pub chunk_bytes: u32,
    pub nccl: bool,
    pub heartbeat_interval_ms: u32,
    pub heartbeat_timeout_ms: u32,
    /// Upper bound of an update's payload in bytes.
    pub max_update_bytes: u64,
    /// What updates are validated against (the model's names, shapes, dtypes).
    pub spec: Arc<UpdateSpec>,
}
