//! nccl plane: the coordinator's own model is current only after rank 0's
//! training state arrived (pushed in the rounds after which the
//! coordinator evaluates or checkpoints).

use bytes::Bytes;

use super::error::EngineError;
use super::plan::PlannedStep;
use super::run::Engine;

impl Engine {
    /// Loads rank 0's training state when the round asked for it. Returns
    /// whether the coordinator's model is at the run's step (always, on the
    /// grpc plane). A missing or bad state is asked for again next round.
    pub(super) fn catch_up(&mut self, planned: &PlannedStep, state: Option<Bytes>, round: u64) -> bool {
        if self.nccl.is_none() {
            return true;
        }
        if !planned.want_state {
            return false;
        }
        let loaded = match state {
            Some(bytes) => self.merger.load_training_state(&bytes).map_err(EngineError::from),
            None => Err(EngineError::StateMissing),
        };
        let Some(plane) = self.nccl.as_mut() else { return true };
        match loaded {
            Ok(()) => {
                plane.pending_state = false;
                plane.set_synced(self.merger.state().state.clone());
                true
            }
            Err(e) => {
                tracing::warn!(round, error = %e, "no training state after the round; asking again next round");
                plane.pending_state = true;
                false
            }
        }
    }
}
