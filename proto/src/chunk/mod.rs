//! The chunking format of tensor payloads: a payload (a safetensors buffer of
//! any size) travels as a stream of chunks, each carrying its position, the
//! stream's chunk count and byte size, a CRC-32 of its own data, and its slice
//! of the payload. [`split`] cuts a payload into chunks; an [`Assembler`]
//! checks them as they arrive and rebuilds the payload.
//!
//! - `format` — [`Chunk`] and the size limits.
//! - `split` — a payload → its chunks: [`split`], [`split_bytes`], [`chunk_count`].
//! - `assemble` — chunks → the payload: the [`Assembler`], [`assemble`] and
//!   why a stream is refused, [`ChunkError`].
//!
//! Message limits: tonic refuses, by default, to decode a message above 4 MiB.
//! That default never decides anything here, because no message carries a
//! whole payload: one message holds at most [`MAX_CHUNK_BYTES`] of payload
//! plus a header of a few hundred bytes. Both sides set their encode and
//! decode limits to [`MAX_MESSAGE_BYTES`] deliberately anyway, so that the
//! limit is ours (twice the largest chunk), not a library default that a chunk
//! of exactly 4 MiB plus its header would trip. The size of a whole payload is
//! bounded separately, by the `max_bytes` of the receiving [`Assembler`].

mod assemble;
mod format;
mod split;
#[cfg(test)]
mod testing;

pub use assemble::{assemble, Assembler, ChunkError};
pub use format::{Chunk, DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES, MAX_MESSAGE_BYTES};
pub use split::{chunk_count, split, split_bytes};
