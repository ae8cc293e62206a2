//! Workers as the hub knows them: what they do, how they join.

use std::sync::Arc;

use super::RunFacts;
use crate::scheduler::{Task, WorkerId};

/// What a worker says it is doing (heartbeats), or what the coordinator concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerActivity {
    Starting,
    Waiting,
    Pulling,
    Training,
    Pushing,
    Lost,
    Left,
}

/// A worker asks to join.
#[derive(Debug, Clone)]
pub struct Registration {
    pub task: Task,
    pub device: String,
    pub host: String,
    pub threads: u32,
    pub version: String,
    /// The name it had before (a rejoin), if any.
    pub previous: Option<String>,
}

/// What a worker is told when it joins: its name and task, and the run's facts.
#[derive(Debug, Clone)]
pub struct Admission {
    pub worker: String,
    pub task: Task,
    pub facts: RunFacts,
}

/// A worker as the coordinator knows it.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    pub id: WorkerId,
    pub name: String,
    pub task: Task,
    pub host: String,
    pub device: String,
    pub threads: u32,
    pub activity: WorkerActivity,
    pub last_heartbeat_unix_ms: u64,
    pub images_per_s: f64,
    pub shard_size: usize,
    pub last_round: u64,
    /// The shard last sent to it (version, indices).
    pub sent_shard: Option<(u64, Arc<Vec<usize>>)>,
}
