//! How one entry is stored: a checksum over the key and the body, then the body (a header with
//! the expiry, the write sequence and the tags, then the value), both postcard-encoded.
//!
//! ```text
//! crc32(key ++ body) (4 bytes, little endian) ++ body
//! body = postcard(Header) ++ postcard(value)
//! ```
//!
//! The checksum covers the key, so a record found under another key (a damaged key byte, a
//! damaged page that points the lookup elsewhere) fails the check instead of answering for it.

use serde::{Deserialize, Serialize};

/// What the store keeps beside the value.
#[derive(Serialize, Deserialize)]
pub(super) struct Header {
    /// Milliseconds since the Unix epoch; 0 means never.
    pub(super) expires_ms: u64,
    /// The write sequence number: the entry's row in the order table.
    pub(super) seq: u64,
    pub(super) tags: Vec<String>,
}

fn checksum(key: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(key);
    h.update(body);
    h.finalize()
}

/// Encodes a record for `key`; the error is the serializer's message.
pub(super) fn encode<V: Serialize>(
    key: &str,
    header: &Header,
    value: &V,
) -> Result<Vec<u8>, String> {
    let mut record = vec![0u8; 4];
    record = postcard::to_io(header, record).map_err(|e| format!("header: {e}"))?;
    record = postcard::to_io(value, record).map_err(|e| format!("value: {e}"))?;
    let crc = checksum(key.as_bytes(), &record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    Ok(record)
}

/// Checks a record stored under `key` and splits off its header: `None` when the checksum, which
/// covers the key, or the header is wrong.
pub(super) fn decode_header<'r>(key: &[u8], record: &'r [u8]) -> Option<(Header, &'r [u8])> {
    let (crc, body) = record.split_at_checked(4)?;
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    if checksum(key, body) != crc {
        return None;
    }
    postcard::take_from_bytes::<Header>(body).ok()
}

/// Decodes a whole record stored under `key`: `None` when anything is wrong.
pub(super) fn decode<V: serde::de::DeserializeOwned>(
    key: &[u8],
    record: &[u8],
) -> Option<(Header, V)> {
    let (header, rest) = decode_header(key, record)?;
    let value = postcard::from_bytes::<V>(rest).ok()?;
    Some((header, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            expires_ms: 7,
            seq: 3,
            tags: vec!["t".into()],
        }
    }

    #[test]
    fn a_record_reads_back_under_its_own_key_only() {
        let r = encode("user:1", &header(), &"profile".to_owned()).unwrap();
        let (h, v) = decode::<String>(b"user:1", &r).unwrap();
        assert_eq!(
            (h.expires_ms, h.seq, h.tags, v.as_str()),
            (7, 3, vec!["t".into()], "profile")
        );
        assert!(
            decode::<String>(b"user:3", &r).is_none(),
            "another key's record"
        );
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let r = encode("k", &header(), &vec![1u8; 40]).unwrap();
        for bit in 0..r.len() * 8 {
            let mut bad = r.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode::<Vec<u8>>(b"k", &bad).is_none(), "bit {bit}");
        }
        for cut in 0..r.len() {
            assert!(decode::<Vec<u8>>(b"k", &r[..cut]).is_none(), "cut at {cut}");
        }
    }
}
