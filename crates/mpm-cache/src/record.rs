//! The entry codec: how one cache entry is stored as bytes, with a checksum that covers its key.
//!
//! [`DiskTier`](crate::DiskTier) stores every entry this way, and any other [`Tier`] (a shared
//! network cache, say) can use it to store byte-identical entries, with the same guarantee: a
//! record read back under another key than the one it was written for, or damaged in any byte,
//! fails to decode instead of answering.
//!
//! ```text
//! record = crc32(key ++ body) (4 bytes, little endian) ++ body
//! body   = postcard(Header) ++ postcard(value)
//! Header = { expires_ms: u64, seq: u64, tags: [string] }   (postcard: varints, length-prefixed)
//! ```
//!
//! The header carries the expiry (milliseconds since the Unix epoch, wall-clock time, so it
//! survives restarts and is the same on every host; 0 means never), a write sequence number
//! (the disk tier's row in its write order; another tier may put 0 or its own counter), and
//! the entry's tags.
//!
//! ```
//! use mpm_cache::record::{self, Header, RecordError};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let tags: [Arc<str>; 1] = ["team:core".into()];
//! let header = Header::new(Some(Duration::from_secs(60)), 0, &tags);
//! let bytes = record::encode("agent:1", &header, &"profile".to_owned())?;
//!
//! // Read back as a tier would: the value, the time to live left, the tags.
//! let entry = record::decode_entry::<String>("agent:1", &bytes, record::now_ms())?.unwrap();
//! assert_eq!(entry.value, "profile");
//! assert!(entry.ttl.is_some_and(|t| t <= Duration::from_secs(60)));
//! assert_eq!(&*entry.tags, &tags);
//!
//! // The checksum covers the key: the same bytes under another key are refused.
//! assert!(matches!(
//!     record::decode::<String>("agent:2", &bytes),
//!     Err(RecordError::Checksum { .. })
//! ));
//! # Ok::<(), RecordError>(())
//! ```
//!
//! [`Tier`]: crate::Tier

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::tier::TierEntry;

/// Bytes before the body: the CRC32.
const CHECKSUM_LEN: usize = 4;

/// What a record keeps beside the value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// When the entry expires, in milliseconds since the Unix epoch; 0 means never.
    pub expires_ms: u64,
    /// A write sequence number (the disk tier's row in its write order; 0 when unused).
    pub seq: u64,
    /// The entry's tags.
    pub tags: Vec<String>,
}

