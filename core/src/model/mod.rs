//! The model: a ResNet-style shared encoder and two U-Net style heads.
//!
//! Variables are named `encoder.*`, `seg_head.*` and `depth_head.*`.

mod blocks;
mod compute;
mod decoder;
mod encoder;
mod init;
mod net;
mod store;

pub use compute::{is_channels_last, to_channels_last, Compute};
pub use init::reset_parameters;
pub use net::{MultiTaskNet, Outputs, Part, DEPTH_HEAD, ENCODER, SEG_HEAD};
pub use store::{Model, ModelError};
