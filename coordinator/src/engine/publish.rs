//! The snapshots workers download: the weights (nccl plane: the whole
//! training state) and the teacher, each published once per version.

use bytes::Bytes;

use super::error::EngineError;
use super::plan::PlannedStep;
use super::run::{Engine, Progress};
use crate::hub::Snapshot;

impl Engine {
    /// Publishes what the planned round's workers start from and have not
    /// seen yet: the weights, and the teacher where a part distils from it.
    pub(super) fn publish_for(&self, planned: &PlannedStep, p: &mut Progress) -> Result<(), EngineError> {
        if self.merger.version() != p.weights_published {
            self.publish_weights(p.round)?;
            p.weights_published = self.merger.version();
        }
        if self.nccl.is_none()
            && self.merger.teacher_version() != p.teacher_published
            && planned.plan.parts.iter().any(|part| part.losses.needs_teacher())
        {
            self.publish_teacher(p.round)?;
            p.teacher_published = self.merger.teacher_version();
        }
        Ok(())
    }

    /// Publishes the current weights.
    pub(super) fn publish_weights(&self, round: u64) -> Result<(), EngineError> {
        // The nccl plane's members load the whole training state, not only the weights.
        let bytes = if self.nccl.is_some() { self.merger.training_state() } else { self.merger.weights() };
        let bytes = bytes.map_err(|source| EngineError::Snapshot { what: "weights", source })?;
        let snap = Snapshot { version: self.merger.version(), round, bytes: Bytes::from(bytes) };
        self.hub.lock().weights = Some(snap);
        Ok(())
    }

    /// Publishes the current teacher (methods that distil).
    fn publish_teacher(&self, round: u64) -> Result<(), EngineError> {
        if let Some(bytes) = self.merger.teacher_weights() {
            let bytes = bytes.map_err(|source| EngineError::Snapshot { what: "teacher", source })?;
            let snap = Snapshot { version: self.merger.teacher_version(), round, bytes: Bytes::from(bytes) };
            self.hub.lock().teacher = Some(snap);
        }
        Ok(())
    }
}
