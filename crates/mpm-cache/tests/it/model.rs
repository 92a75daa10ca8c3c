//! Model-based property test: `TieredCache` against a `HashMap` with a controllable clock. The
//! cache may forget (eviction) but never returns an expired, invalidated or wrong value.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use mpm_cache::{Admission, Clock, DiskTier, EntryOptions, MemoryTier, TieredCache};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert {
        key: u8,
        value: u32,
        ttl: Option<u16>,
        tag: Option<u8>,
    },
    Get(u8),
    Remove(u8),
    Prefix(u8),
    Tag(u8),
    Pattern(u8),
    Advance(u16),
}

fn key(k: u8) -> String {
    format!("g{}:k{}", k % 4, k)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..32u8, any::<u32>(), proptest::option::of(1..2000u16), proptest::option::of(0..3u8))
            .prop_map(|(key, value, ttl, tag)| Op::Insert { key, value, ttl, tag }),
        4 => (0..32u8).prop_map(Op::Get),
        1 => (0..32u8).prop_map(Op::Remove),
        1 => (0..4u8).prop_map(Op::Prefix),
        1 => (0..3u8).prop_map(Op::Tag),
        1 => (0..10u8).prop_map(Op::Pattern),
        2 => (0..1500u16).prop_map(Op::Advance),
    ]
}

/// The model: key -> (value, deadline in ms or None, tag).
type Model = HashMap<String, (u32, Option<u64>, Option<u8>)>;

fn run(ops: Vec<Op>, capacity: usize) {
    run_on(ops, capacity, None, Admission::All);
}

fn run_on(ops: Vec<Op>, capacity: usize, disk: Option<&std::path::Path>, admission: Admission) {
    let (clock, hand) = Clock::manual();
    let mut b = TieredCache::builder().l1(MemoryTier::builder()
        .clock(clock)
        .admission(admission)
        .max_entries(NonZeroUsize::new(capacity).unwrap()));
    if let Some(dir) = disk {
        b = b.l2(DiskTier::builder(dir).open().unwrap());
    }
    let c: TieredCache<u32> = b.build().unwrap();
    let mut model: Model = HashMap::new();
    for op in ops {
        let now = hand.now_ms();
        match op {
            Op::Insert {
                key: k,
                value,
                ttl,
                tag,
            } => {
                let mut o = EntryOptions::new().ttl(ttl.map(|t| Duration::from_millis(t.into())));
                if let Some(t) = tag {
                    o = o.tag(format!("t{t}"));
                }
                c.insert_with(&key(k), value, o);
                model.insert(key(k), (value, ttl.map(|t| now + u64::from(t)), tag));
            }
            Op::Get(k) => {
                let got = c.get(&key(k));
                let live = model
                    .get(&key(k))
                    .filter(|(_, d, _)| d.is_none_or(|d| now <= d))
                    .map(|(v, _, _)| *v);
                match got {
                    None => {}
                    Some(v) => assert_eq!(Some(v), live, "get {} at {now}", key(k)),
                }
                if let Some(v) = got {
                    let _ = v;
                }
                // After an expiry the model forgets too.
                if live.is_none() {
                    model.remove(&key(k));
                }
            }
            Op::Remove(k) => {
                c.remove(&key(k)).unwrap();
                model.remove(&key(k));
            }
            Op::Prefix(g) => {
                let p = format!("g{g}:");
                c.invalidate_prefix(&p).unwrap();
                model.retain(|k, _| !k.starts_with(&p));
            }
            Op::Tag(t) => {
                c.invalidate_tag(&format!("t{t}")).unwrap();
                model.retain(|_, (_, _, tag)| *tag != Some(t));
            }
            Op::Pattern(d) => {
                // Keys whose number ends in digit d.
                let pattern = format!("g?:k*{d}");
                c.invalidate_pattern(&pattern).unwrap();
                model.retain(|k, _| !k.ends_with(&d.to_string()));
            }
            Op::Advance(ms) => hand.advance(Duration::from_millis(ms.into())),
        }
        // `len` counts live entries only, whether or not the expired ones were reclaimed yet.
        let now = hand.now_ms();
        let live = model
            .values()
            .filter(|(_, d, _)| d.is_none_or(|d| now <= d))
            .count();
        if capacity >= 32 {
            assert_eq!(c.len(), live, "len at {now}");
        } else {
            assert!(
                c.len() <= live,
                "len {} above {live} live at {now}",
                c.len()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn never_returns_an_expired_invalidated_or_wrong_value(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops, 1_000);
    }

    #[test]
    fn the_same_under_eviction_pressure(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops, 8);
    }

    #[test]
    fn the_same_with_adaptive_admission(ops in proptest::collection::vec(op(), 1..200)) {
        run_on(ops.clone(), 1_000, None, Admission::Adaptive);
        run_on(ops, 8, None, Admission::Adaptive);
    }
}

proptest! {
    // Disk removals are durable (one fsync each), so fewer cases.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_same_with_a_disk_tier_below_a_tiny_l1(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        // The disk tier's TTLs run on wall time, so this model never advances the clock and
        // uses no TTL: every value a tier returns must be the model's.
        let ops: Vec<Op> = ops
            .into_iter()
            .filter(|o| !matches!(o, Op::Advance(_)))
            .map(|o| match o {
                Op::Insert { key, value, tag, .. } => Op::Insert { key, value, ttl: None, tag },
                o => o,
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        run_on(ops, 4, Some(dir.path()), Admission::All);
    }
}
