//! Which all-reduce backend a process of the `nccl` data plane uses, chosen
//! once at start: NCCL on a CUDA device (feature `nccl`, after the start-up
//! checks of [`crate::plane`]), or — in tests only, through a hidden hook —
//! the in-process backend, so that a whole nccl-plane run (coordinator and
//! workers in one process, over the real gRPC services) runs on CPU. Users
//! cannot select the in-process backend: no config key or flag reaches it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tch::Device;

use crate::collective::{Collective, CollectiveError};
use crate::group::{Membership, UniqueId};
use crate::local::{local_group, LocalCollective};
use crate::plane::PlaneError;

/// Ends a collective of this member that waits on the others (called from
/// another thread: the worker's watchdog).
pub type AbortHandle = Arc<dyn Fn() + Send + Sync>;

/// A member's communicator of one generation (it stays on the thread that
/// joined: an NCCL communicator is not `Send`) and the handle that aborts it.
pub struct Joined {
    pub collective: Box<dyn Collective>,
    pub abort: AbortHandle,
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined")
            .field("rank", &self.collective.rank())
            .field("world_size", &self.collective.world_size())
            .finish()
    }
}

/// The backend of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// NCCL between CUDA devices.
    #[cfg(feature = "nccl")]
    Nccl,
    /// Threads of this process (tests): a collective waits at most `timeout`.
    InProcess { timeout: Duration },
}

static IN_PROCESS: Mutex<Option<Duration>> = Mutex::new(None);

/// Test hook (not an API): from now on, [`Backend::select`] in this process
/// returns the in-process backend with this collective timeout, skipping the
/// feature, GPU and libnccl checks.
#[doc(hidden)]
pub fn use_in_process_backend_for_tests(timeout: Duration) {
    *IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner()) = Some(timeout);
}

impl Backend {
    /// The backend for `data_plane = "nccl"` in this process, or why there
    /// is none (`device`: a worker's training device; `None` on the
    /// coordinator). Without the `nccl` feature or without a CUDA device this
    /// fails, saying why.
    pub fn select(device: Option<&str>) -> Result<Backend, PlaneError> {
        if let Some(timeout) = *IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(Backend::InProcess { timeout });
        }
        crate::plane::check_nccl_plane(device)?;
        #[cfg(feature = "nccl")]
        return Ok(Backend::Nccl);
        #[cfg(not(feature = "nccl"))]
        Err(PlaneError::FeatureMissing)
    }

    /// A new unique id for a generation (NCCL: `ncclGetUniqueId`, which makes
    /// this process the bootstrap root of the group).
    pub fn new_unique_id(&self) -> Result<UniqueId, CollectiveError> {
        match self {
            #[cfg(feature = "nccl")]
            Backend::Nccl => crate::nccl::new_unique_id(),
            Backend::InProcess { .. } => {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                let mut id = [0u8; 128];
                id[..8].copy_from_slice(&NEXT.fetch_add(1, Ordering::SeqCst).to_le_bytes());
                id[8..12].copy_from_slice(&std::process::id().to_le_bytes());
                Ok(UniqueId(id))
            }
        }
    }

    /// Joins `membership`'s group with a communicator on `device`.
    pub fn join(&self, device: Device, membership: &Membership) -> Result<Joined, CollectiveError> {
        match self {
            #[cfg(feature = "nccl")]
            Backend::Nccl => {
                let Device::Cuda(ordinal) = device else {
                    return Err(CollectiveError::Plane(PlaneError::NotCudaDevice {
                        device: format!("{device:?}"),
                        count: tch::Cuda::device_count(),
                    }));
                };
                let c = crate::nccl::NcclCollective::join(ordinal, membership)?;
                // Raising the flag ends a pending collective; the member then
                // aborts the communicator on its own thread.
                let flag = c.abort_flag();
                Ok(Joined { collective: Box::new(c), abort: Arc::new(move || flag.raise()) })
            }
            Backend::InProcess { timeout } => {
                let _ = device; // summed on the CPU, copied back to the buffer's device
                let c = rendezvous(membership, *timeout)?;
                let abort = c.abort_handle();
                Ok(Joined { collective: Box::new(c), abort: Arc::new(abort) })
            }
        }
    }
}

type Pending = HashMap<[u8; 128], Vec<Option<LocalCollective>>>;

/// The in-process group of a unique id: the first member to arrive makes it,
/// every member takes its rank's place.
fn rendezvous(m: &Membership, timeout: Duration) -> Result<LocalCollective, CollectiveError> {
    static PENDING: Mutex<Option<Pending>> = Mutex::new(None);
    let mut guard = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    let pending = guard.get_or_insert_with(HashMap::new);
    let slots = pending
        .entry(m.unique_id.0)
        .or_insert_with(|| local_group(m.world_size as usize, timeout).into_iter().map(Some).collect());
    let member = slots.get_mut(m.rank as usize).and_then(Option::take).ok_or_else(|| {
        CollectiveError::Buffer(format!("rank {} of generation {} is taken or out of range", m.rank, m.generation))
    })?;
    if slots.iter().all(Option::is_none) {
        pending.remove(&m.unique_id.0);
    }
    Ok(member)
}
