//! An invalidation applied late: the receiver removes from Redis only its own write that
//! raced the invalidation, never a value written after it (by the sender or by itself).
//!
//! The order is made deterministic by holding B's applier thread in a [`Gate`] while the
//! sender invalidates and the writes land, then releasing it.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use mpm_cache::{EntryOptions, Tier};
use mpm_cache_redis::{Invalidation, LocalCache, RedisInvalidationBusBuilder};
use mpm_testkit::Service;

use crate::faults::within;
use crate::instance::{Instance, instance_with, namespace};

/// The key whose invalidation a [`Gate`] holds.
const GATE: &str = "gate";

/// How long a test waits for a step that normally takes a millisecond.
const PATIENCE: Duration = Duration::from_secs(10);

/// A local cache that holds the applier thread on the invalidation of [`GATE`] (saying so on
/// `held`) until it is released.
struct Gate {
    held: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl LocalCache for Gate {
    fn invalidate(&self, what: &Invalidation) -> Result<usize, mpm_cache::Error> {
        if *what == Invalidation::Key(GATE.into()) {
            let _ = self.held.lock().unwrap().send(());
            let _ = self.release.lock().unwrap().recv_timeout(PATIENCE);
        }
        Ok(0)
    }
}

/// What Redis holds for `key`, read through `inst`'s tier.
fn in_redis(inst: &Instance, key: &str) -> Option<String> {
    inst.tier.get(key).unwrap().map(|e| e.value)
}

pub(crate) fn a_late_message_removes_only_this_instances_racing_writes() {
    let ns = namespace("late");
    // The race below is decided by order, not by time: the instances keep their writes long
    // enough for a loaded machine (the keep grows with the publish timeout), and no heartbeat
    // missed on such a machine breaks a subscription (and loses a message) meanwhile.
    let tune = |bus: RedisInvalidationBusBuilder| {
        bus.publish_timeout(Duration::from_secs(5))
            .heartbeat(Duration::from_secs(1), Duration::from_secs(5))
    };
    let url = Service::Redis.url();
    let (a, b, c) = (
        instance_with(&url, &ns, tune),
        instance_with(&url, &ns, tune),
        instance_with(&url, &ns, tune),
    );
    let (held_tx, held) = channel();
    let (release, release_rx) = channel();
    b.bus.attach(Gate {
        held: Mutex::new(held_tx),
        release: Mutex::new(release_rx),
    });
    // "all" clears the namespace: last.
    for kind in ["key", "prefix", "tag", "pattern", "all"] {
        let (newer, raced, tag) = (
            format!("{kind}:newer"),
            format!("{kind}:raced"),
            format!("t-{kind}"),
        );
        let tagged = || EntryOptions::new().tag(tag.as_str());
        // B wrote `newer` (so its journal has it), A wrote `raced`; B and C hold both.
        b.cache
            .try_insert_with(&newer, "old".into(), tagged())
            .unwrap();
        a.cache
            .try_insert_with(&raced, "old".into(), tagged())
            .unwrap();
        for inst in [&b, &c] {
            assert_eq!(inst.cache.get(&newer).as_deref(), Some("old"), "{kind}");
            assert_eq!(inst.cache.get(&raced).as_deref(), Some("old"), "{kind}");
        }
        let (b_applied, c_applied) = (b.bus.stats().applied, c.bus.stats().applied);
        let b_undone = b.bus.stats().writes_undone;

        // Hold B's applier.
        a.bus.publish(&Invalidation::Key(GATE.into())).unwrap();
        held.recv_timeout(PATIENCE).expect("B's applier is held");

        // A invalidates both keys (removed from Redis, published).
        let messages = match kind {
            "key" => {
                a.cache.remove(&newer).unwrap();
                a.cache.remove(&raced).unwrap();
                2
            }
            "prefix" => {
                a.cache.invalidate_prefix(&format!("{kind}:")).unwrap();
                1
            }
            "tag" => {
                a.cache.invalidate_tag(&tag).unwrap();
                1
            }
            "pattern" => {
                a.cache.invalidate_pattern(&format!("{kind}:*e*")).unwrap();
                1
            }
            _ => {
                a.cache.clear().unwrap();
                1
            }
        };
        // Then, before B applies that: A writes a newer value, and B writes back the old one
        // (a load that raced the invalidation).
        a.cache
            .try_insert_with(&newer, format!("new-{kind}"), tagged())
            .unwrap();
        b.cache
            .try_insert_with(&raced, "stale".into(), tagged())
            .unwrap();
        // C applied A's invalidation meanwhile, and reads B's stale write from Redis.
        within(PATIENCE, "C applies A's invalidation", || {
            c.bus.stats().applied == c_applied + 1 + messages
        });
        assert_eq!(c.cache.get(&raced).as_deref(), Some("stale"), "{kind}");

        release.send(()).unwrap();
        within(PATIENCE, "B applies A's invalidation", || {
            b.bus.stats().applied == b_applied + 1 + messages
        });
        // B removed its racing write, and only that.
        assert_eq!(
            in_redis(&a, &raced),
            None,
            "{kind}: B's racing write is undone"
        );
        assert_eq!(
            in_redis(&a, &newer).as_deref(),
            Some(format!("new-{kind}").as_str()),
            "{kind}: A's newer write survives B's late message"
        );
        assert_eq!(b.bus.stats().writes_undone, b_undone + 1, "{kind}");
        assert_eq!(b.cache.get(&raced), None, "{kind}");
        assert_eq!(
            b.cache.get(&newer).as_deref(),
            Some(format!("new-{kind}").as_str()),
            "{kind}"
        );
        // B's undo reaches C, which drops the stale value it read.
        within(PATIENCE, "C applies B's undo", || {
            c.bus.stats().applied == c_applied + 2 + messages
        });
        assert_eq!(c.cache.get(&raced), None, "{kind}");
    }
    a.tier_clear();
}
