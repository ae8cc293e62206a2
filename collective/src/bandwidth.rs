//! Timing all-reduces: algorithm and bus bandwidth as nccl-tests define them
//! (busbw = algbw · 2(n−1)/n, the bytes each link carries in a ring).

use std::time::Instant;

use tch::Tensor;

use crate::collective::{Collective, CollectiveError};

/// Mean time of one all-reduce of `bytes` over `world` members.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AllReduceTiming {
    pub bytes: usize,
    pub world: usize,
    pub iters: usize,
    pub seconds: f64,
}

impl AllReduceTiming {
    /// Algorithm bandwidth, bytes/s: the buffer size over the time.
    pub fn algbw(&self) -> f64 {
        self.bytes as f64 / self.seconds
    }

    /// Bus bandwidth, bytes/s: comparable across member counts and with the
    /// hardware's link speed.
    pub fn busbw(&self) -> f64 {
        let n = self.world as f64;
        self.algbw() * 2.0 * (n - 1.0) / n
    }
}

/// Times `iters` all-reduces of `buf` after `warmup` untimed ones. Every
/// member calls it with a buffer of the same size. A backend's all-reduce
/// returns when the sum is in place (NCCL: stream synchronised), so the
/// wall time is the collective's.
pub fn time_all_reduce(
    collective: &dyn Collective,
    buf: &mut Tensor,
    warmup: usize,
    iters: usize,
) -> Result<AllReduceTiming, CollectiveError> {
    for _ in 0..warmup {
        collective.all_reduce_sum(buf)?;
    }
    let start = Instant::now();
    for _ in 0..iters {
        collective.all_reduce_sum(buf)?;
    }
    let seconds = start.elapsed().as_secs_f64() / iters.max(1) as f64;
    Ok(AllReduceTiming {
        bytes: buf.numel() * buf.kind().elt_size_in_bytes(),
        world: collective.world_size(),
        iters,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::local_group;
    use std::time::Duration;
    use tch::Kind;

    #[test]
    fn bus_bandwidth_is_the_ring_factor_times_the_algorithm_bandwidth() {
        let t = AllReduceTiming { bytes: 1 << 20, world: 4, iters: 1, seconds: 0.001 };
        assert!((t.busbw() / t.algbw() - 1.5).abs() < 1e-12);
        assert_eq!(AllReduceTiming { world: 1, ..t }.busbw(), 0.0);
    }

    #[test]
    fn timing_an_in_process_group_counts_the_buffer_bytes() {
        let group = local_group(2, Duration::from_secs(10));
        let timings: Vec<AllReduceTiming> = std::thread::scope(|s| {
            let hs: Vec<_> = group
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let mut buf = Tensor::zeros([1024], (Kind::Float, tch::Device::Cpu));
                        time_all_reduce(c, &mut buf, 1, 3).unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(timings.iter().all(|t| t.bytes == 4096 && t.world == 2 && t.seconds > 0.0));
    }
}
