//! The chunk format on the wire: [`SnapshotChunk`] and [`UpdateChunk`] carry
//! a [`Chunk`] in their `index` … `data` fields and, on the first chunk of a
//! stream only, a header. [`chunk_messages`] turns a header and a payload into a
//! stream's messages; a [`StreamReceiver`] (or [`receive`] over a tonic
//! stream) checks them and gives back the header and the payload.

use bytes::Bytes;
use tonic::{Code, Status};

use crate::chunk::{split_bytes, Assembler, Chunk, ChunkError};
use crate::v1::{SnapshotChunk, SnapshotHeader, UpdateChunk, UpdateHeader};

/// A message that carries one chunk of a stream and, on the first, a header.
pub trait ChunkMessage: Sized {
    /// What the first message of a stream says about the payload.
    type Header;

    /// The message of `chunk`, with `header` (the first chunk's only).
    fn from_parts(header: Option<Self::Header>, chunk: Chunk) -> Self;

    /// The message's header, if any, and its chunk.
    fn into_parts(self) -> (Option<Self::Header>, Chunk);
}

macro_rules! chunk_message {
    ($message:ident, $header:ident) => {
        impl ChunkMessage for $message {
            type Header = $header;

            fn from_parts(header: Option<$header>, chunk: Chunk) -> Self {
                let Chunk { index, total, total_bytes, crc32, data } = chunk;
                $message { header, index, total, total_bytes, crc32, data }
            }

            fn into_parts(self) -> (Option<$header>, Chunk) {
                let $message { header, index, total, total_bytes, crc32, data } = self;
                (header, Chunk { index, total, total_bytes, crc32, data })
            }
        }

        /// The message of a chunk other than the first (no header).
        impl From<Chunk> for $message {
            fn from(chunk: Chunk) -> Self {
                $message::from_parts(None, chunk)
            }
        }
    };
}

chunk_message!(SnapshotChunk, SnapshotHeader);
chunk_message!(UpdateChunk, UpdateHeader);

/// The messages of one stream: `payload` cut into chunks of `chunk_bytes`
/// (sharing its buffer), `header` on the first.
///
/// # Panics
/// As [`crate::chunk::chunk_count`].
pub fn chunk_messages<M>(
    header: M::Header,
    payload: Bytes,
    chunk_bytes: usize,
) -> impl Iterator<Item = M> + Send + 'static
where
    M: ChunkMessage,
    M::Header: Send + 'static,
{
    let mut header = Some(header);
    split_bytes(payload, chunk_bytes).map(move |chunk| M::from_parts(header.take(), chunk))
}

/// Why a received chunk stream was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The transport failed (or the peer sent an error status).
    #[error("the stream failed: {}", .0.message())]
    Transport(Box<Status>),
    /// The first message carried no header.
    #[error("the first chunk carries no header")]
    MissingHeader,
    /// A message other than the first carried a header.
    #[error("chunk {index} carries a header; only the first chunk may")]
    UnexpectedHeader { index: u32 },
    /// The chunks themselves were refused.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
}

impl From<Status> for ReceiveError {
    fn from(status: Status) -> Self {
        ReceiveError::Transport(Box::new(status))
    }
}

/// The gRPC status a server answers a refused stream with: DATA_LOSS for a
/// corrupted chunk, RESOURCE_EXHAUSTED for a payload above the limit,
/// INVALID_ARGUMENT for any other framing error; a transport failure passes
/// through.
impl From<ReceiveError> for Status {
    fn from(err: ReceiveError) -> Self {
        let code = match &err {
            ReceiveError::Transport(status) => return (**status).clone(),
            ReceiveError::Chunk(ChunkError::CrcMismatch { .. }) => Code::DataLoss,
            ReceiveError::Chunk(ChunkError::TooLarge { .. }) => Code::ResourceExhausted,
            _ => Code::InvalidArgument,
        };
        Status::new(code, err.to_string())
    }
}

/// Checks the messages of one stream as they arrive and rebuilds the payload
/// (see [`Assembler`]); the header must be on the first message and only there.
#[derive(Debug)]
pub struct StreamReceiver<M: ChunkMessage> {
    header: Option<M::Header>,
    assembler: Assembler,
}

impl<M: ChunkMessage> StreamReceiver<M> {
    /// A receiver that refuses payloads above `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        StreamReceiver { header: None, assembler: Assembler::new(max_bytes) }
    }

    /// Checks `message` and keeps its header or appends its data.
    pub fn push(&mut self, message: M) -> Result<(), ReceiveError> {
        let (header, chunk) = message.into_parts();
        let first = self.header.is_none();
        match (first, header) {
            (true, None) => return Err(ReceiveError::MissingHeader),
            (false, Some(_)) => return Err(ReceiveError::UnexpectedHeader { index: chunk.index }),
            (true, Some(header)) => {
                self.assembler.push(&chunk)?;
                self.header = Some(header);
            }
            (false, None) => self.assembler.push(&chunk)?,
        }
        Ok(())
    }

    /// Whether every chunk has arrived.
    pub fn is_complete(&self) -> bool {
        self.assembler.is_complete()
    }

    /// The header and the payload, once every chunk has arrived.
    pub fn finish(self) -> Result<(M::Header, Bytes), ReceiveError> {
        let payload = self.assembler.finish()?;
        // A finished assembler has taken a first chunk, which had a header.
        let header = self.header.ok_or(ReceiveError::MissingHeader)?;
        Ok((header, payload))
    }
}

