//! Payloads the chunk tests share.

use std::sync::OnceLock;

use bytes::Bytes;

/// Deterministic bytes that differ from chunk to chunk.
pub(super) fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// One 100 MiB payload shared by the tests that need a big one.
pub(super) fn big_payload() -> &'static Bytes {
    static BIG: OnceLock<Bytes> = OnceLock::new();
    BIG.get_or_init(|| Bytes::from(payload(100 << 20)))
}
