//! The NCCL backend (feature `nccl`): cudarc's safe NCCL API over libtorch's
//! own device memory.
//!
//! libtorch and cudarc share the device's primary context
//! (`CudaContext::new` retains it) and the legacy default stream, which tch
//! uses because it exposes no CUDA stream. Every collective is bracketed by
//! synchronisation: `tch::Cuda::synchronize` before (the kernels that wrote
//! the buffer are done) and the stream's after (the sum is in place before
//! libtorch reads it).
//!
//! The wait after a collective polls an event instead of blocking in the
//! driver ([`crate::wait`]): a collective stuck on a dead peer is ended by
//! raising the member's [`AbortFlag`] from another thread, after which the
//! member aborts its communicator (`ncclCommAbort`, which ends the stuck
//! kernel) on its own thread, and every later call fails.

use std::cell::RefCell;
use std::ffi::c_char;
use std::sync::Arc;

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{CudaContext, CudaStream, DevicePtr, DevicePtrMut, DeviceSlice, SyncOnDrop};
use cudarc::nccl::safe::{Comm, Id, ReduceOp};
use tch::{Device, Kind, Tensor};

use crate::collective::{Collective, CollectiveError};
use crate::group::{Membership, UniqueId};
use crate::plane::PlaneError;
use crate::wait::{wait_until, AbortFlag, Polling, WaitEnd};

fn nccl_err(what: &str, e: impl std::fmt::Debug) -> CollectiveError {
    CollectiveError::Nccl(format!("{what}: {e:?}"))
}

/// Runs the first NCCL call of the process: checks that libnccl can be found
/// (cudarc panics otherwise), and catches the panic as a last resort.
fn first_call<T>(what: &str, f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, CollectiveError> {
    crate::library::check().map_err(PlaneError::LibraryMissing)?;
    std::panic::catch_unwind(f).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        CollectiveError::Plane(PlaneError::LibraryMissing(format!("{what}: {msg}")))
    })
}

/// A new NCCL unique id: the bootstrap address of a group, rooted in this
/// process (which must outlive the group's initialisation). Needs libnccl,
/// not a GPU.
pub fn new_unique_id() -> Result<UniqueId, CollectiveError> {
    let id = first_call("ncclGetUniqueId", Id::new)?.map_err(|e| nccl_err("ncclGetUniqueId", e))?;
    Ok(UniqueId(id.internal().map(|c| c as u8)))
}

/// One member of an NCCL communicator on one CUDA device.
pub struct NcclCollective {
    /// `None` once aborted (dropping a `Comm` calls `ncclCommAbort`).
    comm: RefCell<Option<Comm>>,
    stream: Arc<CudaStream>,
    rank: usize,
    world_size: usize,
    ordinal: usize,
    abort: AbortFlag,
}

impl std::fmt::Debug for NcclCollective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NcclCollective")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .field("ordinal", &self.ordinal)
            .field("aborted", &self.comm.borrow().is_none())
            .finish()
    }
}

impl NcclCollective {
    /// Joins `membership`'s group on `cuda:{ordinal}` (`ncclCommInitRank`:
    /// blocks until every member has joined). Dropping the value aborts the
    /// communicator (`ncclCommAbort`); raising [`Self::abort_flag`] from
    /// another thread ends a collective stuck on a dead peer.
    pub fn join(ordinal: usize, membership: &Membership) -> Result<Self, CollectiveError> {
        let ctx = first_call("cuInit", move || CudaContext::new(ordinal))?
            .map_err(|e| nccl_err(&format!("CUDA context of cuda:{ordinal}"), e))?;
        let stream = ctx.default_stream();
        // ncclCommInitRank takes the communicator's device from the thread's current context.
        ctx.bind_to_thread().map_err(|e| nccl_err(&format!("binding cuda:{ordinal} to the thread"), e))?;
        let id = Id::uninit(membership.unique_id.0.map(|b| b as c_char));
        let (rank, world_size) = (membership.rank as usize, membership.world_size as usize);
        let comm_stream = stream.clone();
        let comm = first_call("ncclCommInitRank", move || Comm::from_rank(comm_stream, rank, world_size, id))?
            .map_err(|e| nccl_err("ncclCommInitRank", e))?;
        Ok(NcclCollective {
            comm: RefCell::new(Some(comm)),
            stream,
            rank,
            world_size,
            ordinal,
            abort: AbortFlag::new(),
        })
    }

    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// Raising it (from any thread) ends this member's pending collective
    /// and aborts the communicator.
    pub fn abort_flag(&self) -> AbortFlag {
        self.abort.clone()
    }

