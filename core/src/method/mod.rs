//! The methods of DESIGN §1: their step schedules and the teacher.

mod distill;
mod schedule;
mod teacher;

pub use distill::DistillParams;
pub use schedule::{Losses, PartPlan, Pool, Schedule, StepPlan};
pub use teacher::Teacher;
