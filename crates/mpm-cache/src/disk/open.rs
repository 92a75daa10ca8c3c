//! The tables of one write transaction, opened once for a whole batch of writes and removals,
//! with the running totals (`seq`, `bytes`) read once and written back once.

use redb::{ReadableTable, Table, WriteTransaction};

use super::buffer::Write;
use super::store::Fault;
use super::{ENTRIES, META, ORDER, TAGS, corrupt, number, tag_key};
use crate::Error;
use crate::record::{self, Header};
use crate::stats::DiskStats;

type Bytes = &'static [u8];

/// See the module docs. [`close`](Self::close) writes the totals back.
pub(super) struct Open<'t> {
    entries: Table<'t, Bytes, Bytes>,
    order: Table<'t, Bytes, Bytes>,
    tags: Table<'t, Bytes, Bytes>,
    /// The last write sequence number given.
    seq: u64,
    /// Bytes stored (keys and records).
    bytes: u64,
}

impl<'t> Open<'t> {
    pub(super) fn new(tx: &'t WriteTransaction) -> Result<Self, Fault> {
        let (seq, bytes) = {
            let meta = tx.open_table(META)?;
            let get = |name: &str| -> Result<u64, Fault> {
                let v = meta.get(name.as_bytes())?;
                v.map_or(Ok(0), |v| number(v.value()))
            };
            (get("seq")?, get("bytes")?)
        };
        Ok(Self {
            entries: tx.open_table(ENTRIES)?,
            order: tx.open_table(ORDER)?,
            tags: tx.open_table(TAGS)?,
            seq,
            bytes,
        })
    }

    /// Closes the tables and writes the totals back.
    pub(super) fn close(self, tx: &WriteTransaction) -> Result<(), Fault> {
        let Self {
            entries,
            order,
            tags,
            seq,
            bytes,
        } = self;
        drop((entries, order, tags));
        let mut meta = tx.open_table(META)?;
        meta.insert(b"seq".as_slice(), seq.to_le_bytes().as_slice())?;
        meta.insert(b"bytes".as_slice(), bytes.to_le_bytes().as_slice())?;
        Ok(())
    }

    /// Deletes `key` and its order and tag rows; returns whether it was stored.
    pub(super) fn delete(&mut self, key: &str) -> Result<bool, Fault> {
        let record = {
            let Some(old) = self.entries.remove(key.as_bytes())? else {
                return Ok(false);
            };
            old.value().to_vec()
        };
        self.bytes = self.bytes.saturating_sub((key.len() + record.len()) as u64);
        if let Ok((h, _)) = record::decode_header(key, &record) {
            self.order.remove(h.seq.to_be_bytes().as_slice())?;
            for t in &h.tags {
                self.tags.remove(tag_key(t, key).as_slice())?;
            }
        }
        Ok(true)
    }

    /// Deletes every key in `keys`; returns how many were stored.
    pub(super) fn delete_all(&mut self, keys: &[String]) -> Result<usize, Fault> {
        let mut n = 0;
        for k in keys {
            n += usize::from(self.delete(k)?);
        }
        Ok(n)
    }

    /// Stores the write `w` for `key`, then evicts the oldest writes (never this one) until
    /// the bytes stored are within `max_bytes`, counting them in `stats`.
    pub(super) fn put(
        &mut self,
        key: &str,
        w: &Write,
        max_bytes: u64,
        stats: &DiskStats,
    ) -> Result<(), Fault> {
        self.delete(key)?;
        self.seq += 1;
        let seq = self.seq;
        let header = Header {
            expires_ms: w.expires_ms,
            seq,
            tags: w.tags.clone(),
        };
        let record = record::encode_with_value_bytes(key, &header, &w.value).map_err(|e| {
            Fault::Ours(Error::Serialize {
                key: key.to_owned(),
                message: e.to_string(),
            })
        })?;
        self.entries.insert(key.as_bytes(), record.as_slice())?;
        self.order
            .insert(seq.to_be_bytes().as_slice(), key.as_bytes())?;
        for tag in &w.tags {
            self.tags
                .insert(tag_key(tag, key).as_slice(), [].as_slice())?;
        }
        self.bytes = self.bytes.saturating_add((key.len() + record.len()) as u64);
        while self.bytes > max_bytes {
            let oldest = {
                let first = self.order.first()?;
                first.map(|(s, k)| (s.value().to_vec(), k.value().to_vec()))
            };
            let Some((s, k)) = oldest else { break };
            if s == seq.to_be_bytes() {
                break;
            }
            // An order row without an entry (or with a damaged key) frees nothing; drop the row.
            let freed = match std::str::from_utf8(&k) {
                Ok(k) => self.delete(k)?,
                Err(_) => false,
            };
            if !freed && self.order.remove(s.as_slice())?.is_none() {
                return Err(corrupt("the order table does not shrink"));
            }
            if freed {
                stats.evicted.inc();
            }
        }
        Ok(())
    }
}
