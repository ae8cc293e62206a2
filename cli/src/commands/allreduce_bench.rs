//! `dmtl allreduce-bench`: times sum all-reduces of a float32 buffer over
//! one member per GPU of this machine (one thread each) and prints the
//! algorithm and bus bandwidth (busbw = algbw · 2(n−1)/n, as nccl-tests).
//! `--backend local` runs the same on CPU threads (no GPU; checks the
//! command, not the hardware).

use std::time::Duration;

use anyhow::bail;
use dmtl_collective::bandwidth::{time_all_reduce, AllReduceTiming};
use dmtl_collective::Collective;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// NCCL between GPUs (needs the `nccl` build).
    Nccl,
    /// Threads of this process on CPU.
    Local,
}

#[derive(clap::Args)]
pub struct Args {
    /// Members of the group: GPUs cuda:0 … cuda:N−1 (0: every GPU of the machine).
    #[arg(long, default_value_t = 0)]
    gpus: usize,
    /// Buffer size in MiB.
    #[arg(long, default_value_t = 256.0)]
    mib: f64,
    /// Timed all-reduces (after 5 untimed ones).
    #[arg(long, default_value_t = 20)]
    iters: usize,
    #[arg(long, value_enum, default_value_t = Backend::Nccl)]
    backend: Backend,
}

/// One member: checks one all-reduce of known values, then times the buffer.
fn member(c: &dyn Collective, device: Device, numel: i64, iters: usize) -> anyhow::Result<AllReduceTiming> {
    let n = c.world_size() as f64;
    let mut probe = Tensor::full([1024], c.rank() as f64 + 1.0, (Kind::Float, device));
    c.all_reduce_sum(&mut probe)?;
    let (lo, hi) = (probe.min().double_value(&[]), probe.max().double_value(&[]));
    let want = n * (n + 1.0) / 2.0;
    if lo != want || hi != want {
        bail!("rank {}: all-reduce of 1..={n} gave values in [{lo}, {hi}], not {want}", c.rank());
    }
    let mut buf = Tensor::ones([numel], (Kind::Float, device));
    Ok(time_all_reduce(c, &mut buf, 5, iters)?)
}

fn run_members(
    world: usize,
    numel: i64,
    iters: usize,
    make: impl Fn(usize) -> anyhow::Result<(Box<dyn Collective>, Device)> + Sync,
) -> anyhow::Result<AllReduceTiming> {
    let results: Vec<anyhow::Result<AllReduceTiming>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let make = &make;
                s.spawn(move || {
                    let (c, device) = make(rank)?;
                    member(c.as_ref(), device, numel, iters)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a member panicked")))).collect()
    });
    let mut timings = Vec::new();
    for r in results {
        timings.push(r?);
    }
    // The slowest member's time is the collective's.
    Ok(timings.into_iter().max_by(|a, b| a.seconds.total_cmp(&b.seconds)).expect("at least one member"))
}

#[cfg(feature = "nccl")]
fn nccl_members(gpus: usize, numel: i64, iters: usize) -> anyhow::Result<AllReduceTiming> {
    use anyhow::Context;
    use dmtl_collective::group::Membership;
    use dmtl_collective::nccl::{new_unique_id, NcclCollective};
    let unique_id = new_unique_id()?;
    run_members(gpus, numel, iters, |rank| {
        let m = Membership { generation: 1, unique_id, rank: rank as u32, world_size: gpus as u32 };
        let c = NcclCollective::join(rank, &m).with_context(|| format!("joining on cuda:{rank}"))?;
        Ok((Box::new(c) as Box<dyn Collective>, Device::Cuda(rank)))
    })
}

#[cfg(not(feature = "nccl"))]
fn nccl_members(_gpus: usize, _numel: i64, _iters: usize) -> anyhow::Result<AllReduceTiming> {
    Err(dmtl_collective::PlaneError::FeatureMissing.into())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let numel = ((args.mib * 1024.0 * 1024.0) / 4.0).round().max(1.0) as i64;
    let timing = match args.backend {
        Backend::Local => {
            let world = args.gpus.max(2);
            let group = std::sync::Mutex::new(dmtl_collective::local::local_group(world, Duration::from_secs(600)));
            // Members are taken from the back, so rank r gets member r of the reversed list; ranks are
            // whatever the member says, which is all `member` uses.
            run_members(world, numel, args.iters, |_| {
                let c = group.lock().expect("lock").pop().expect("one member per thread");
                Ok((Box::new(c) as Box<dyn Collective>, Device::Cpu))
            })?
        }
        Backend::Nccl => {
            if cfg!(feature = "nccl") && !tch::Cuda::is_available() {
                return Err(dmtl_collective::PlaneError::NoCudaDevice.into());
            }
            let count = tch::Cuda::device_count().max(0) as usize;
            let gpus = if args.gpus == 0 { count } else { args.gpus };
            if gpus > count && cfg!(feature = "nccl") {
                bail!("--gpus {gpus}: this machine has {count} CUDA devices");
            }
            nccl_members(gpus, numel, args.iters)?
        }
    };
    let gb = |b: f64| b / 1e9;
    println!(
        "all-reduce {:.1} MiB over {} members: {:.3} ms, algbw {:.2} GB/s, busbw {:.2} GB/s ({} iterations)",
        timing.bytes as f64 / (1024.0 * 1024.0),
        timing.world,
        timing.seconds * 1e3,
        gb(timing.algbw()),
        gb(timing.busbw()),
        timing.iters
    );
    Ok(())
}
