//! The loop itself: what it owns, what it carries from round to round, and
//! one round from its plan to its evaluation.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use dmtl_core::config::Config;
use dmtl_core::data::Sample;
use dmtl_core::metrics::EvalMetrics;
use dmtl_core::run_dir::{FinalReport, RunDir};

use super::error::EngineError;
use super::evaluate::Due;
use super::open::Opening;
use crate::hub::{EngineMsg, Hub};
use crate::merger::Merger;
use crate::nccl_plane::NcclPlane;

/// Everything the round loop needs.
pub struct Engine {
    pub hub: Arc<Hub>,
    pub rx: Receiver<EngineMsg>,
    pub config: Config,
    pub merger: Merger,
    pub val: Vec<Sample>,
    pub dir: RunDir,
    /// `round_timeout_s` in ms.
    pub heartbeat_timeout_ms: u64,
    /// The `nccl` data plane (None: `grpc`).
    pub nccl: Option<NcclPlane>,
}

/// How the loop ended.
#[derive(Debug)]
pub enum EngineEnd {
    Finished(FinalReport),
    /// Stopped on request, with a checkpoint at this step.
    Stopped {
        step: usize,
        checkpoint: PathBuf,
    },
}

/// What the loop carries from round to round.
pub(super) struct Progress {
    /// When this session of the run started (the wall time adds to `wall_before`).
    pub session: Instant,
    /// The run's wall time before this session (a resumed run's).
    pub wall_before: f64,
    /// The last round number used.
    pub round: u64,
    pub last_metrics: Option<EvalMetrics>,
    /// The versions last published (`u64::MAX`: none yet).
    pub teacher_published: u64,
    pub weights_published: u64,
    /// A stop was asked for (or the hub went away).
    pub stop: bool,
    /// nccl plane: an evaluation and a checkpoint that wait for rank 0's training state.
    pub missed: Due,
}

impl Progress {
    /// The run's wall time now.
    pub fn wall_s(&self) -> f64 {
        self.wall_before + self.session.elapsed().as_secs_f64()
    }
}

impl Engine {
    /// Runs the rounds to the end of training (or a stop request).
    pub fn run(mut self) -> Result<EngineEnd, EngineError> {
        let round = self.merger.step() as u64;
        let mut progress = Progress {
            session: Instant::now(),
            wall_before: self.merger.state().state.wall_s,
            round,
            last_metrics: None,
            teacher_published: u64::MAX,
            weights_published: u64::MAX,
            stop: false,
            missed: Due::default(),
        };
        {
            let mut st = self.hub.lock();
            st.run.step = self.merger.step() as u64;
            st.run.round = round;
        }
        while self.merger.step() < self.config.train.steps && !progress.stop {
            self.play_round(&mut progress)?;
        }
        self.end(progress)
    }

    /// One round of the next step: open it, collect it, merge it, evaluate
    /// and checkpoint when due. Returns early (the loop plans the step again)
    /// when the round could not open or was abandoned.
    fn play_round(&mut self, p: &mut Progress) -> Result<(), EngineError> {
        let planned = self.plan_step();
        self.publish_for(&planned, p)?;
        let opened = match self.open_round(&planned, p)? {
            Opening::Opened(opened) => opened,
            Opening::Replan => return Ok(()),
            Opening::Stop => {
                p.stop = true; // stop requested while waiting for workers
                return Ok(());
            }
        };
        self.hub.notify_round();
        let opened_at = Instant::now();
        let mut collected = self.collect(&planned, opened_at, p)?;
        let Some(finished) = collected.finished.take() else {
            return Ok(()); // stalled or stopping: plan the step again (or leave the loop)
        };
        if finished.merged.is_empty() {
            if let Some(plane) = self.nccl.as_mut() {
                // Timed out without a receipt: nobody is known to have taken the step.
                tracing::warn!(round = p.round, "round timed out without a receipt; planning the step again");
                plane.retire();
                return Ok(());
            }
        }
        let merged = self.apply(&planned, &opened, &finished, &mut collected.updates)?;
        let done = self.merger.step();
        self.merger.state_mut().state.wall_s = p.wall_s();
        let current = self.catch_up(&planned, collected.state.take(), p.round);
        if done < self.config.train.steps && self.nccl.is_none() {
            self.publish_weights(p.round)?;
            p.weights_published = self.merger.version();
        }
        self.record_round(p.round, done, &merged, opened_at, collected.last_push_at);
        self.evaluate_if_due(planned.step, done, current, p)
    }
}
