//! What travels on the channel: one line of text per invalidation.
//!
//! ```text
//! mpm1 <instance> <sent_us> <op> <argument>
//! ```
//!
//! `instance` is the sender's id (a receiver ignores its own), `sent_us` the wall-clock time
//! of sending in microseconds since the Unix epoch (for the delivery histogram), `op` one of
//! `k` (key), `p` (prefix), `t` (tag), `g` (glob pattern), `c` (everything), `u` (an undo:
//! the sender removed from Redis a write of its own that raced an invalidation, so the key
//! leaves the receivers' local caches only), and the argument the rest of the message, spaces
//! and all.

use std::time::{SystemTime, UNIX_EPOCH};

/// One invalidation, as published on the bus and applied by every other instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// One key.
    Key(String),
    /// Every key that starts with this prefix.
    Prefix(String),
    /// Every entry carrying this tag.
    Tag(String),
    /// Every key matching this glob pattern (see [`mpm_cache::Pattern`]).
    Pattern(String),
    /// Everything.
    All,
}

const VERSION: &str = "mpm1";

/// A message received, borrowed from its bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub(crate) instance: &'a str,
    pub(crate) sent_us: u64,
    pub(crate) what: Invalidation,
    /// An undo (`u`): applied to the local caches only, never to Redis.
    pub(crate) undo: bool,
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The message announcing `what`, sent by `instance` now.
pub(crate) fn encode(instance: &str, what: &Invalidation) -> String {
    let (op, arg) = match what {
        Invalidation::Key(k) => ('k', k.as_str()),
        Invalidation::Prefix(p) => ('p', p.as_str()),
        Invalidation::Tag(t) => ('t', t.as_str()),
        Invalidation::Pattern(g) => ('g', g.as_str()),
        Invalidation::All => ('c', ""),
    };
    format!("{VERSION} {instance} {} {op} {arg}", now_us())
}

/// The message announcing that `instance` removed its own write of `key` from Redis (it raced
/// an invalidation): the receivers drop `key` from their local caches only.
pub(crate) fn encode_undo(instance: &str, key: &str) -> String {
    format!("{VERSION} {instance} {} u {key}", now_us())
}

/// Parses a message; `None` for anything that is not one.
pub(crate) fn decode(bytes: &[u8]) -> Option<Message<'_>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(5, ' ');
    if parts.next()? != VERSION {
        return None;
    }
    let instance = parts.next().filter(|i| !i.is_empty())?;
    let sent_us = parts.next()?.parse().ok()?;
    let op = parts.next()?;
    let arg = parts.next()?.to_owned();
    let what = match op {
        "k" | "u" => Invalidation::Key(arg),
        "p" => Invalidation::Prefix(arg),
        "t" => Invalidation::Tag(arg),
        "g" => Invalidation::Pattern(arg),
        "c" if arg.is_empty() => Invalidation::All,
        _ => return None,
    };
    Some(Message {
        instance,
        sent_us,
        what,
        undo: op == "u",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn round_trip(what: Invalidation) {
        let text = encode("ab12", &what);
        let m = decode(text.as_bytes()).unwrap();
        assert_eq!((m.instance, m.what, m.undo), ("ab12", what, false));
        assert!(m.sent_us > 0);
    }

    #[test]
    fn an_undo_is_a_key_for_the_local_caches_only() {
        let text = encode_undo("ab12", "agent:1 x");
        let m = decode(text.as_bytes()).unwrap();
        assert_eq!(
            (m.instance, m.what, m.undo),
            ("ab12", Invalidation::Key("agent:1 x".into()), true)
        );
    }

    #[test]
    fn every_invalidation_round_trips_arguments_and_all() {
        round_trip(Invalidation::Key("agent:1 with spaces".into()));
        round_trip(Invalidation::Key(String::new()));
        round_trip(Invalidation::Prefix("agent:".into()));
        round_trip(Invalidation::Tag("team core".into()));
        round_trip(Invalidation::Pattern("agent:*:memory".into()));
        round_trip(Invalidation::All);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b""[..],
            b"hello",
            b"mpm1",
            b"mpm1 id",
            b"mpm1 id 12",
            b"mpm1 id 12 k",
            b"mpm1 id x k key",
            b"mpm1  12 k key",
            b"mpm1 id 12 z key",
            b"mpm1 id 12 c extra",
            b"mpm2 id 12 k key",
            b"mpm1 id 12 k \xff",
        ] {
            assert!(decode(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
