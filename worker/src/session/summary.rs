//! What a worker did, and where its rounds' time went.

use std::time::Instant;

/// What a worker did.
#[derive(Debug, Clone, Default)]
pub struct WorkerSummary {
    pub rounds: u64,
    pub images: u64,
    pub registrations: u64,
    /// Where the rounds' time went (seconds, summed over rounds).
    pub time: PhaseTimes,
}

/// Seconds a worker spent in each phase of its rounds, summed: what bounds a
/// synchronous round (BENCHMARKS.md, "The distributed engine").
#[derive(Debug, Default, Clone, Copy)]
pub struct PhaseTimes {
    /// Waiting for a round to open (the other workers, the merge, the publish).
    pub wait_s: f64,
    /// Pulling and loading weights and teacher snapshots.
    pub pull_s: f64,
    /// Training steps and encoding the update.
    pub train_s: f64,
    /// Sending the update until the coordinator's verdict.
    pub push_s: f64,
    /// nccl plane: joining groups and the collectives (state sync, the
    /// all-reduce merge), not counted in `train_s`.
    pub collective_s: f64,
}

impl std::fmt::Display for PhaseTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "waiting {:.1} s, pulling {:.1} s, training {:.1} s, pushing {:.1} s",
            self.wait_s, self.pull_s, self.train_s, self.push_s
        )?;
        if self.collective_s > 0.0 {
            write!(f, ", all-reducing {:.1} s", self.collective_s)?;
        }
        Ok(())
    }
}

/// The clock of one round: each lap adds the time since the last one to a phase.
pub(super) struct Laps(Instant);

impl Laps {
    pub(super) fn start() -> Self {
        Laps(Instant::now())
    }

    /// Adds the seconds since the start or the last lap to `slot`.
    pub(super) fn lap(&mut self, slot: &mut f64) {
        let now = Instant::now();
        *slot += (now - self.0).as_secs_f64();
        self.0 = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_times_name_the_all_reduce_time_only_on_the_nccl_plane() {
        let grpc = PhaseTimes { wait_s: 1.0, pull_s: 2.0, train_s: 3.0, push_s: 4.0, collective_s: 0.0 };
        assert_eq!(grpc.to_string(), "waiting 1.0 s, pulling 2.0 s, training 3.0 s, pushing 4.0 s");
        let nccl = PhaseTimes { collective_s: 0.5, ..grpc };
        assert_eq!(nccl.to_string(), "waiting 1.0 s, pulling 2.0 s, training 3.0 s, pushing 4.0 s, all-reducing 0.5 s");
    }

    #[test]
    fn a_lap_adds_the_time_since_the_previous_lap_only() {
        let mut laps = Laps::start();
        let (mut first, mut second) = (0.0, 0.0);
        std::thread::sleep(std::time::Duration::from_millis(30));
        laps.lap(&mut first);
        laps.lap(&mut second);
        assert!(first >= 0.03, "{first}");
        assert!(second < 0.03, "{second}");
    }
}
