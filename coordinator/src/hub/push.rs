//! Pushed updates: validated off the runtime, judged by the round loop.

use std::collections::BTreeMap;

use bytes::Bytes;
use dmtl_core::train::wire::decode_update_with;
use dmtl_core::train::Update;
use tokio::sync::oneshot;

use super::{EngineMsg, Hub, HubError, PushHeader, PushVerdict, UpdateKind};

impl Hub {
    /// Validates an update (on a blocking thread, several at once), hands it to
    /// the round loop and waits for its verdict.
    pub async fn push(&self, header: PushHeader, payload: Bytes) -> Result<PushVerdict, HubError> {
        let id = self.parse_name(&header.worker)?;
        if header.kind.is_nccl() {
            // No tensors to merge: the step was merged by all-reduce. The
            // training state of a `State` push is checked on the round loop.
            if !header.losses.total.is_finite() && header.kind != UpdateKind::Failed {
                return Err(HubError::InvalidArgument(format!("`header.losses.total` is {}", header.losses.total)));
            }
            let state = (header.kind == UpdateKind::State).then_some(payload);
            let update = Update {
                grads: BTreeMap::new(),
                buffers: BTreeMap::new(),
                samples: header.samples as usize,
                losses: header.losses.clone(),
            };
            let (reply, verdict) = oneshot::channel();
            self.send(EngineMsg::Push { id, header: Box::new(header), update, state, reply })?;
            return verdict
                .await
                .map_err(|_| HubError::Unavailable("the coordinator's round loop has stopped".into()))?;
        }
        let spec = self.facts.spec.clone();
        let update = tokio::task::spawn_blocking(move || decode_update_with(&payload, &spec))
            .await
            .map_err(|e| HubError::Internal(format!("validating the update: {e}")))?
            .map_err(|e| HubError::InvalidArgument(e.to_string()))?;
        if update.samples as u64 != header.samples {
            return Err(HubError::InvalidArgument(format!(
                "the header says {} samples, the payload {}",
                header.samples, update.samples
            )));
        }
        let (reply, verdict) = oneshot::channel();
        self.send(EngineMsg::Push { id, header: Box::new(header), update, state: None, reply })?;
        verdict.await.map_err(|_| HubError::Unavailable("the coordinator's round loop has stopped".into()))?
    }
}
