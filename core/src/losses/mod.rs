//! The losses of DESIGN §1 (`terms.rs`: every loss is a mean over the pixels
//! it covers and is 0, not NaN, when it covers none) and the values a step
//! reports of them (`values.rs`).

mod terms;
mod values;

pub use terms::{depth_l1, distill_depth, distill_seg, masked_l1, seg_cross_entropy};
pub use values::{LossSums, LossValues};
