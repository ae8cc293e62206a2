//! Chunks → the payload: the [`Assembler`] that checks each chunk as it
//! arrives, and why a stream is refused.

use std::fmt;

use bytes::Bytes;

use super::Chunk;

/// Why a chunk stream was refused. Chunk indices in messages are 0-based, as
/// on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The stream ended before its first chunk.
    #[error("the stream ended before its first chunk")]
    Empty,
    /// The first chunk declares a stream of no chunks.
    #[error("the stream declares 0 chunks (an empty payload is one empty chunk)")]
    NoChunks,
    /// The declared payload is above the receiver's limit.
    #[error("payload is {}, above the {} limit", Size(*total_bytes), Size(*max_bytes))]
    TooLarge { total_bytes: u64, max_bytes: u64 },
    /// More chunks than payload bytes: only an empty payload has an empty chunk.
    #[error("the stream declares {total} chunks for a payload of {}", Size(*total_bytes))]
    TooManyChunks { total: u32, total_bytes: u64 },
    /// A chunk's `total` or `total_bytes` differs from the first chunk's.
    #[error("chunk {index} of {total}: {field} changed from {first} to {got} mid-stream")]
    FrameChanged { index: u32, total: u32, field: &'static str, first: u64, got: u64 },
    /// A chunk index at or past the stream's end.
    #[error("chunk {index} is past the end of a stream of {total} chunks")]
    PastEnd { index: u32, total: u32 },
    /// A chunk that already arrived arrived again.
    #[error("chunk {index} of {total} arrived twice (chunk {expected} was expected)")]
    Duplicate { index: u32, total: u32, expected: u32 },
    /// A chunk arrived before the ones preceding it.
    #[error("chunk {index} of {total} arrived out of order (chunk {expected} was expected)")]
    OutOfOrder { index: u32, total: u32, expected: u32 },
    /// A chunk's data does not match its checksum.
    #[error("chunk {index} of {total}: crc32 mismatch (declared {declared:#010x}, computed {computed:#010x})")]
    CrcMismatch { index: u32, total: u32, declared: u32, computed: u32 },
    /// The chunks carry more bytes than the stream declared.
    #[error("chunk {index} of {total}: {received} bytes received, more than the {total_bytes} declared")]
    Overrun { index: u32, total: u32, received: u64, total_bytes: u64 },
    /// Every chunk arrived but their bytes fall short of the declared size.
    #[error("the stream carried {received} bytes, {total_bytes} were declared")]
    SizeMismatch { received: u64, total_bytes: u64 },
    /// The stream ended early.
    #[error("the stream ended after {received} of {total} chunks")]
    Truncated { received: u32, total: u32 },
}

/// A byte count for messages: `512 B`, `12.5 KiB`, `80.0 MiB`, `1.2 GiB`.
#[derive(Debug, Clone, Copy)]
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

/// The frame every chunk of a stream must repeat.
#[derive(Debug, Clone, Copy)]
struct Frame {
    total: u32,
    total_bytes: u64,
}

/// Rebuilds a payload from its chunks, checking each as it arrives: the
/// index sequence, the frame (`total`, `total_bytes`) against the first
/// chunk, the checksum, the running size against the declared size (itself at
/// most `max_bytes`), and at the end the chunk count and size.
///
/// A refused chunk changes nothing, but a refused stream is normally
/// abandoned: the receiver drops the assembler and reports the error.
#[derive(Debug)]
pub struct Assembler {
    max_bytes: u64,
    frame: Option<Frame>,
    next: u32,
    buf: Vec<u8>,
}

