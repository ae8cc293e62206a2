//! Membership: which workers exist, their task, and whether they are alive.
//! Driven by events that carry their own timestamps (ms); never reads a clock.

use std::collections::BTreeMap;

use super::{SchedulerError, Task, WorkerId};

/// Whether a worker is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Heartbeating: gets a shard at the next round boundary.
    Live,
    /// Missed heartbeats; declared lost by [`Membership::expire`] at `at` ms.
    /// Final: the worker must register again (under a new id).
    Lost {
        /// The `now` of the expiry that declared it lost.
        at: u64,
    },
    /// Left on its own ([`Membership::leave`]). Final.
    Left,
}

/// What the scheduler knows of one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// Its id.
    pub id: WorkerId,
    /// The task it trains, fixed at registration.
    pub task: Task,
    /// When it registered (ms).
    pub joined_at: u64,
    /// Its latest heartbeat (ms; registration counts as one).
    pub last_heartbeat: u64,
    /// Whether it is alive.
    pub liveness: Liveness,
}

impl Worker {
    /// Whether it is [`Liveness::Live`].
    pub fn is_live(&self) -> bool {
        self.liveness == Liveness::Live
    }
}

/// The registry of workers. Gone workers (lost or left) stay known, so that
/// whatever they still send is recognised rather than taken for a stranger's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    workers: BTreeMap<WorkerId, Worker>,
    next_id: u64,
}

impl Membership {
    /// No workers; the first id handed out is 1.
    pub fn new() -> Self {
        Membership::default()
    }

    /// Registers a new live worker of `task` at `now` and returns its fresh id.
    pub fn register(&mut self, task: Task, now: u64) -> WorkerId {
        self.next_id += 1;
        let id = WorkerId(self.next_id);
        let worker = Worker { id, task, joined_at: now, last_heartbeat: now, liveness: Liveness::Live };
        self.workers.insert(id, worker);
        id
    }

    /// Records a heartbeat at `now` (an out-of-order, older `now` changes
    /// nothing). A gone worker gets an error telling it why: it must register
    /// again.
    pub fn heartbeat(&mut self, id: WorkerId, now: u64) -> Result<(), SchedulerError> {
        let worker = self.workers.get_mut(&id).ok_or(SchedulerError::UnknownWorker(id))?;
        match worker.liveness {
            Liveness::Live => {
                worker.last_heartbeat = worker.last_heartbeat.max(now);
                Ok(())
            }
            Liveness::Lost { .. } => Err(SchedulerError::WorkerLost(id)),
            Liveness::Left => Err(SchedulerError::WorkerLeft(id)),
        }
    }

    /// Declares lost every live worker whose latest heartbeat is more than
    /// `timeout_ms` before `now`, and returns them in id order.
    pub fn expire(&mut self, now: u64, timeout_ms: u64) -> Vec<WorkerId> {
        let mut lost = Vec::new();
        for worker in self.workers.values_mut() {
            if worker.is_live() && now.saturating_sub(worker.last_heartbeat) > timeout_ms {
                worker.liveness = Liveness::Lost { at: now };
                lost.push(worker.id);
            }
        }
        lost
    }

    /// A worker leaves on its own. Leaving twice, or after being lost, changes
    /// nothing.
    pub fn leave(&mut self, id: WorkerId) -> Result<(), SchedulerError> {
        let worker = self.workers.get_mut(&id).ok_or(SchedulerError::UnknownWorker(id))?;
        if worker.is_live() {
            worker.liveness = Liveness::Left;
        }
        Ok(())
    }

    /// A worker, live or gone.
    pub fn get(&self, id: WorkerId) -> Option<&Worker> {
        self.workers.get(&id)
    }

    /// Whether `id` is a known live worker.
    pub fn is_live(&self, id: WorkerId) -> bool {
        self.workers.get(&id).is_some_and(Worker::is_live)
    }

    /// The live workers of `task`, in id order.
    pub fn live(&self, task: Task) -> Vec<WorkerId> {
        self.workers.values().filter(|w| w.task == task && w.is_live()).map(|w| w.id).collect()
    }

    /// Every worker ever registered, in id order.
    pub fn workers(&self) -> impl Iterator<Item = &Worker> + '_ {
        self.workers.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_hands_out_fresh_increasing_ids() {
        let mut m = Membership::new();
        let a = m.register(Task::Seg, 0);
        let b = m.register(Task::Seg, 0);
        assert_eq!((a, b), (WorkerId(1), WorkerId(2)));
        m.leave(a).unwrap();
        assert_eq!(m.register(Task::Seg, 5), WorkerId(3), "a rejoining worker gets a new id");
    }

    #[test]
    fn a_worker_is_lost_only_once_its_silence_exceeds_the_timeout() {
        let mut m = Membership::new();
        let a = m.register(Task::Seg, 0);
        let b = m.register(Task::Depth, 0);
        m.heartbeat(b, 60).unwrap();
        assert!(m.expire(100, 100).is_empty(), "exactly the timeout is still alive");
        assert_eq!(m.expire(101, 100), [a]);
        assert_eq!(m.get(a).unwrap().liveness, Liveness::Lost { at: 101 });
        assert!(m.is_live(b));
        assert_eq!(m.expire(161, 100), [b]);
        assert!(m.expire(1000, 100).is_empty(), "the lost are not lost again");
    }

    #[test]
    fn a_late_heartbeat_does_not_move_the_clock_back() {
        let mut m = Membership::new();
        let a = m.register(Task::Seg, 0);
        m.heartbeat(a, 90).unwrap();
        m.heartbeat(a, 10).unwrap();
        assert_eq!(m.get(a).unwrap().last_heartbeat, 90);
        assert!(m.expire(150, 100).is_empty());
    }

    #[test]
    fn gone_workers_are_told_to_register_again() {
        let mut m = Membership::new();
        let a = m.register(Task::Seg, 0);
        let b = m.register(Task::Seg, 0);
        m.expire(500, 100);
        assert!(matches!(m.heartbeat(a, 501), Err(SchedulerError::WorkerLost(id)) if id == a));
        let c = m.register(Task::Seg, 501);
        m.leave(c).unwrap();
        assert!(matches!(m.heartbeat(c, 502), Err(SchedulerError::WorkerLeft(_))));
        m.leave(b).unwrap();
        assert_eq!(m.get(b).unwrap().liveness, Liveness::Lost { at: 500 }, "leaving after being lost changes nothing");
        assert!(matches!(m.heartbeat(WorkerId(99), 0), Err(SchedulerError::UnknownWorker(_))));
        assert!(m.leave(WorkerId(99)).is_err());
    }

    #[test]
    fn the_live_workers_of_a_task_are_listed_in_id_order() {
        let mut m = Membership::new();
        let a = m.register(Task::Depth, 0);
        let _ = m.register(Task::Seg, 0);
        let c = m.register(Task::Depth, 0);
        let d = m.register(Task::Depth, 0);
        m.leave(c).unwrap();
        assert_eq!(m.live(Task::Depth), [a, d]);
        assert!(m.live(Task::Both).is_empty());
    }
}