impl Header {
    /// A header for an entry written now that lives for `ttl` (`None`: never expires).
    pub fn new(ttl: Option<Duration>, seq: u64, tags: &[Arc<str>]) -> Self {
        Self {
            expires_ms: expiry_ms(ttl, now_ms()),
            seq,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// The time to live left at `now_ms` (milliseconds since the Unix epoch): `Some(None)` for
    /// an entry that never expires, `None` for one that has expired.
    pub fn ttl_at(&self, now_ms: u64) -> Option<Option<Duration>> {
        match self.expires_ms {
            0 => Some(None),
            at if now_ms > at => None,
            at => Some(Some(Duration::from_millis(at - now_ms))),
        }
    }
}

/// Why a record could not be encoded or decoded. Any damage to a record's bytes, and a record
/// read under another key, is one of these: never a panic, never a wrong value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record is shorter than its checksum.
    #[error("record of {len} bytes is too short to hold its checksum")]
    TooShort {
        /// The record's length.
        len: usize,
    },
    /// The checksum does not match: the record is damaged or belongs to another key.
    #[error("record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The checksum stored in the record.
        stored: u32,
        /// The checksum of the key and the body as read.
        computed: u32,
    },
    /// The checksum matched but a part did not decode (a record of another format, or a value
    /// of another type).
    #[error("record {part} does not decode: {message}")]
    Decode {
        /// `"header"` or `"value"`.
        part: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The value (or header) could not be serialized.
    #[error("record {part} does not encode: {message}")]
    Encode {
        /// `"header"` or `"value"`.
        part: &'static str,
        /// The serializer's message.
        message: String,
    },
}

/// Milliseconds since the Unix epoch by the system clock (0 before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The `expires_ms` of an entry written at `now_ms` that lives for `ttl`: 0 for `None`, and at
/// least 1 otherwise (0 would mean never).
pub fn expiry_ms(ttl: Option<Duration>, now_ms: u64) -> u64 {
    ttl.map_or(0, |t| {
        now_ms
            .saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
            .max(1)
    })
}

fn checksum(key: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(key);
    h.update(body);
    h.finalize()
}

/// Encodes the record of `value` for `key`.
pub fn encode<V: Serialize + ?Sized>(
    key: &str,
    header: &Header,
    value: &V,
) -> Result<Vec<u8>, RecordError> {
    let encode = |part| {
        move |e: postcard::Error| RecordError::Encode {
            part,
            message: e.to_string(),
        }
    };
    let mut record = vec![0u8; CHECKSUM_LEN];
    record = postcard::to_io(header, record).map_err(encode("header"))?;
    record = postcard::to_io(value, record).map_err(encode("value"))?;
    let crc = checksum(key.as_bytes(), &record[CHECKSUM_LEN..]);
    record[..CHECKSUM_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(record)
}

/// Encodes the record for `key` of a value already encoded (`postcard(value)`, as
/// `postcard::to_allocvec` gives it): byte for byte what [`encode`] makes of the value.
#[cfg(feature = "disk")]
pub(crate) fn encode_with_value_bytes(
    key: &str,
    header: &Header,
    value: &[u8],
) -> Result<Vec<u8>, RecordError> {
    let mut record = vec![0u8; CHECKSUM_LEN];
    record = postcard::to_io(header, record).map_err(|e| RecordError::Encode {
        part: "header",
        message: e.to_string(),
    })?;
    record.extend_from_slice(value);
    let crc = checksum(key.as_bytes(), &record[CHECKSUM_LEN..]);
    record[..CHECKSUM_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(record)
}

/// Checks a record read under `key` and splits off its header, leaving the encoded value:
/// for a reader that needs only the header (the disk tier, to drop an entry's index rows).
pub fn decode_header<'r>(key: &str, record: &'r [u8]) -> Result<(Header, &'r [u8]), RecordError> {
    let Some((crc, body)) = record.split_first_chunk::<CHECKSUM_LEN>() else {
        return Err(RecordError::TooShort { len: record.len() });
    };
    let stored = u32::from_le_bytes(*crc);
    let computed = checksum(key.as_bytes(), body);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    postcard::take_from_bytes::<Header>(body).map_err(|e| RecordError::Decode {
        part: "header",
        message: e.to_string(),
    })
}

/// Decodes a whole record read under `key`: its header and value.
pub fn decode<V: DeserializeOwned>(key: &str, record: &[u8]) -> Result<(Header, V), RecordError> {
    let (header, rest) = decode_header(key, record)?;
    let value = postcard::from_bytes::<V>(rest).map_err(|e| RecordError::Decode {
        part: "value",
        message: e.to_string(),
    })?;
    Ok((header, value))
}

/// Decodes a record read under `key` into what [`Tier::get`](crate::Tier::get) returns, as seen
/// at `now_ms` (see [`now_ms`]): `Ok(None)` when the entry has expired.
pub fn decode_entry<V: DeserializeOwned>(
    key: &str,
    record: &[u8],
    now_ms: u64,
) -> Result<Option<TierEntry<V>>, RecordError> {
    let (header, value) = decode::<V>(key, record)?;
    Ok(header.ttl_at(now_ms).map(|ttl| TierEntry {
        value,
        ttl,
        tags: tags(header.tags),
    }))
}

/// The tags of a decoded entry; most entries have none, and share one empty list instead of
/// allocating their own.
fn tags(tags: Vec<String>) -> Arc<[Arc<str>]> {
    static NONE: std::sync::LazyLock<Arc<[Arc<str>]>> = std::sync::LazyLock::new(|| Arc::new([]));
    if tags.is_empty() {
        return Arc::clone(&NONE);
    }
    tags.into_iter().map(Arc::from).collect()
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
        let (h, v) = decode::<String>("user:1", &r).unwrap();
        assert_eq!((h, v.as_str()), (header(), "profile"));
        assert!(
            matches!(
                decode::<String>("user:3", &r),
                Err(RecordError::Checksum { .. })
            ),
            "another key's record"
        );
    }

    #[test]
    fn every_single_bit_flip_and_cut_is_an_error() {
        let r = encode("k", &header(), &vec![1u8; 40]).unwrap();
        for bit in 0..r.len() * 8 {
            let mut bad = r.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode::<Vec<u8>>("k", &bad).is_err(), "bit {bit}");
        }
        for cut in 0..CHECKSUM_LEN {
            assert_eq!(
                decode::<Vec<u8>>("k", &r[..cut]),
                Err(RecordError::TooShort { len: cut })
            );
        }
        for cut in CHECKSUM_LEN..r.len() {
            assert!(decode::<Vec<u8>>("k", &r[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[cfg(feature = "disk")]
    #[test]
    fn a_record_of_encoded_value_bytes_is_the_record_of_the_value() {
        let value = ("profile".to_owned(), vec![1u32, 300, 70_000]);
        let bytes = postcard::to_allocvec(&value).unwrap();
        assert_eq!(
            encode_with_value_bytes("k", &header(), &bytes).unwrap(),
            encode("k", &header(), &value).unwrap()
        );
    }

    #[test]
    fn a_value_of_another_type_is_a_decode_error() {
        let r = encode("k", &header(), &vec![0xffu8]).unwrap();
        assert!(matches!(
            decode::<String>("k", &r),
            Err(RecordError::Decode { part: "value", .. })
        ));
    }

    #[test]
    fn time_to_live_is_wall_clock() {
        let never = Header::default();
        assert_eq!(never.ttl_at(u64::MAX), Some(None));
        let h = Header {
            expires_ms: expiry_ms(Some(Duration::from_millis(500)), 1_000),
            ..Header::default()
        };
        assert_eq!(h.ttl_at(1_000), Some(Some(Duration::from_millis(500))));
        assert_eq!(h.ttl_at(1_500), Some(Some(Duration::ZERO)));
        assert_eq!(h.ttl_at(1_501), None);
        assert_eq!(expiry_ms(Some(Duration::ZERO), 0), 1, "0 would mean never");
        let r = encode("k", &h, &1u8).unwrap();
        assert_eq!(decode_entry::<u8>("k", &r, 1_501), Ok(None));
        let e = decode_entry::<u8>("k", &r, 1_100).unwrap().unwrap();
        assert_eq!((e.value, e.ttl), (1, Some(Duration::from_millis(400))));
    }
}