impl Assembler {
    /// An assembler that refuses payloads above `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Assembler { max_bytes, frame: None, next: 0, buf: Vec::new() }
    }

    /// Checks `chunk` and appends its data.
    pub fn push(&mut self, chunk: &Chunk) -> Result<(), ChunkError> {
        let Chunk { index, total, total_bytes, .. } = *chunk;
        let frame = match self.frame {
            Some(frame) => {
                check_same(index, frame, "total", u64::from(frame.total), u64::from(total))?;
                check_same(index, frame, "total_bytes", frame.total_bytes, total_bytes)?;
                frame
            }
            None => self.check_first(chunk)?,
        };
        if index >= total {
            return Err(ChunkError::PastEnd { index, total });
        }
        if index != self.next {
            let expected = self.next;
            return Err(if index < expected {
                ChunkError::Duplicate { index, total, expected }
            } else {
                ChunkError::OutOfOrder { index, total, expected }
            });
        }
        let computed = crc32fast::hash(&chunk.data);
        if computed != chunk.crc32 {
            return Err(ChunkError::CrcMismatch { index, total, declared: chunk.crc32, computed });
        }
        let received = self.buf.len() as u64 + chunk.data.len() as u64;
        if received > total_bytes {
            return Err(ChunkError::Overrun { index, total, received, total_bytes });
        }
        if chunk.is_last() && received != total_bytes {
            return Err(ChunkError::SizeMismatch { received, total_bytes });
        }
        if self.frame.is_none() {
            // Bounded by max_bytes, checked above.
            self.buf.reserve_exact(total_bytes as usize);
            self.frame = Some(frame);
        }
        self.buf.extend_from_slice(&chunk.data);
        self.next += 1;
        Ok(())
    }

    fn check_first(&self, chunk: &Chunk) -> Result<Frame, ChunkError> {
        let Chunk { total, total_bytes, .. } = *chunk;
        if total == 0 {
            return Err(ChunkError::NoChunks);
        }
        if total_bytes > self.max_bytes {
            return Err(ChunkError::TooLarge { total_bytes, max_bytes: self.max_bytes });
        }
        if u64::from(total) > total_bytes.max(1) {
            return Err(ChunkError::TooManyChunks { total, total_bytes });
        }
        Ok(Frame { total, total_bytes })
    }

    /// Whether every chunk has arrived.
    pub fn is_complete(&self) -> bool {
        self.frame.is_some_and(|frame| self.next == frame.total)
    }

    /// Payload bytes received so far.
    pub fn received_bytes(&self) -> u64 {
        self.buf.len() as u64
    }

    /// The payload, once every chunk has arrived.
    pub fn finish(self) -> Result<Bytes, ChunkError> {
        let frame = self.frame.ok_or(ChunkError::Empty)?;
        if self.next != frame.total {
            return Err(ChunkError::Truncated { received: self.next, total: frame.total });
        }
        Ok(Bytes::from(self.buf))
    }
}

fn check_same(index: u32, frame: Frame, field: &'static str, first: u64, got: u64) -> Result<(), ChunkError> {
    if first == got {
        Ok(())
    } else {
        Err(ChunkError::FrameChanged { index, total: frame.total, field, first, got })
    }
}

