//! The `dmtl.v1.Coordinator` service: requests → hub calls → responses.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dmtl_proto::v1::coordinator_server::Coordinator;
use dmtl_proto::v1::{self, SnapshotChunk};
use dmtl_proto::{chunk_messages, receive};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::*;
use crate::hub::{Hub, PushHeader, PushVerdict, Registration, RoundOffer};

/// The adapter between tonic and the [`Hub`].
pub struct CoordinatorService {
    pub hub: Arc<Hub>,
}

fn required<'a>(value: &'a str, field: &str) -> Result<&'a str, Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("`{field}` is required")));
    }
    Ok(value)
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Coordinator for CoordinatorService {
    async fn register(&self, request: Request<v1::RegisterRequest>) -> Result<Response<v1::RegisterResponse>, Status> {
        let r = request.into_inner();
        let task = task_from(r.task, "task")?;
        let registration = Registration {
            task,
            device: r.device,
            host: r.host,
            threads: r.threads,
            version: r.version,
            previous: (!r.previous_worker_id.is_empty()).then_some(r.previous_worker_id),
        };
        let admission = self.hub.register(registration).map_err(status)?;
        Ok(Response::new(admission_to(admission)))
    }

    async fn heartbeat(
        &self,
        request: Request<v1::HeartbeatRequest>,
    ) -> Result<Response<v1::HeartbeatResponse>, Status> {
        let r = request.into_inner();
        let name = required(&r.worker_id, "worker_id")?;
        let answer = self.hub.heartbeat(name, r.round, r.images_per_s, activity_from(r.state)).map_err(status)?;
        Ok(Response::new(match answer {
            Some(current_round) => v1::HeartbeatResponse { rejoin_required: false, current_round },
            None => v1::HeartbeatResponse { rejoin_required: true, current_round: 0 },
        }))
    }

    async fn wait_round(&self, request: Request<v1::WaitRoundRequest>) -> Result<Response<v1::RoundInfo>, Status> {
        let r = request.into_inner();
        let name = required(&r.worker_id, "worker_id")?;
        let max_wait =
            if r.max_wait_ms == 0 { crate::hub::MAX_WAIT } else { Duration::from_millis(r.max_wait_ms.into()) };
        let offer = self.hub.wait_round(name, r.last_round, max_wait).await.map_err(status)?;
        Ok(Response::new(match offer {
            RoundOffer::Run { round, shards } => v1::RoundInfo {
                round: round.round,
                weights_version: round.weights_version,
                teacher_version: round.teacher_version,
                plan: Some(round_plan_to(&round)),
                finished: false,
                retry_after_ms: 0,
                shards: shards.map(|(version, indices)| shard_set_to(version, round.pool, &indices)),
                nccl: round.nccl.as_deref().map(nccl_group_to),
            },
            RoundOffer::Retry { last_round, after } => v1::RoundInfo {
                round: last_round,
                retry_after_ms: after.as_millis().max(1) as u32,
                ..Default::default()
            },
            RoundOffer::Finished => v1::RoundInfo { finished: true, ..Default::default() },
        }))
    }

    type PullSnapshotStream = SnapshotStream;

    async fn pull_snapshot(
        &self,
        request: Request<v1::PullSnapshotRequest>,
    ) -> Result<Response<Self::PullSnapshotStream>, Status> {
        let r = request.into_inner();
        let name = required(&r.worker_id, "worker_id")?;
        let kind = snapshot_kind_from(r.kind)?;
        let snap = self.hub.snapshot(name, kind, r.version).map_err(status)?;
        let header = v1::SnapshotHeader {
            kind: snapshot_kind_to(kind) as i32,
            version: snap.version,
            round: snap.round,
            encoding: v1::PayloadEncoding::Safetensors as i32,
        };
        let chunk_bytes = self.hub.facts.chunk_bytes as usize;
        let messages = chunk_messages::<SnapshotChunk>(header, snap.bytes, chunk_bytes).map(Ok);
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn push_update(
        &self,
        request: Request<Streaming<v1::UpdateChunk>>,
    ) -> Result<Response<v1::PushUpdateResponse>, Status> {
        let mut stream = request.into_inner();
        let (header, payload) = receive(&mut stream, self.hub.facts.max_update_bytes).await.map_err(Status::from)?;
        let name = required(&header.worker_id, "header.worker_id")?.to_string();
        let kind = update_kind_from(header.kind)?;
        if header.encoding != v1::PayloadEncoding::Safetensors as i32 {
            return Err(Status::invalid_argument(format!(
                "`header.encoding`: must be SAFETENSORS (got {})",
                header.encoding
            )));
        }
        let push = PushHeader {
            worker: name,
            round: header.round,
            weights_version: header.weights_version,
            samples: header.samples,
            kind,
            losses: header.losses.as_ref().map(losses_from).unwrap_or_default(),
        };
        let verdict = self.hub.push(push, payload).await.map_err(status)?;
        Ok(Response::new(match verdict {
            PushVerdict::Accepted => v1::PushUpdateResponse { accepted: true, reason: String::new() },
            PushVerdict::Refused(reason) => v1::PushUpdateResponse { accepted: false, reason },
        }))
    }

    async fn leave(&self, request: Request<v1::LeaveRequest>) -> Result<Response<v1::LeaveResponse>, Status> {
        let r = request.into_inner();
        let name = required(&r.worker_id, "worker_id")?;
        self.hub.leave(name, &r.reason).map_err(status)?;
        Ok(Response::new(v1::LeaveResponse {}))
    }
}
