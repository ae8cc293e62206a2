//! An in-process [`Collective`] for tests and CPU runs: the members are
//! threads of one process that share an accumulator behind a mutex. It has
//! the failure behaviour the engine must handle with NCCL — a member that
//! never arrives blocks the others — bounded by a timeout, after which the
//! group is aborted (as `ncclCommAbort` would) and every later call fails.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tch::{Device, Kind, Tensor};

use crate::collective::{Collective, CollectiveError};

struct State {
    /// Completed all-reduces.
    generation: u64,
    /// Members that added their buffer to `acc` in the current generation.
    arrived: usize,
    acc: Option<Tensor>,
    /// The sum of the last completed generation.
    result: Option<Tensor>,
    aborted: bool,
}

struct Shared {
    world: usize,
    timeout: Duration,
    state: Mutex<State>,
    done: Condvar,
}

/// One member of an in-process group.
pub struct LocalCollective {
    rank: usize,
    shared: Arc<Shared>,
}

/// Makes a group of `world` members (hand one to each thread). A call that
/// waits longer than `timeout` for the others aborts the group.
pub fn local_group(world: usize, timeout: Duration) -> Vec<LocalCollective> {
    let shared = Arc::new(Shared {
        world,
        timeout,
        state: Mutex::new(State { generation: 0, arrived: 0, acc: None, result: None, aborted: false }),
        done: Condvar::new(),
    });
    (0..world).map(|rank| LocalCollective { rank, shared: shared.clone() }).collect()
}

impl LocalCollective {
    /// Aborts the whole group: every waiting and later call fails (what
    /// dropping an NCCL communicator does to its peers' pending collectives,
    /// made explicit).
    pub fn abort(&self) {
        abort(&self.shared);
    }

    /// A handle that aborts the group from another thread.
    pub fn abort_handle(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || abort(&shared)
    }
}

fn abort(shared: &Shared) {
    let mut s = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    s.aborted = true;
    shared.done.notify_all();
}

impl Collective for LocalCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.shared.world
    }

    fn all_reduce_sum(&self, buf: &mut Tensor) -> Result<(), CollectiveError> {
        if buf.kind() != Kind::Float {
            return Err(CollectiveError::Buffer(format!("expected float32, got {:?}", buf.kind())));
        }
        let aborted = CollectiveError::Aborted { rank: self.rank };
        let mine = buf.to_device(Device::Cpu).flatten(0, -1);
        let mut s = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.aborted {
            return Err(aborted);
        }
        match &mut s.acc {
            Some(acc) if acc.numel() != mine.numel() => {
                let (got, expected) = (mine.numel(), acc.numel());
                s.aborted = true;
                self.shared.done.notify_all();
                return Err(CollectiveError::LengthMismatch { rank: self.rank, got, expected });
            }
            Some(acc) => *acc += &mine,
            None => s.acc = Some(mine.copy()),
        }
        s.arrived += 1;
        let generation = s.generation;
        if s.arrived == self.shared.world {
            s.result = s.acc.take();
            s.arrived = 0;
            s.generation += 1;
            self.shared.done.notify_all();
        } else {
            let start = Instant::now();
            let (guard, wait) = self
                .shared
                .done
                .wait_timeout_while(s, self.shared.timeout, |s| s.generation == generation && !s.aborted)
                .unwrap_or_else(|e| e.into_inner());
            s = guard;
            if wait.timed_out() && s.generation == generation {
                let missing = self.shared.world - s.arrived;
                s.aborted = true;
                self.shared.done.notify_all();
                return Err(CollectiveError::Timeout {
                    rank: self.rank,
                    missing,
                    world: self.shared.world,
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            if s.generation == generation {
                return Err(aborted);
            }
        }
        let sum = s.result.as_ref().expect("a completed generation has a result");
        let out = sum.to_device(buf.device()).view_as(buf);
        drop(s);
        buf.copy_(&out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_gets_the_sum_of_all_buffers() {
        let group = local_group(3, Duration::from_secs(10));
        let sums: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let mut out = vec![];
                        for round in 0..4 {
                            let mut t = Tensor::from_slice(&[c.rank() as f32, round as f32, 1.0]);
                            c.all_reduce_sum(&mut t).unwrap();
                            out.extend(Vec::<f32>::try_from(&t).unwrap());
                        }
                        out
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let expected: Vec<f32> = (0..4).flat_map(|r| [3.0, 3.0 * r as f32, 3.0]).collect();
        assert!(sums.iter().all(|s| *s == expected), "{sums:?}");
    }

    #[test]
    fn a_member_that_never_arrives_times_the_others_out_and_aborts_the_group() {
        let group = local_group(2, Duration::from_millis(50));
        let mut t = Tensor::from_slice(&[1.0f32]);
        let e = group[0].all_reduce_sum(&mut t).unwrap_err();
        assert!(matches!(e, CollectiveError::Timeout { missing: 1, world: 2, .. }), "{e}");
        let e = group[1].all_reduce_sum(&mut t).unwrap_err();
        assert!(matches!(e, CollectiveError::Aborted { rank: 1 }), "{e}");
    }
}
