//! After a merged round: the evaluation and the checkpoint that fall due,
//! exactly where `dmtl train` makes them.

use std::path::PathBuf;

use dmtl_core::checkpoint;
use dmtl_core::optim::learning_rate;
use dmtl_core::run_dir::MetricsLine;
use dmtl_core::train::evaluate;

use super::error::EngineError;
use super::run::{Engine, Progress};
use crate::hub::EventKind;

/// Whether a round from `step` to `done` passes a multiple of `every`, or
/// ends the run (`total` steps).
pub(super) fn crosses(step: usize, done: usize, every: usize, total: usize) -> bool {
    (done / every) != (step / every) || done == total
}

/// What falls due after a round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Due {
    pub eval: bool,
    pub checkpoint: bool,
}

impl Engine {
    /// Evaluates and checkpoints when the round from `step` to `done` made
    /// them due (or an earlier round did whose training state had not
    /// arrived). nccl plane: with the coordinator's copy not `current` both wait.
    pub(super) fn evaluate_if_due(
        &mut self,
        step: usize,
        done: usize,
        current: bool,
        p: &mut Progress,
    ) -> Result<(), EngineError> {
        let (total, train) = (self.config.train.steps, &self.config.train);
        let due = Due {
            eval: crosses(step, done, train.eval_every, total) || p.missed.eval,
            checkpoint: crosses(step, done, train.checkpoint_every, total) || p.missed.checkpoint,
        };
        if !current {
            p.missed = due; // when the training state arrives
            return Ok(());
        }
        p.missed = Due::default();
        if due.eval {
            self.evaluate(done, p)?;
        }
        if due.checkpoint {
            self.checkpoint(p.round)?;
        }
        Ok(())
    }

    /// Evaluates the model at step `done`, writes the metrics line and tells the hub.
    fn evaluate(&mut self, done: usize, p: &mut Progress) -> Result<(), EngineError> {
        let metrics = evaluate(&self.merger.state().model, &self.val, self.config.eval.batch_size);
        let line = MetricsLine {
            step: done,
            wall_s: self.merger.state().state.wall_s,
            images_seen: self.merger.state().state.images_seen,
            lr: learning_rate(&self.config.train, done - 1),
            train: self.merger.state_mut().state.loss_sums.take(),
            val: metrics.clone(),
        };
        self.dir.append_metrics(&line)?;
        tracing::info!(step = done, miou = metrics.seg.miou, abs_err = metrics.depth.abs_err, "evaluated");
        let mut st = self.hub.lock();
        st.run.latest_metrics = Some(metrics.clone());
        st.run.metrics_step = done as u64;
        self.hub.emit(&mut st, EventKind::Evaluated { round: p.round, step: done as u64, metrics: metrics.clone() });
        p.last_metrics = Some(metrics);
        Ok(())
    }

    /// Writes a checkpoint of the coordinator's state, prunes old ones and tells the hub.
    pub(super) fn checkpoint(&self, round: u64) -> Result<PathBuf, EngineError> {
        let step = self.merger.step();
        let path = checkpoint::checkpoint_path(&self.dir.checkpoints(), step);
        self.merger.checkpoint().save(&path)?;
        checkpoint::prune(&self.dir.checkpoints(), self.config.train.keep_checkpoints);
        let mut st = self.hub.lock();
        st.run.last_checkpoint = Some(path.display().to_string());
        self.hub
            .emit(&mut st, EventKind::CheckpointWritten { path: path.display().to_string(), round, step: step as u64 });
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_that_passes_a_multiple_is_due() {
        assert!(crosses(9, 10, 5, 100));
        assert!(crosses(8, 12, 5, 100), "a round of local steps across the multiple");
    }

    #[test]
    fn a_round_inside_an_interval_is_not_due() {
        assert!(!crosses(10, 11, 5, 100));
        assert!(!crosses(11, 14, 5, 100));
    }

    #[test]
    fn the_last_round_is_always_due() {
        assert!(crosses(18, 20, 1000, 20));
    }
}
