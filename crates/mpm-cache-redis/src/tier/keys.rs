//! Where a namespace's data lives in Redis. Every key starts with the namespace in braces (a
//! Redis Cluster hash tag, so a namespace's keys share a slot and its scripts may touch them
//! all):
//!
//! ```text
//! {ns}:e:<key>   an entry: the record (the entry codec), with the entry's TTL (PX)
//! {ns}:t:<tag>   a tag: the set of entry keys written with it
//! {ns}:h         read counts (a sorted set of keys), for warming
//! ```
//!
//! A namespace may not contain braces, so no namespace's keys lie inside another's.

use crate::Error;

/// The key layout of one namespace.
#[derive(Clone, Debug)]
pub(crate) struct Keyspace {
    /// `{ns}:`, the start of every key of the namespace.
    root: String,
    /// `{ns}:e:`.
    entry: String,
}

impl Keyspace {
    pub(crate) fn new(namespace: &str) -> Result<Self, Error> {
        if namespace.is_empty() || namespace.contains(['{', '}']) {
            return Err(Error::InvalidConfig {
                what: format!("namespace {namespace:?} must be non-empty and without braces"),
            });
        }
        let root = format!("{{{namespace}}}:");
        Ok(Self {
            entry: format!("{root}e:"),
            root,
        })
    }

    /// The Redis key of the entry `key`.
    pub(crate) fn entry(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.entry.len() + key.len());
        k.push_str(&self.entry);
        k.push_str(key);
        k
    }

    /// `{ns}:e:`, the start of every entry's Redis key.
    pub(crate) fn entry_root(&self) -> &str {
        &self.entry
    }

    /// The Redis key of the set of entries tagged `tag`.
    pub(crate) fn tag(&self, tag: &str) -> String {
        format!("{}t:{tag}", self.root)
    }

    /// The Redis key of the read counts.
    pub(crate) fn heat(&self) -> String {
        format!("{}h", self.root)
    }

    /// The cache key of the entry stored at `redis_key`, if it is one of ours and UTF-8.
    pub(crate) fn key_of<'a>(&self, redis_key: &'a [u8]) -> Option<&'a str> {
        let rest = redis_key.strip_prefix(self.entry.as_bytes())?;
        std::str::from_utf8(rest).ok()
    }

    /// The `SCAN MATCH` pattern of every entry whose key starts with `prefix`.
    pub(crate) fn scan_prefix(&self, prefix: &str) -> String {
        let mut p = escape_glob(&self.entry);
        p.push_str(&escape_glob(prefix));
        p.push('*');
        p
    }

    /// The `SCAN MATCH` pattern of every key of the namespace.
    pub(crate) fn scan_all(&self) -> String {
        let mut p = escape_glob(&self.root);
        p.push('*');
        p
    }
}

/// `s` with Redis glob's special characters escaped, so it matches only itself.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_scan(ns: &str, prefix: &str, expect: &str) {
        assert_eq!(Keyspace::new(ns).unwrap().scan_prefix(prefix), expect);
    }

    #[test]
    fn scan_patterns_escape_glob_characters() {
        check_scan("app", "agent:", "{app}:e:agent:*");
        check_scan("app", "a*b?[c]\\", "{app}:e:a\\*b\\?\\[c\\]\\\\*");
        check_scan("a*", "", "{a\\*}:e:*");
        assert_eq!(Keyspace::new("app").unwrap().scan_all(), "{app}:*");
    }

    #[test]
    fn keys_map_back_only_within_the_namespace() {
        let ks = Keyspace::new("app").unwrap();
        let k = ks.entry("agent:1");
        assert_eq!(k, "{app}:e:agent:1");
        assert_eq!(ks.key_of(k.as_bytes()), Some("agent:1"));
        assert_eq!(ks.key_of(b"{app}:t:agent:1"), None);
        assert_eq!(ks.key_of(b"{other}:e:agent:1"), None);
        assert_eq!(ks.key_of(b"{app}:e:\xff"), None);
        assert_eq!(ks.tag("team"), "{app}:t:team");
    }

    #[test]
    fn namespaces_are_non_empty_and_without_braces() {
        for bad in ["", "a{b", "a}b"] {
            assert!(Keyspace::new(bad).is_err(), "{bad:?}");
        }
    }
}
