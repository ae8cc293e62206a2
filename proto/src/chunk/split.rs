//! A payload → its chunks: how many, and the chunks themselves (copied or
//! sharing the payload's buffer).

use bytes::Bytes;

use super::{Chunk, MAX_CHUNK_BYTES};

/// The number of chunks a payload of `len` bytes is cut into.
///
/// # Panics
/// If `chunk_bytes` is 0 or above [`MAX_CHUNK_BYTES`], or the count exceeds `u32::MAX`.
pub fn chunk_count(len: usize, chunk_bytes: usize) -> u32 {
    assert!(
        (1..=MAX_CHUNK_BYTES).contains(&chunk_bytes),
        "chunk_bytes is {chunk_bytes}, outside 1..={MAX_CHUNK_BYTES}"
    );
    let count = len.div_ceil(chunk_bytes).max(1);
    u32::try_from(count).unwrap_or_else(|_| panic!("{len} bytes in chunks of {chunk_bytes} is over u32::MAX chunks"))
}

/// Cuts `payload` into chunks of `chunk_bytes` (the last one shorter), copying
/// each slice. An empty payload gives one empty chunk.
///
/// # Panics
/// As [`chunk_count`].
pub fn split(payload: &[u8], chunk_bytes: usize) -> impl ExactSizeIterator<Item = Chunk> + '_ {
    let total = chunk_count(payload.len(), chunk_bytes);
    (0..total).map(move |index| {
        let range = slice_range(index, chunk_bytes, payload.len());
        Chunk::new(index, total, payload.len() as u64, Bytes::copy_from_slice(&payload[range]))
    })
}

/// As [`split`], without copying: each chunk's data shares `payload`'s buffer,
/// and the iterator owns it (so a server can stream one snapshot to many
/// workers).
///
/// # Panics
/// As [`chunk_count`].
pub fn split_bytes(payload: Bytes, chunk_bytes: usize) -> impl ExactSizeIterator<Item = Chunk> + Send + 'static {
    let total = chunk_count(payload.len(), chunk_bytes);
    (0..total).map(move |index| {
        let range = slice_range(index, chunk_bytes, payload.len());
        Chunk::new(index, total, payload.len() as u64, payload.slice(range))
    })
}

fn slice_range(index: u32, chunk_bytes: usize, len: usize) -> std::ops::Range<usize> {
    let start = (index as usize * chunk_bytes).min(len);
    start..(start + chunk_bytes).min(len)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testing::{big_payload, payload};
    use super::super::{assemble, Assembler, DEFAULT_CHUNK_BYTES};
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn an_empty_payload_is_one_empty_chunk_and_comes_back_empty() {
        let chunks: Vec<Chunk> = split(&[], 4).collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!((chunks[0].index, chunks[0].total, chunks[0].total_bytes), (0, 1, 0));
        assert!(chunks[0].data.is_empty() && chunks[0].is_last());
        assert_eq!(assemble(&chunks, 0).unwrap(), Bytes::new());
    }

    #[test]
    fn one_byte_comes_back_whole() {
        let chunks: Vec<Chunk> = split(&[42], DEFAULT_CHUNK_BYTES).collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(assemble(&chunks, 1).unwrap(), Bytes::from_static(&[42]));
    }

    #[test]
    fn a_payload_of_exactly_one_chunk_is_one_chunk() {
        let data = payload(1024);
        let chunks: Vec<Chunk> = split(&data, 1024).collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].crc32, crc32fast::hash(&data));
        assert_eq!(assemble(&chunks, 1024).unwrap(), data);
    }

    #[test]
    fn many_chunks_come_back_in_order_and_only_the_last_is_short() {
        let data = payload(10_000);
        let chunks: Vec<Chunk> = split(&data, 3_000).collect();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.data.len()).collect();
        assert_eq!(sizes, vec![3_000, 3_000, 3_000, 1_000]);
        assert!(chunks.iter().all(|c| c.total == 4 && c.total_bytes == 10_000));
        assert_eq!(assemble(&chunks, 10_000).unwrap(), data);
        let exact: Vec<Chunk> = split(&data, 2_500).collect();
        assert_eq!(exact.len(), 4);
        assert_eq!(assemble(&exact, 10_000).unwrap(), data);
    }

    #[test]
    fn split_bytes_shares_the_buffer_and_matches_split() {
        let data = payload(5_000);
        let shared = Bytes::from(data.clone());
        let zero_copy: Vec<Chunk> = split_bytes(shared.clone(), 1_024).collect();
        assert_eq!(zero_copy, split(&data, 1_024).collect::<Vec<_>>());
        assert_eq!(zero_copy[1].data.as_ptr(), shared[1_024..].as_ptr());
    }

    #[test]
    fn a_100_mib_payload_above_64_mib_travels_in_chunks_and_comes_back_whole() {
        let big = big_payload();
        let chunks = split_bytes(big.clone(), DEFAULT_CHUNK_BYTES);
        assert_eq!(chunks.len(), 100);
        let mut assembler = Assembler::new(128 * MIB);
        for chunk in chunks {
            assert!(chunk.data.len() <= DEFAULT_CHUNK_BYTES);
            assembler.push(&chunk).unwrap();
        }
        assert!(assembler.is_complete());
        assert_eq!(assembler.received_bytes(), 100 * MIB);
        assert!(assembler.finish().unwrap() == big);
    }

    #[test]
    #[should_panic(expected = "chunk_bytes is 0")]
    fn a_chunk_size_of_zero_is_a_programming_error() {
        let _ = split(b"abc", 0);
    }

    proptest! {
        #[test]
        fn any_payload_comes_back_whole_whatever_the_chunk_size(
            len in 0usize..5_000,
            chunk_bytes in 1usize..700,
        ) {
            let data = payload(len);
            let chunks: Vec<Chunk> = split(&data, chunk_bytes).collect();
            prop_assert_eq!(chunks.len(), len.div_ceil(chunk_bytes).max(1));
            prop_assert!(chunks.iter().rev().skip(1).all(|c| c.data.len() == chunk_bytes));
            prop_assert_eq!(assemble(&chunks, len as u64).unwrap(), data);
        }
    }
}
