//! A round of the `grpc` data plane: pull the snapshots this worker lacks,
//! train on the training thread, push the update in chunks.

use bytes::Bytes;
use dmtl_proto::connect::Client;
use dmtl_proto::v1::{self, UpdateChunk};
use dmtl_proto::{chunk_messages, receive};
use tonic::{Code, Status};

use super::convert::{train_losses, update_kind};
use crate::trainer::{Job, RoundResult, RoundWork, TrainerHandle};
use crate::WorkerError;

/// The snapshot versions the training thread holds (`u64::MAX`: none, or
/// changed since by local training).
pub(super) struct Held {
    pub weights: u64,
    pub teacher: u64,
}

impl Held {
    pub(super) fn nothing() -> Held {
        Held { weights: u64::MAX, teacher: u64::MAX }
    }
}

/// How pulling a round's snapshots ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pulled {
    /// The training thread holds the round's weights (and teacher).
    Ready,
    /// A newer version was published: wait for its round.
    Superseded,
}

/// What a worker needs for its grpc rounds.
pub(super) struct GrpcRound<'a> {
    pub client: &'a mut Client,
    pub worker: &'a str,
    pub chunk_bytes: usize,
    pub handle: &'a TrainerHandle,
}

impl GrpcRound<'_> {
    /// Pulls the weights (and the teacher) of round `info` unless `held`
    /// already has them, and loads them on the training thread. A failed
    /// pull is a [`WorkerError::Rpc`] for the session to handle.
    pub(super) async fn pull(&mut self, info: &v1::RoundInfo, held: &mut Held) -> Result<Pulled, WorkerError> {
        let mut pulls = vec![(v1::SnapshotKind::Weights, info.weights_version)];
        if info.teacher_version > 0 {
            pulls.push((v1::SnapshotKind::Teacher, info.teacher_version));
        }
        for (kind, version) in pulls {
            let weights = kind == v1::SnapshotKind::Weights;
            let slot = if weights { &mut held.weights } else { &mut held.teacher };
            if *slot == version {
                continue;
            }
            let request = v1::PullSnapshotRequest { worker_id: self.worker.to_string(), kind: kind as i32, version };
            let bytes = match snapshot(self.client, request).await {
                Ok(b) => b,
                Err(s) if s.code() == Code::Aborted => return Ok(Pulled::Superseded),
                Err(s) => return Err(s.into()),
            };
            if weights {
                self.handle.call(|reply| Job::Weights { bytes, reply }).await?;
            } else {
                self.handle.call(|reply| Job::Teacher { bytes, reply }).await?;
            }
            *slot = version;
        }
        Ok(Pulled::Ready)
    }

    /// Trains `work` on the training thread: the update to push.
    pub(super) async fn train(&self, work: &RoundWork) -> Result<RoundResult, WorkerError> {
        let work = work.clone();
        self.handle.call(|reply| Job::Train { work, reply }).await
    }

    /// Pushes the update `result` of round `info`; whether the coordinator merged it.
    pub(super) async fn push(
        &mut self,
        info: &v1::RoundInfo,
        work: &RoundWork,
        result: RoundResult,
    ) -> Result<bool, WorkerError> {
        let header = v1::UpdateHeader {
            worker_id: self.worker.to_string(),
            round: info.round,
            weights_version: info.weights_version,
            samples: result.samples,
            kind: update_kind(work.kind) as i32,
            losses: Some(train_losses(&result.losses)),
            encoding: v1::PayloadEncoding::Safetensors as i32,
        };
        let messages = chunk_messages::<UpdateChunk>(header, Bytes::from(result.payload), self.chunk_bytes);
        let r = self.client.push_update(tokio_stream::iter(messages)).await?.into_inner();
        if !r.accepted {
            tracing::info!(round = info.round, reason = %r.reason, "update not merged");
        }
        Ok(r.accepted)
    }
}

/// A whole snapshot stream.
async fn snapshot(client: &mut Client, request: v1::PullSnapshotRequest) -> Result<Bytes, Status> {
    let mut stream = client.pull_snapshot(request).await?.into_inner();
    let (_, bytes) = receive(&mut stream, 1 << 40).await.map_err(Status::from)?;
    Ok(bytes)
}
