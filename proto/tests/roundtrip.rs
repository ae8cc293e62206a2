//! Tensors above 64 MiB travel through a real tonic server in chunks, with
//! the message limits set to MAX_MESSAGE_BYTES on both sides: a 70 MiB
//! snapshot is pulled, pushed back as an update, and reassembled intact.

use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use dmtl_proto::v1::coordinator_client::CoordinatorClient;
use dmtl_proto::v1::coordinator_server::{Coordinator, CoordinatorServer};
use dmtl_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, LeaveRequest, LeaveResponse, PayloadEncoding, PullSnapshotRequest,
    PushUpdateResponse, RegisterRequest, RegisterResponse, RoundInfo, SnapshotChunk, SnapshotHeader, SnapshotKind,
    TrainLosses, UpdateChunk, UpdateHeader, UpdateKind, WaitRoundRequest,
};
use dmtl_proto::{chunk_messages, receive, DEFAULT_CHUNK_BYTES, MAX_MESSAGE_BYTES};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::Stream;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status, Streaming};

/// 70 MiB and a bit, so the last chunk is short.
const SNAPSHOT_BYTES: usize = (70 << 20) + 12_345;
const MAX_PAYLOAD_BYTES: u64 = 128 << 20;
const WEIGHTS_VERSION: u64 = 7;

fn payload(len: usize) -> Bytes {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect::<Vec<u8>>().into()
}

/// A coordinator that serves one weights snapshot and checks updates against it.
struct Snapshots {
    weights: Bytes,
    crc32: u32,
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<SnapshotChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Coordinator for Snapshots {
    type PullSnapshotStream = ChunkStream;

    async fn pull_snapshot(&self, request: Request<PullSnapshotRequest>) -> Result<Response<ChunkStream>, Status> {
        let request = request.into_inner();
        if request.kind() != SnapshotKind::Weights || request.version != WEIGHTS_VERSION {
            return Err(Status::not_found(format!("no {:?} snapshot of version {}", request.kind(), request.version)));
        }
        let header = SnapshotHeader {
            kind: SnapshotKind::Weights.into(),
            version: WEIGHTS_VERSION,
            round: 3,
            encoding: PayloadEncoding::Safetensors.into(),
        };
        let chunks = chunk_messages::<SnapshotChunk>(header, self.weights.clone(), DEFAULT_CHUNK_BYTES).map(Ok);
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn push_update(
        &self,
        request: Request<Streaming<UpdateChunk>>,
    ) -> Result<Response<PushUpdateResponse>, Status> {
        let (header, payload) = receive(&mut request.into_inner(), MAX_PAYLOAD_BYTES).await?;
        let crc32 = crc32fast::hash(&payload);
        let (accepted, reason) = if crc32 == self.crc32 && header.weights_version == WEIGHTS_VERSION {
            (true, String::new())
        } else {
            (false, format!("{} bytes with crc32 {crc32:#010x} from {}", payload.len(), header.worker_id))
        };
        Ok(Response::new(PushUpdateResponse { accepted, reason }))
    }

    async fn register(&self, _: Request<RegisterRequest>) -> Result<Response<RegisterResponse>, Status> {
        Err(Status::unimplemented("register"))
    }

    async fn heartbeat(&self, _: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        Err(Status::unimplemented("heartbeat"))
    }

    async fn wait_round(&self, _: Request<WaitRoundRequest>) -> Result<Response<RoundInfo>, Status> {
        Err(Status::unimplemented("wait_round"))
    }

    async fn leave(&self, _: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        Err(Status::unimplemented("leave"))
    }
}

/// A server on 127.0.0.1:0 with the message limits at MAX_MESSAGE_BYTES.
struct TestServer {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    async fn start(weights: Bytes) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = CoordinatorServer::new(Snapshots { crc32: crc32fast::hash(&weights), weights })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(Server::builder().add_service(service).serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            async {
                stop.await.ok();
            },
        ));
        TestServer { addr, shutdown, task }
    }

    async fn client(&self) -> CoordinatorClient<Channel> {
        CoordinatorClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    async fn stop(self) {
        self.shutdown.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn update_header() -> UpdateHeader {
    UpdateHeader {
        worker_id: "seg-0".into(),
        round: 3,
        weights_version: WEIGHTS_VERSION,
        samples: 8,
        kind: UpdateKind::Gradients.into(),
        losses: Some(TrainLosses { total: 1.25, seg: Some(1.25), ..Default::default() }),
        encoding: PayloadEncoding::Safetensors.into(),
    }
}

async fn pull_weights(client: &mut CoordinatorClient<Channel>) -> (SnapshotHeader, Bytes) {
    let request = PullSnapshotRequest { worker_id: "seg-0".into(), kind: SnapshotKind::Weights.into(), version: 7 };
    let mut stream = client.pull_snapshot(request).await.unwrap().into_inner();
    receive(&mut stream, MAX_PAYLOAD_BYTES).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_70_mib_snapshot_is_pulled_and_pushed_back_in_chunks() {
    let weights = payload(SNAPSHOT_BYTES);
    assert!(weights.len() > 64 << 20 && weights.len() > MAX_MESSAGE_BYTES);
    let server = TestServer::start(weights.clone()).await;
    let mut client = server.client().await;

    let (header, pulled) = pull_weights(&mut client).await;
    assert_eq!((header.kind(), header.version, header.round), (SnapshotKind::Weights, WEIGHTS_VERSION, 3));
    assert_eq!(header.encoding(), PayloadEncoding::Safetensors);
    assert!(pulled == weights, "the pulled snapshot differs from the served one");

    let chunks = chunk_messages::<UpdateChunk>(update_header(), pulled, DEFAULT_CHUNK_BYTES);
    let response = client.push_update(tokio_stream::iter(chunks)).await.unwrap().into_inner();
    assert!(response.accepted, "update refused: {}", response.reason);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_update_chunk_fails_the_push_with_data_loss() {
    let weights = payload(5 << 20);
    let server = TestServer::start(weights.clone()).await;
    let mut client = server.client().await;

    let mut chunks: Vec<UpdateChunk> = chunk_messages(update_header(), weights, DEFAULT_CHUNK_BYTES).collect();
    let mut data = chunks[2].data.to_vec();
    data[0] ^= 0xff;
    chunks[2].data = data.into();
    let status = client.push_update(tokio_stream::iter(chunks)).await.unwrap_err();
    assert_eq!(status.code(), Code::DataLoss);
    assert!(status.message().starts_with("chunk 2 of 5: crc32 mismatch"), "{}", status.message());

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_message_above_max_message_bytes_is_refused_by_the_server() {
    // What chunking avoids: a payload sent whole in one message. The client's
    // encoding limit is raised so that the server's decoding limit decides.
    let weights = payload(MAX_MESSAGE_BYTES + 1);
    let server = TestServer::start(weights.clone()).await;
    let mut client = server.client().await.max_encoding_message_size(2 * MAX_MESSAGE_BYTES);

    let whole = dmtl_proto::Chunk::new(0, 1, weights.len() as u64, weights);
    let message = UpdateChunk { header: Some(update_header()), ..UpdateChunk::from(whole) };
    let status = client.push_update(tokio_stream::iter([message])).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{}", status.message());

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_version_the_server_does_not_hold_is_not_found() {
    let server = TestServer::start(payload(10)).await;
    let mut client = server.client().await;
    let request = PullSnapshotRequest { worker_id: "seg-0".into(), kind: SnapshotKind::Teacher.into(), version: 7 };
    let status = client.pull_snapshot(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await;
}
