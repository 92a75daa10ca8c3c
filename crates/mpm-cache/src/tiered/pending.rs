//! Removals the L2 has not applied yet (it failed: a full disk, a server down), and the rule
//! that makes an invalidated key never come back: a removal is recorded here *before* the L2
//! is asked to apply it, every L2 read is checked against what is recorded (one atomic load
//! when nothing is), and the record is dropped only once the L2 has applied every removal in
//! it. Later writes and invalidations, and `flush`, try again first.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::lock;
use crate::Error;
use crate::pattern::Pattern;
use crate::tier::Tier;

/// One removal, as the L2 must apply it.
pub(super) enum Removal {
    Key(String),
    Prefix(String),
    Tag(String),
    Pattern(Pattern),
    All,
}

#[derive(Default)]
struct Removals {
    keys: HashSet<String>,
    prefixes: Vec<String>,
    tags: HashSet<String>,
    patterns: Vec<Pattern>,
    all: bool,
}

impl Removals {
    fn add(&mut self, r: Removal) {
        match r {
            Removal::Key(k) => {
                self.keys.insert(k);
            }
            Removal::Prefix(p) => self.prefixes.push(p),
            Removal::Tag(t) => {
                self.tags.insert(t);
            }
            Removal::Pattern(p) => self.patterns.push(p),
            Removal::All => self.all = true,
        }
    }

    fn covers(&self, key: &str, tags: &[std::sync::Arc<str>]) -> bool {
        self.all
            || self.keys.contains(key)
            || self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
            || self.patterns.iter().any(|p| p.matches(key))
            || tags.iter().any(|t| self.tags.contains(t.as_ref()))
    }

    /// Applies every removal to `l2`, dropping each once applied; stops at the first error.
    fn apply<V>(&mut self, l2: &dyn Tier<V>) -> Result<(), Error> {
        if self.all {
            l2.clear()?;
            *self = Self::default();
            return Ok(());
        }
        while let Some(k) = self.keys.iter().next().cloned() {
            l2.remove(&k)?;
            self.keys.remove(&k);
        }
        while let Some(p) = self.prefixes.last() {
            l2.remove_prefix(p)?;
            self.prefixes.pop();
        }
        while let Some(t) = self.tags.iter().next().cloned() {
            l2.remove_tag(&t)?;
            self.tags.remove(&t);
        }
        while let Some(p) = self.patterns.last() {
            l2.remove_matching(p)?;
            self.patterns.pop();
        }
        Ok(())
    }

    fn len(&self) -> usize {
        usize::from(self.all)
            + self.keys.len()
            + self.prefixes.len()
            + self.tags.len()
            + self.patterns.len()
    }

    fn is_empty(&self) -> bool {
        !self.all
            && self.keys.is_empty()
            && self.prefixes.is_empty()
            && self.tags.is_empty()
            && self.patterns.is_empty()
    }
}

/// See the module docs.
#[derive(Default)]
pub(super) struct Pending {
    /// Whether `removals` may hold anything: the read path's only cost when it does not.
    any: AtomicBool,
    /// Bumped (under the lock, before `any` is cleared) each time applied removals are
    /// dropped from the record: a read of the L2 that overlapped such a drop may have read a
    /// value the removal then deleted, which the record no longer masks (see
    /// [`applied`](Self::applied)).
    applied: AtomicU64,
    removals: Mutex<Removals>,
}

impl Pending {
    /// Whether an L2 entry for `key` with `tags` must be treated as removed.
    #[inline]
    pub(super) fn masks(&self, key: &str, tags: &[std::sync::Arc<str>]) -> bool {
        self.any.load(Ordering::Acquire) && lock(&self.removals).covers(key, tags)
    }

    /// Records `removal` and applies everything recorded to `l2`. On an error the removals not
    /// applied stay recorded (and keep masking L2 reads) and the error is returned.
    pub(super) fn remove<V>(&self, l2: &dyn Tier<V>, removal: Removal) -> Result<(), Error> {
        let mut r = lock(&self.removals);
        r.add(removal);
        self.any.store(true, Ordering::Release);
        self.apply_locked(&mut r, l2)
    }

    /// How many times applied removals have left the record. A reader takes this before it
    /// reads the L2 and compares after: when it moved, a removal may have been applied (and
    /// unrecorded) between the read and [`masks`](Self::masks), so the value read must not be
    /// served.
    #[inline]
    pub(super) fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// How many removals are recorded and not yet applied.
    pub(super) fn len(&self) -> usize {
        if !self.any.load(Ordering::Acquire) {
            return 0;
        }
        lock(&self.removals).len()
    }

    /// Applies what is recorded, if anything.
    pub(super) fn retry<V>(&self, l2: &dyn Tier<V>) -> Result<(), Error> {
        if !self.any.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut r = lock(&self.removals);
        self.apply_locked(&mut r, l2)
    }

    fn apply_locked<V>(&self, r: &mut Removals, l2: &dyn Tier<V>) -> Result<(), Error> {
        let before = r.len();
        let applied = r.apply(l2);
        if r.len() != before {
            self.applied.fetch_add(1, Ordering::AcqRel);
        }
        if r.is_empty() {
            self.any.store(false, Ordering::Release);
        }
        applied
    }
}
