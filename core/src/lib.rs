//! dmtl-core: multi-task learning on disjoint datasets.
//!
//! The model, the data pipeline, the losses and metrics, the methods, the
//! training step shared by single-process and distributed training, and the
//! checkpoint format. Nothing here knows about gRPC.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod losses;
pub mod method;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod predict;
pub mod report;
pub mod run_dir;
pub mod tensor_io;
#[cfg(test)]
mod test_rng;
pub mod train;
