//! The end of the loop: a checkpoint where a stopped run is, or the final
//! report of a finished one.

use dmtl_core::run_dir::FinalReport;
use dmtl_core::train::evaluate;

use super::error::EngineError;
use super::run::{Engine, EngineEnd, Progress};

impl Engine {
    /// Ends the run the loop left: stopped (checkpoint) or finished (final report).
    pub(super) fn end(mut self, p: Progress) -> Result<EngineEnd, EngineError> {
        if self.merger.step() < self.config.train.steps {
            // Stopped: save where we are (nccl plane: where the coordinator's copy is).
            if let Some(plane) = &self.nccl {
                self.merger.state_mut().state = plane.synced().clone();
            }
            let step = self.merger.step();
            self.merger.state_mut().state.wall_s = p.wall_s();
            let path = self.checkpoint(p.round)?;
            return Ok(EngineEnd::Stopped { step, checkpoint: path });
        }
        let metrics = match p.last_metrics {
            Some(m) => m,
            None => evaluate(&self.merger.state().model, &self.val, self.config.eval.batch_size),
        };
        let s = &self.merger.state().state;
        let report = FinalReport {
            method: self.config.method.kind.to_string(),
            seed: self.config.seed,
            steps: s.step,
            wall_s: s.wall_s,
            seg: metrics.seg.clone(),
            depth: metrics.depth.clone(),
            images_seen: s.images_seen,
            loader: None,
        };
        self.dir.write_final(&report)?;
        Ok(EngineEnd::Finished(report))
    }
}
