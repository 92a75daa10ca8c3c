//! The write-behind buffer of a `DiskTier`: writes wait here, the latest per key, until one
//! transaction commits a whole batch of them, so that a write does not pay a commit.
//!
//! A write lands in `pending`, an ordered map from key to the latest operation on it (a value,
//! or a removal), and returns. A batch is committed by the background writer (`writer.rs`) or
//! by a caller that needs the store up to date (a removal, a flush, a writer that finds the
//! buffer full): under the `turn` lock, `begin` moves `pending` into `applying`, the batch is
//! written in one transaction, and `end` drops `applying` (or, if the commit failed, puts its
//! operations back under the newer ones in `pending`). Readers look in `pending`, then in
//! `applying`, then in the store; an operation leaves the buffer only after its commit, so a
//! read never sees a value older than the last write or removal of its key.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::Error;

/// How the disk tier's writes wait to be committed in batches: a write returns once it is in
/// an in-memory buffer, and a background thread commits the buffer in one transaction per
/// batch. Reads, removals and [`flush`](crate::DiskTier::flush) see every buffered write.
///
/// A batch is committed once the buffer holds half its bound (entries or bytes) or its oldest
/// write has waited [`delay`](Self::delay). A writer that finds the buffer full commits it
/// itself (so memory stays bounded: twice the bound at most, counting the batch being
/// committed). See [`Durability`](crate::Durability) for what a crash may lose.
///
/// ```
/// use mpm_cache::{DiskTier, WriteBehind};
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// let tier: DiskTier<String> = DiskTier::builder(dir.path())
///     .write_behind(
///         WriteBehind::default()
///             .max_entries(NonZeroUsize::new(256).unwrap())
///             .delay(Duration::from_millis(2)),
///     )
///     .open()?;
/// tier.put("agent:1", &"profile".to_owned(), None, &[])?; // buffered
/// assert_eq!(tier.get("agent:1")?.as_deref(), Some("profile")); // read from the buffer
/// # Ok::<(), mpm_cache::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBehind {
    /// 0: off.
    max_entries: usize,
    max_bytes: usize,
    delay: Duration,
}

impl Default for WriteBehind {
    /// 1,024 entries, 8 MiB, 5 ms.
    fn default() -> Self {
        Self {
            max_entries: 1024,
            max_bytes: 8 << 20,
            delay: Duration::from_millis(5),
        }
    }
}

impl WriteBehind {
    /// No buffer: every write commits one transaction before it returns (no background
    /// thread).
    pub fn off() -> Self {
        Self {
            max_entries: 0,
            ..Self::default()
        }
    }

    /// The most writes (distinct keys) the buffer holds (default 1,024).
    pub fn max_entries(mut self, n: NonZeroUsize) -> Self {
        self.max_entries = n.get();
        self
    }

    /// The most bytes (keys and encoded values) the buffer holds (default 8 MiB). One write
    /// larger than that still goes through: it is committed at once.
    pub fn max_bytes(mut self, n: NonZeroUsize) -> Self {
        self.max_bytes = n.get();
        self
    }

    /// How long a write may wait for others to join its batch (default 5 ms).
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Whether writes are buffered at all.
    pub fn is_on(&self) -> bool {
        self.max_entries > 0
    }
}

/// A buffered value: already encoded, with its expiry and tags.
#[derive(Debug)]
pub(super) struct Write {
    /// `postcard(value)`: the value part of a record.
    pub(super) value: Vec<u8>,
    /// See [`crate::record::Header::expires_ms`].
    pub(super) expires_ms: u64,
    pub(super) tags: Vec<String>,
    /// When it was buffered, in the buffer's count of writes: a batch is written in this
    /// order, so that the store's write order (and eviction) follows the callers'.
    pub(super) order: u64,
}

/// The latest operation on a key.
#[derive(Clone, Debug)]
pub(super) enum Op {
    Put(Arc<Write>),
    Remove,
}

impl Write {
    /// What the write holds in memory, roughly (its key aside).
    fn size(&self) -> usize {
        self.value.len() + self.tags.iter().map(String::len).sum::<usize>() + 64
    }
}

impl Op {
    /// What the operation holds in memory, roughly (the key included).
    fn size(&self, key: &str) -> usize {
        key.len()
            + match self {
                Op::Put(w) => w.size(),
                Op::Remove => 16,
            }
    }
}