/// Rebuilds a payload from a whole chunk sequence (see [`Assembler`]).
pub fn assemble<'a>(chunks: impl IntoIterator<Item = &'a Chunk>, max_bytes: u64) -> Result<Bytes, ChunkError> {
    let mut assembler = Assembler::new(max_bytes);
    for chunk in chunks {
        assembler.push(chunk)?;
    }
    assembler.finish()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{big_payload, payload};
    use super::super::{split, split_bytes, DEFAULT_CHUNK_BYTES};
    use super::*;

    const MIB: u64 = 1 << 20;

    fn chunks(len: usize, chunk_bytes: usize) -> Vec<Chunk> {
        split(&payload(len), chunk_bytes).collect()
    }

    fn push_all(assembler: &mut Assembler, chunks: &[Chunk]) -> Result<(), ChunkError> {
        chunks.iter().try_for_each(|chunk| assembler.push(chunk))
    }

    #[test]
    fn a_payload_above_the_limit_is_refused_at_its_first_chunk() {
        let first = split_bytes(big_payload().clone(), DEFAULT_CHUNK_BYTES).next().unwrap();
        let err = Assembler::new(64 * MIB).push(&first).unwrap_err();
        assert_eq!(err, ChunkError::TooLarge { total_bytes: 100 * MIB, max_bytes: 64 * MIB });
        assert_eq!(err.to_string(), "payload is 100.0 MiB, above the 64.0 MiB limit");
    }

    #[test]
    fn a_corrupted_chunk_is_refused_with_its_position() {
        let mut chunks = chunks(7_000, 1_000);
        let mut data = chunks[3].data.to_vec();
        data[10] ^= 0x40;
        chunks[3].data = Bytes::from(data);
        let mut assembler = Assembler::new(MIB);
        let err = push_all(&mut assembler, &chunks).unwrap_err();
        assert!(matches!(err, ChunkError::CrcMismatch { index: 3, total: 7, .. }), "{err:?}");
        assert!(err.to_string().starts_with("chunk 3 of 7: crc32 mismatch (declared 0x"), "{err}");
    }

    #[test]
    fn a_skipped_chunk_is_refused_as_out_of_order() {
        let chunks = chunks(4_000, 1_000);
        let mut assembler = Assembler::new(MIB);
        assembler.push(&chunks[0]).unwrap();
        let err = assembler.push(&chunks[2]).unwrap_err();
        assert_eq!(err.to_string(), "chunk 2 of 4 arrived out of order (chunk 1 was expected)");
        let mut first_missing = Assembler::new(MIB);
        let err = first_missing.push(&chunks[1]).unwrap_err();
        assert_eq!(err, ChunkError::OutOfOrder { index: 1, total: 4, expected: 0 });
    }

    #[test]
    fn a_repeated_chunk_is_refused_as_a_duplicate() {
        let chunks = chunks(4_000, 1_000);
        let mut assembler = Assembler::new(MIB);
        push_all(&mut assembler, &chunks[..2]).unwrap();
        let err = assembler.push(&chunks[1]).unwrap_err();
        assert_eq!(err.to_string(), "chunk 1 of 4 arrived twice (chunk 2 was expected)");
    }

    #[test]
    fn a_chunk_count_that_changes_mid_stream_is_refused() {
        let mut chunks = chunks(4_000, 1_000);
        chunks[2].total = 5;
        let err = push_all(&mut Assembler::new(MIB), &chunks).unwrap_err();
        assert_eq!(err.to_string(), "chunk 2 of 4: total changed from 4 to 5 mid-stream");
    }

    #[test]
    fn a_payload_size_that_changes_mid_stream_is_refused() {
        let mut chunks = chunks(4_000, 1_000);
        chunks[1].total_bytes = 3_999;
        let err = push_all(&mut Assembler::new(MIB), &chunks).unwrap_err();
        assert_eq!(err.to_string(), "chunk 1 of 4: total_bytes changed from 4000 to 3999 mid-stream");
    }

    #[test]
    fn chunks_carrying_more_than_the_declared_size_are_refused() {
        // A sender that understates total_bytes cannot slip more than max_bytes through.
        let chunks: Vec<Chunk> =
            chunks(4_000, 1_000).into_iter().map(|c| Chunk::new(c.index, c.total, 2_500, c.data)).collect();
        let err = push_all(&mut Assembler::new(3_000), &chunks).unwrap_err();
        assert_eq!(err, ChunkError::Overrun { index: 2, total: 4, received: 3_000, total_bytes: 2_500 });
        assert_eq!(err.to_string(), "chunk 2 of 4: 3000 bytes received, more than the 2500 declared");
    }

    #[test]
    fn a_stream_whose_chunks_fall_short_of_the_declared_size_is_refused() {
        let chunks: Vec<Chunk> =
            chunks(4_000, 1_000).into_iter().map(|c| Chunk::new(c.index, c.total, 4_096, c.data)).collect();
        let err = push_all(&mut Assembler::new(MIB), &chunks).unwrap_err();
        assert_eq!(err.to_string(), "the stream carried 4000 bytes, 4096 were declared");
    }

    #[test]
    fn a_truncated_stream_is_refused_at_the_end() {
        let chunks = chunks(4_000, 1_000);
        let mut assembler = Assembler::new(MIB);
        push_all(&mut assembler, &chunks[..3]).unwrap();
        assert!(!assembler.is_complete());
        let err = assembler.finish().unwrap_err();
        assert_eq!(err.to_string(), "the stream ended after 3 of 4 chunks");
        assert_eq!(Assembler::new(MIB).finish().unwrap_err(), ChunkError::Empty);
    }

    #[test]
    fn chunks_past_the_end_are_refused() {
        let chunks = chunks(2_000, 1_000);
        let mut assembler = Assembler::new(MIB);
        push_all(&mut assembler, &chunks).unwrap();
        let extra = Chunk::new(2, 2, 2_000, Bytes::new());
        assert_eq!(assembler.push(&extra).unwrap_err().to_string(), "chunk 2 is past the end of a stream of 2 chunks");
    }

    #[test]
    fn impossible_frames_are_refused_at_the_first_chunk() {
        let none = Chunk::new(0, 0, 0, Bytes::new());
        assert_eq!(Assembler::new(MIB).push(&none).unwrap_err(), ChunkError::NoChunks);
        let many = Chunk::new(0, 1_000_000, 10, Bytes::from_static(b"x"));
        let err = Assembler::new(MIB).push(&many).unwrap_err();
        assert_eq!(err.to_string(), "the stream declares 1000000 chunks for a payload of 10 B");
    }

    #[test]
    fn a_refused_chunk_changes_nothing() {
        let chunks = chunks(3_000, 1_000);
        let mut assembler = Assembler::new(MIB);
        assembler.push(&chunks[0]).unwrap();
        let mut corrupt = chunks[1].clone();
        corrupt.crc32 ^= 1;
        assert!(assembler.push(&corrupt).is_err());
        assert!(assembler.push(&chunks[2]).is_err());
        assert_eq!(assembler.received_bytes(), 1_000);
        push_all(&mut assembler, &chunks[1..]).unwrap();
        assert_eq!(assembler.finish().unwrap(), payload(3_000));
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(Size(512).to_string(), "512 B");
        assert_eq!(Size(12 * 1024 + 512).to_string(), "12.5 KiB");
        assert_eq!(Size(80 * MIB).to_string(), "80.0 MiB");
        assert_eq!(Size(5 << 30).to_string(), "5.0 GiB");
    }
}
