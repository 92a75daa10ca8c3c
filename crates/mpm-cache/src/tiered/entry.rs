//! How one entry is stored: `EntryOptions` as given, and what the L1 holds for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the L1 holds for a key: the value and the files it depends on (tags live in the index).
#[derive(Clone)]
pub(crate) struct Stored<V> {
    pub(super) value: V,
    pub(super) files: Option<Arc<[FileStamp]>>,
}

impl<V> Stored<V> {
    pub(super) fn value(&self) -> &V {
        &self.value
    }
}

/// The modification time and size of a file when an entry that depends on it was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    path: PathBuf,
    /// `None` when the file did not exist.
    seen: Option<(Option<SystemTime>, u64)>,
}

impl FileStamp {
    pub(super) fn take(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            seen: Self::observe(path),
        }
    }

    fn observe(path: &Path) -> Option<(Option<SystemTime>, u64)> {
        let m = std::fs::metadata(path).ok()?;
        Some((m.modified().ok(), m.len()))
    }

    pub(super) fn fresh(&self) -> bool {
        self.seen.is_some() && Self::observe(&self.path) == self.seen
    }
}

/// How to store one entry: its TTL, tags and file dependencies.
///
/// ```
/// use mpm_cache::EntryOptions;
/// use std::time::Duration;
///
/// let opts = EntryOptions::new()
///     .ttl(Some(Duration::from_secs(60)))
///     .tag("agent:42")
///     .depends_on("/etc/hostname");
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, Default)]
pub struct EntryOptions {
    pub(super) ttl: Option<Option<Duration>>,
    pub(super) tags: Vec<Arc<str>>,
    pub(super) files: Vec<PathBuf>,
    pub(super) pinned: bool,
}

impl EntryOptions {
    /// The cache's default TTL, no tags, no file dependency.
    pub fn new() -> Self {
        Self::default()
    }

    /// This entry's TTL: `Some(d)`, or `None` for never (not the default).
    pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Adds a tag; [`TieredCache::invalidate_tag`](crate::TieredCache::invalidate_tag) removes
    /// every entry carrying it.
    pub fn tag(mut self, tag: impl Into<Arc<str>>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Pins the entry in L1: capacity eviction and `shrink_to` never remove it (TTL and
    /// invalidation still do). Pinned entries count toward the L1's bounds.
    pub fn pinned(mut self) -> Self {
        self.pinned = true;
        self
    }

    /// Makes the entry stale once `path`'s modification time or size changes or the file
    /// disappears. The file is checked (one `stat`) on every lookup of this entry. A file that
    /// does not exist when the entry is stored makes the entry stale at once. Such entries stay
    /// in memory: a file stamp means nothing to another process.
    pub fn depends_on(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push(path.into());
        self
    }
}
