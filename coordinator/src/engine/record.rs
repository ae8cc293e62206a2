//! What the hub shows of a merged round: its timing, the run's counters and
//! the `RoundMerged` event.

use std::time::Instant;

use super::apply::MergedRound;
use super::run::Engine;
use crate::hub::EventKind;

impl Engine {
    /// Records merged round `round`, which brought the run to step `done`
    /// (opened at `opened_at`, its last update accepted at `last_push_at`), in the hub.
    pub(super) fn record_round(
        &self,
        round: u64,
        done: usize,
        merged: &MergedRound,
        opened_at: Instant,
        last_push_at: Instant,
    ) {
        let mut st = self.hub.lock();
        let t = &mut st.run.timing;
        t.last_round_s = opened_at.elapsed().as_secs_f64();
        t.last_merge_s = last_push_at.elapsed().as_secs_f64();
        t.sum_round_s += t.last_round_s;
        t.sum_merge_s += t.last_merge_s;
        t.max_merge_s = t.max_merge_s.max(t.last_merge_s);
        st.run.step = done as u64;
        st.run.latest_losses = Some(merged.losses.clone());
        st.run.rounds_merged += 1;
        st.run.images_seen = self.merger.state().state.images_seen;
        let kind = EventKind::RoundMerged {
            round,
            step: done as u64,
            samples: merged.samples as u64,
            losses: merged.losses.clone(),
            workers: merged.workers as u32,
            weights_version: self.merger.version(),
        };
        self.hub.emit(&mut st, kind);
    }
}
