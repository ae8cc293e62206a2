//! The `nccl` data plane between dmtl workers, everything of it that is not
//! gRPC: an all-reduce interface ([`Collective`]), the sample-weighted merge
//! of updates on top of it ([`merge`]), the generations of a group
//! ([`group`]), bringing a new member to the group's state ([`sync`]), the start-up checks that say why the plane cannot run here
//! ([`plane`]), an all-reduce bandwidth timer ([`bandwidth`]) and two
//! backends: NCCL on the GPU (`nccl` feature, [`nccl`]) and an in-process CPU
//! backend for tests ([`local`]). See `README.md` beside this crate.

pub mod backend;
pub mod bandwidth;
mod collective;
pub mod group;
pub mod library;
pub mod local;
pub mod merge;
#[cfg(feature = "nccl")]
pub mod nccl;
pub mod plane;
pub mod sync;
pub mod wait;

pub use backend::{AbortHandle, Backend, Joined};
pub use collective::{Collective, CollectiveError};
pub use group::{Communicator, GroupPlan, Groups, Membership, UniqueId};
pub use merge::{all_reduce_merge, MergeLayout};
pub use plane::{check_nccl_plane, PlaneError};
pub use wait::AbortFlag;
