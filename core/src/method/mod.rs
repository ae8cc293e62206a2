//! The methods of DESIGN §1: their step schedules and the teacher.

mod schedule;
mod teacher;

pub use schedule::{Losses, PartPlan, Pool, Schedule, StepPlan};
pub use teacher::Teacher;