/// Operations by key, in key order.
pub(super) type Batch = BTreeMap<String, Op>;

/// Whether a write was buffered.
pub(super) enum Admit {
    /// In the buffer: the call may return.
    Buffered,
    /// Not buffered (the buffer is off or full, the tier is failing, or the write is due to
    /// be durable): the caller commits it with the buffer, now.
    Direct(Write),
}

struct State {
    pending: Batch,
    pending_bytes: usize,
    /// When the oldest write in `pending` arrived.
    oldest: Option<Instant>,
    /// The batch being committed; its operations stay visible until the commit ends.
    applying: Arc<Batch>,
    /// Writes ever buffered.
    writes: u64,
    /// Writes accepted since the last durable commit (committed or still buffered).
    unflushed: u64,
    /// A failure of the background writer that no caller has been told of yet.
    failure: Option<Error>,
    /// Set when a commit fails (or failures are injected), cleared when one succeeds: while
    /// set, writes are committed by their callers, who see the errors, and the background
    /// writer waits.
    failing: bool,
    stop: bool,
}

/// The buffer and the background writer's signal. See the module docs.
pub(super) struct Buffer {
    limits: WriteBehind,
    state: Mutex<State>,
    wake: Condvar,
    /// Held while a batch is committed: batches commit one at a time, in order.
    turn: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a handful of map operations: the data stays consistent if a
    // holder panicked.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Buffer {
    pub(super) fn new(limits: WriteBehind) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                pending: Batch::new(),
                pending_bytes: 0,
                oldest: None,
                applying: Arc::default(),
                writes: 0,
                unflushed: 0,
                failure: None,
                failing: false,
                stop: false,
            }),
            wake: Condvar::new(),
            turn: Mutex::new(()),
        }
    }

    pub(super) fn is_on(&self) -> bool {
        self.limits.is_on()
    }

    /// The latest buffered operation on `key`.
    pub(super) fn lookup_one(&self, key: &str) -> Option<Op> {
        let st = lock(&self.state);
        st.pending
            .get(key)
            .or_else(|| st.applying.get(key))
            .cloned()
    }

    /// The latest buffered operation on each of `keys`.
    pub(super) fn lookup(&self, keys: &[&str]) -> Vec<Option<Op>> {
        let st = lock(&self.state);
        if st.pending.is_empty() && st.applying.is_empty() {
            return vec![None; keys.len()];
        }
        keys.iter()
            .map(|k| st.pending.get(*k).or_else(|| st.applying.get(*k)).cloned())
            .collect()
    }

    /// How many operations are buffered (or being committed).
    pub(super) fn len(&self) -> usize {
        let st = lock(&self.state);
        st.pending.len() + st.applying.len()
    }

    /// Every buffered operation, the newest per key.
    pub(super) fn contents(&self) -> Batch {
        let st = lock(&self.state);
        let mut all = (*st.applying).clone();
        all.extend(st.pending.iter().map(|(k, op)| (k.clone(), op.clone())));
        all
    }

    /// Buffers `write` for `key`, unless it must be committed now (see [`Admit::Direct`]).
    /// `auto_flush` is the count of unflushed writes at which one is made durable.
    pub(super) fn admit(&self, key: &str, mut write: Write, auto_flush: u64) -> Admit {
        let size = key.len() + write.size();
        let mut st = lock(&self.state);
        let full = st.pending.len() >= self.limits.max_entries
            || st.pending_bytes + size > self.limits.max_bytes;
        if !self.is_on() || full || st.failing || st.unflushed + 1 >= auto_flush {
            return Admit::Direct(write);
        }
        let was_empty = st.pending.is_empty();
        st.writes += 1;
        write.order = st.writes;
        if let Some(old) = st.pending.insert(key.to_owned(), Op::Put(Arc::new(write))) {
            st.pending_bytes -= old.size(key);
        }
        st.pending_bytes += size;
        st.unflushed += 1;
        if was_empty {
            st.oldest = Some(Instant::now());
        }
        let wake = was_empty || self.due(&st);
        drop(st);
        if wake {
            self.wake.notify_one();
        }
        Admit::Buffered
    }

    /// Buffers the removal of a damaged entry, unless a newer operation on `key` is buffered.
    pub(super) fn remove_damaged(&self, key: &str) {
        let mut st = lock(&self.state);
        if st.pending.contains_key(key) || st.applying.contains_key(key) {
            return;
        }
        let was_empty = st.pending.is_empty();
        st.pending_bytes += Op::Remove.size(key);
        st.pending.insert(key.to_owned(), Op::Remove);
        if was_empty {
            st.oldest = Some(Instant::now());
            drop(st);
            self.wake.notify_one();
        }
    }

    /// Whether `pending` is worth a batch now (by size; the delay is the writer's to watch).
    fn due(&self, st: &State) -> bool {
        st.pending.len() * 2 >= self.limits.max_entries
            || st.pending_bytes * 2 >= self.limits.max_bytes
    }

    /// Waits until a batch is due (or the buffer is stopped: then `false`). Called by the
    /// background writer only.
    pub(super) fn wait_for_batch(&self) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.stop {
                return false;
            }
            if st.pending.is_empty() || st.failing {
                st = self
                    .wake
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            let waited = st.oldest.map_or(Duration::ZERO, |t| t.elapsed());
            if self.due(&st) || waited >= self.limits.delay {
                return true;
            }
            st = self
                .wake
                .wait_timeout(st, self.limits.delay - waited)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Stops the background writer (it returns from [`wait_for_batch`](Self::wait_for_batch)).
    pub(super) fn stop(&self) {
        lock(&self.state).stop = true;
        self.wake.notify_all();
    }

    /// Marks the tier failing: writes are committed by their callers until a commit
    /// succeeds.
    pub(super) fn set_failing(&self) {
        lock(&self.state).failing = true;
    }

    /// Whether a commit would bring the store up to date: something is buffered (or being
    /// committed) and the tier is not failing.
    pub(super) fn needs_catch_up(&self) -> bool {
        let st = lock(&self.state);
        !st.failing && (!st.pending.is_empty() || !st.applying.is_empty())
    }

    /// Takes the background writer's failure that no caller was told of, if any.
    pub(super) fn take_failure(&self) -> Option<Error> {
        lock(&self.state).failure.take()
    }

    /// Whether any write is buffered (or being committed), or was committed but not made
    /// durable.
    pub(super) fn owes_anything(&self) -> bool {
        let st = lock(&self.state);
        !st.pending.is_empty() || !st.applying.is_empty() || st.unflushed > 0
    }

    /// Takes the turn to commit: one batch at a time.
    pub(super) fn turn(&self) -> MutexGuard<'_, ()> {
        lock(&self.turn)
    }

    /// Starts a batch (the caller holds the turn): moves `pending` into `applying` and
    /// returns it, and whether the commit is due to be durable: when the unflushed writes,
    /// counting `extra` written beside the batch, reach `durable_at`.
    pub(super) fn begin(&self, extra: u64, durable_at: u64) -> (Arc<Batch>, bool) {
        let mut st = lock(&self.state);
        debug_assert!(
            st.applying.is_empty(),
            "a batch began before the last ended"
        );
        let batch = Arc::new(std::mem::take(&mut st.pending));
        st.pending_bytes = 0;
        st.oldest = None;
        st.applying = Arc::clone(&batch);
        let durable = st.unflushed + extra >= durable_at;
        (batch, durable)
    }

    /// Ends the batch begun last: committed (`durable` or not, with `extra` writes beside
    /// it), or failed, when its operations go back under the newer ones in `pending`, and
    /// `failure` (a background writer's) is kept for the next caller.
    pub(super) fn end(&self, committed: bool, durable: bool, extra: u64, failure: Option<Error>) {
        let mut st = lock(&self.state);
        let batch = std::mem::take(&mut st.applying);
        if committed {
            st.failing = false;
            if durable {
                st.unflushed = st.pending.len() as u64;
            } else {
                st.unflushed += extra;
            }
            return;
        }
        st.failing = true;
        if failure.is_some() {
            st.failure = failure;
        }
        let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
        for (key, op) in batch {
            if !st.pending.contains_key(&key) {
                st.pending_bytes += op.size(&key);
                st.pending.insert(key, op);
            }
        }
        if !st.pending.is_empty() && st.oldest.is_none() {
            st.oldest = Some(Instant::now());
        }
    }
}
