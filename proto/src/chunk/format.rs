//! What one chunk carries, and the limits on its size and on the message
//! that holds it.

use bytes::Bytes;

/// Payload bytes per chunk unless configured otherwise: 1 MiB.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// The largest payload slice one chunk may carry (the ceiling of the
/// `data_plane.chunk_bytes` setting): 4 MiB.
pub const MAX_CHUNK_BYTES: usize = 4 << 20;

/// The gRPC message size limit, for encoding and decoding, that clients and
/// servers of `dmtl.v1` set on both sides: 8 MiB, twice [`MAX_CHUNK_BYTES`].
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;

const _: () = assert!(2 * MAX_CHUNK_BYTES <= MAX_MESSAGE_BYTES, "a chunk and its header must fit in one message");

/// One piece of a chunked payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the stream, 0-based.
    pub index: u32,
    /// Chunks in the stream (≥ 1: an empty payload is one empty chunk).
    pub total: u32,
    /// Bytes of the whole payload.
    pub total_bytes: u64,
    /// CRC-32 (IEEE, as `crc32fast` computes it) of `data`.
    pub crc32: u32,
    /// This chunk's slice of the payload.
    pub data: Bytes,
}

impl Chunk {
    /// A chunk of `data` with its checksum computed.
    pub fn new(index: u32, total: u32, total_bytes: u64, data: Bytes) -> Self {
        let crc32 = crc32fast::hash(&data);
        Chunk { index, total, total_bytes, crc32, data }
    }

    /// Whether this is the stream's last chunk.
    pub fn is_last(&self) -> bool {
        self.index.checked_add(1) == Some(self.total)
    }
}
