//! The key and tag index: L1 keys in order (for prefixes and patterns) and by tag, so that an
//! invalidation touches only the entries it removes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// See the module docs. It may hold keys the L1 no longer has (they are dropped lazily, see
/// `TieredCache::index`), never the reverse.
#[derive(Default)]
pub(super) struct Index {
    keys: BTreeSet<Arc<str>>,
    tags: HashMap<Arc<str>, HashSet<Arc<str>>>,
    key_tags: HashMap<Arc<str>, Arc<[Arc<str>]>>,
}

impl Index {
    /// Records `key` with exactly `tags` (replacing the tags it had).
    pub(super) fn record(&mut self, key: &Arc<str>, tags: &Arc<[Arc<str>]>) {
        if !tags.is_empty() || self.key_tags.contains_key(key) {
            self.forget(key);
            for t in tags.iter() {
                self.tags
                    .entry(Arc::clone(t))
                    .or_default()
                    .insert(Arc::clone(key));
            }
            if !tags.is_empty() {
                self.key_tags.insert(Arc::clone(key), Arc::clone(tags));
            }
        }
        self.keys.insert(Arc::clone(key));
    }

    pub(super) fn forget(&mut self, key: &str) {
        self.keys.remove(key);
        if let Some(tags) = self.key_tags.remove(key) {
            for t in tags.iter() {
                if let Some(set) = self.tags.get_mut(t) {
                    set.remove(key);
                    if set.is_empty() {
                        self.tags.remove(t);
                    }
                }
            }
        }
    }

    /// The keys starting with `prefix`.
    pub(super) fn prefixed(&self, prefix: &str) -> Vec<Arc<str>> {
        self.keys
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Takes the keys carrying `tag` out of the tag's set.
    pub(super) fn take_tag(&mut self, tag: &str) -> Vec<Arc<str>> {
        self.tags
            .remove(tag)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    }
}