/// Reads a tonic stream of chunk messages to its end and returns the header
/// and the payload; refuses payloads above `max_bytes`.
pub async fn receive<M: ChunkMessage>(
    stream: &mut tonic::Streaming<M>,
    max_bytes: u64,
) -> Result<(M::Header, Bytes), ReceiveError> {
    let mut receiver = StreamReceiver::new(max_bytes);
    while let Some(message) = stream.message().await? {
        receiver.push(message)?;
    }
    receiver.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{SnapshotKind, UpdateKind};

    fn header() -> UpdateHeader {
        UpdateHeader {
            worker_id: "seg-0".into(),
            round: 3,
            samples: 8,
            kind: UpdateKind::Gradients.into(),
            ..Default::default()
        }
    }

    fn payload(len: usize) -> Bytes {
        (0..len).map(|i| i as u8).collect::<Vec<u8>>().into()
    }

    #[test]
    fn only_the_first_message_carries_the_header() {
        let msgs: Vec<UpdateChunk> = chunk_messages(header(), payload(10), 4).collect();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].header, Some(header()));
        assert!(msgs[1..].iter().all(|m| m.header.is_none()));
        assert_eq!(msgs.iter().map(|m| m.index).collect::<Vec<_>>(), vec![0, 1, 2]);
    }

    #[test]
    fn a_chunk_survives_the_trip_through_both_messages() {
        let chunk = Chunk::new(2, 5, 4_000, Bytes::from_static(b"tensor bytes"));
        let snapshot = SnapshotChunk::from(chunk.clone());
        assert_eq!((snapshot.index, snapshot.total, snapshot.total_bytes), (2, 5, 4_000));
        assert_eq!(snapshot.crc32, crc32fast::hash(b"tensor bytes"));
        assert_eq!(snapshot.into_parts(), (None, chunk.clone()));
        let update = UpdateChunk::from_parts(Some(header()), chunk.clone());
        assert_eq!(update.into_parts(), (Some(header()), chunk.clone()));
        let snapshot_header = SnapshotHeader { kind: SnapshotKind::Teacher.into(), version: 4, ..Default::default() };
        let first = SnapshotChunk::from_parts(Some(snapshot_header), chunk);
        assert_eq!(first.header, Some(snapshot_header));
    }

    #[test]
    fn a_stream_comes_back_with_its_header_and_payload() {
        let mut receiver = StreamReceiver::<UpdateChunk>::new(1_000);
        for message in chunk_messages(header(), payload(10), 4) {
            receiver.push(message).unwrap();
        }
        assert!(receiver.is_complete());
        assert_eq!(receiver.finish().unwrap(), (header(), payload(10)));
    }

    #[test]
    fn a_stream_without_a_header_is_refused() {
        let mut msgs = chunk_messages::<UpdateChunk>(header(), payload(10), 4);
        let mut first = msgs.next().unwrap();
        first.header = None;
        let err = StreamReceiver::<UpdateChunk>::new(1_000).push(first).unwrap_err();
        assert_eq!(err.to_string(), "the first chunk carries no header");
        assert_eq!(Status::from(err).code(), Code::InvalidArgument);
    }

    #[test]
    fn a_second_header_is_refused() {
        let mut msgs: Vec<UpdateChunk> = chunk_messages(header(), payload(10), 4).collect();
        msgs[1].header = Some(header());
        let mut receiver = StreamReceiver::new(1_000);
        receiver.push(msgs.remove(0)).unwrap();
        let err = receiver.push(msgs.remove(0)).unwrap_err();
        assert_eq!(err.to_string(), "chunk 1 carries a header; only the first chunk may");
    }

    #[test]
    fn an_empty_stream_is_refused() {
        let err = StreamReceiver::<SnapshotChunk>::new(1_000).finish().unwrap_err();
        assert_eq!(err.to_string(), "the stream ended before its first chunk");
    }

    #[test]
    fn refusals_map_to_grpc_codes_that_say_what_went_wrong() {
        let mut corrupt: Vec<UpdateChunk> = chunk_messages(header(), payload(10), 4).collect();
        corrupt[1].crc32 ^= 1;
        let mut receiver = StreamReceiver::new(1_000);
        let err = corrupt.into_iter().try_for_each(|m| receiver.push(m)).unwrap_err();
        let status = Status::from(err);
        assert_eq!(status.code(), Code::DataLoss);
        assert!(status.message().starts_with("chunk 1 of 3: crc32 mismatch"), "{}", status.message());

        let first = chunk_messages::<UpdateChunk>(header(), payload(10), 4).next().unwrap();
        let err = StreamReceiver::new(9).push(first).unwrap_err();
        let status = Status::from(err);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "payload is 10 B, above the 9 B limit");

        let status = Status::from(ReceiveError::from(Status::unavailable("connection reset")));
        assert_eq!((status.code(), status.message()), (Code::Unavailable, "connection reset"));
    }
}