    /// `ncclCommAbort`, then waits for the stream: the aborted kernel has
    /// stopped writing into the buffer before the buffer's borrow ends.
    fn abort_now(&self) {
        let comm = self.comm.borrow_mut().take();
        // cudarc's `Drop` panics when ncclCommAbort reports an error; the
        // communicator is unusable either way, so that is not a reason to
        // take the training thread down.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(comm))).is_err() {
            tracing::warn!(device = self.ordinal, "ncclCommAbort reported an error; the communicator is dropped");
        }
        let _ = self.stream.synchronize();
    }
}

impl Drop for NcclCollective {
    /// Aborts the communicator here rather than in cudarc's `Drop`, which
    /// panics when `ncclCommAbort` reports an error.
    fn drop(&mut self) {
        self.abort_now();
    }
}

impl Collective for NcclCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world_size
    }

    fn all_reduce_sum(&self, buf: &mut Tensor) -> Result<(), CollectiveError> {
        if buf.device() != Device::Cuda(self.ordinal) || buf.kind() != Kind::Float || !buf.is_contiguous() {
            return Err(CollectiveError::Buffer(format!(
                "expected a contiguous float32 tensor on cuda:{}, got {:?} on {:?}",
                self.ordinal,
                buf.kind(),
                buf.device()
            )));
        }
        let aborted = CollectiveError::Aborted { rank: self.rank };
        if self.abort.is_raised() {
            self.abort_now();
            return Err(aborted);
        }
        let guard = self.comm.borrow();
        let Some(comm) = guard.as_ref() else { return Err(aborted) };
        tch::Cuda::synchronize(self.ordinal as i64);
        let stream = &self.stream;
        stream.context().bind_to_thread().map_err(|e| nccl_err("binding the communicator's device", e))?;
        let mut view = TensorView { len: buf.numel(), tensor: buf, stream: stream.clone() };
        let enqueued = comm.all_reduce_in_place(&mut view, &ReduceOp::Sum);
        let done = enqueued
            .map_err(|e| nccl_err("ncclAllReduce", e))
            .and_then(|_| stream.record_event(None).map_err(|e| nccl_err("recording an event after ncclAllReduce", e)));
        let done = match done {
            Ok(event) => event,
            Err(e) => {
                // Nothing to poll: abort, so that NCCL is done with the buffer before its borrow ends.
                drop(view);
                drop(guard);
                self.abort_now();
                return Err(e);
            }
        };
        let waited =
            wait_until(|| done.try_is_complete().map_err(|e| format!("{e:?}")), &self.abort, Polling::default());
        drop(view);
        drop(guard);
        match waited {
            Ok(()) => Ok(()),
            Err(WaitEnd::Aborted) => {
                self.abort_now();
                Err(aborted)
            }
            Err(WaitEnd::Failed(e)) => {
                self.abort_now();
                Err(CollectiveError::Nccl(format!("waiting for ncclAllReduce: {e}")))
            }
        }
    }
}

/// A tch CUDA tensor seen as cudarc device memory of `len` f32.
///
/// Invariant (checked by the only constructor, `all_reduce_sum`): the tensor
/// is contiguous float32 on the communicator's device; the mutable borrow
/// keeps it alive and unaliased for the call, and the collective has
/// completed (its event polled, or the stream synchronised after an abort)
/// before the borrow ends.
struct TensorView<'t> {
    tensor: &'t mut Tensor,
    len: usize,
    stream: Arc<CudaStream>,
}

impl TensorView<'_> {
    fn ptr(&self) -> CUdeviceptr {
        self.tensor.data_ptr() as CUdeviceptr
    }
}

impl DeviceSlice<f32> for TensorView<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }
}

impl DevicePtr<f32> for TensorView<'_> {
    fn device_ptr<'a>(&'a self, _stream: &'a CudaStream) -> (CUdeviceptr, SyncOnDrop<'a>) {
        (self.ptr(), SyncOnDrop::Sync(None))
    }
}

impl DevicePtrMut<f32> for TensorView<'_> {
    fn device_ptr_mut<'a>(&'a mut self, _stream: &'a CudaStream) -> (CUdeviceptr, SyncOnDrop<'a>) {
        (self.ptr(), SyncOnDrop::Sync(None))
    }
}
