//! dmtl-core: multi-task learning on disjoint datasets.
//!
//! The model, the data pipeline, the losses and metrics, the methods, the
//! training step shared by single-process and distributed training, and the
//! checkpoint format. Nothing here knows about gRPC.

pub mod config;
pub mod data;
pub mod device;
pub mod model;
pub mod losses;
pub mod metrics;
pub mod optim;
pub mod method;
pub mod tensor_io;
pub mod train;
