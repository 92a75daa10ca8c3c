//! `RedisTier` alone against the server: what it stores, how it removes, what it refuses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mpm_cache::{Pattern, Tier};
use mpm_cache_redis::{Redis, RedisTier};
use mpm_testkit::Service;

use crate::instance::{TIMEOUT, admin, namespace};

fn tier(namespace: &str) -> RedisTier<String> {
    let redis = Redis::open(&Service::Redis.url()).unwrap();
    RedisTier::builder(&redis, namespace)
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

fn tags(t: &[&str]) -> Vec<Arc<str>> {
    t.iter().map(|&t| t.into()).collect()
}

pub(crate) fn entries_round_trip_with_ttl_tags_and_batches() {
    let ns = namespace("round-trip");
    let t = tier(&ns);
    t.put(
        "a",
        &"1".to_owned(),
        Some(Duration::from_secs(60)),
        &tags(&["x"]),
    )
    .unwrap();
    t.put("b", &"2".to_owned(), None, &[]).unwrap();
    let a = t.get("a").unwrap().unwrap();
    assert_eq!((a.value.as_str(), &*a.tags), ("1", &tags(&["x"])[..]));
    assert!(
        a.ttl
            .is_some_and(|ttl| ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(50))
    );
    assert_eq!(t.get("b").unwrap().unwrap().ttl, None);
    assert!(t.get("c").unwrap().is_none());

    // Redis holds the TTL itself.
    let mut admin = admin();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(t.redis_key("a"))
        .query(&mut admin)
        .unwrap();
    assert!((50_000..=60_000).contains(&pttl), "{pttl}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(t.redis_key("b"))
        .query(&mut admin)
        .unwrap();
    assert_eq!(pttl, -1);

    // One MGET for a batch, in order, misses included.
    let many = t.get_many(&["b", "c", "a"]).unwrap();
    let values: Vec<Option<&str>> = many
        .iter()
        .map(|e| e.as_ref().map(|e| e.value.as_str()))
        .collect();
    assert_eq!(values, [Some("2"), None, Some("1")]);

    // A short TTL runs out on the server.
    t.put(
        "short",
        &"s".to_owned(),
        Some(Duration::from_millis(20)),
        &[],
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while t.get("short").unwrap().is_some() {
        assert!(Instant::now() < deadline, "the entry outlived its TTL");
        std::thread::sleep(Duration::from_millis(5));
    }

    assert!(t.remove("a").unwrap());
    assert!(!t.remove("a").unwrap());
    assert!(t.get("a").unwrap().is_none());
    let s = t.stats();
    assert_eq!((s.writes, s.errors, s.corrupt), (3, 0, 0));
    assert!(s.hits >= 4 && s.misses >= 3, "{s:?}");
    t.clear().unwrap();
    assert!(t.get("b").unwrap().is_none());
}

pub(crate) fn removals_by_prefix_tag_and_pattern_stay_in_the_namespace() {
    let ns = namespace("removals");
    let other_ns = format!("{ns}-other");
    let (t, other) = (tier(&ns), tier(&other_ns));
    let v = "v".to_owned();
    for key in [
        "agent:1:profile",
        "agent:1:memory",
        "agent:2:profile",
        "agent:*:odd",
        "team",
    ] {
        t.put(key, &v, None, &tags(&["all"])).unwrap();
        other.put(key, &v, None, &tags(&["all"])).unwrap();
    }
    t.put(
        "tagged",
        &v,
        Some(Duration::from_secs(60)),
        &tags(&["t1", "t2"]),
    )
    .unwrap();

    // A prefix with glob characters matches only itself.
    assert_eq!(t.remove_prefix("agent:*").unwrap(), 1);
    assert_eq!(t.remove_prefix("agent:1:").unwrap(), 2);
    assert!(t.get("agent:2:profile").unwrap().is_some());
    let p = Pattern::new("*:profile").unwrap();
    assert_eq!(t.remove_matching(&p).unwrap(), 1);
    assert_eq!(t.remove_tag("t2").unwrap(), 1);
    assert!(t.get("tagged").unwrap().is_none());
    assert_eq!(t.remove_tag("all").unwrap(), 1, "only `team` is left");
    assert_eq!(t.remove_tag("all").unwrap(), 0);

    // The other namespace is untouched, and clear empties only ours.
    for key in ["agent:1:profile", "agent:*:odd", "team"] {
        assert!(other.get(key).unwrap().is_some(), "{key}");
    }
    t.put("x", &v, None, &tags(&["t"])).unwrap();
    t.clear().unwrap();
    assert!(t.get("x").unwrap().is_none());
    let mut admin = admin();
    let left: (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg(format!("{{{ns}}}:*"))
        .arg("COUNT")
        .arg(100_000)
        .query(&mut admin)
        .unwrap();
    assert_eq!(left.1, Vec::<String>::new());
    assert!(other.get("team").unwrap().is_some());
    other.clear().unwrap();
}

pub(crate) fn damaged_and_foreign_values_are_counted_misses() {
    let ns = namespace("damaged");
    let t = tier(&ns);
    let mut admin = admin();
    let set = |admin: &mut redis::Connection, key: &str, bytes: &[u8]| {
        redis::cmd("SET")
            .arg(t.redis_key(key))
            .arg(bytes)
            .exec(admin)
            .unwrap();
    };
    t.put("good", &"value".to_owned(), None, &[]).unwrap();
    let good: Vec<u8> = redis::cmd("GET")
        .arg(t.redis_key("good"))
        .query(&mut admin)
        .unwrap();
    // Another key's intact record, foreign bytes, an empty value, every single bit flip.
    set(&mut admin, "moved", &good);
    set(&mut admin, "foreign", b"{\"json\": true}");
    set(&mut admin, "empty", b"");
    redis::cmd("SADD")
        .arg(t.redis_key("a-set"))
        .arg("member")
        .exec(&mut admin)
        .unwrap();
    let mut expected = 4;
    for bit in 0..good.len() * 8 {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        set(&mut admin, "flipped", &bad);
        assert!(t.get("flipped").unwrap().is_none(), "bit {bit}");
        expected += 1;
    }
    for key in ["moved", "foreign", "empty", "a-set"] {
        assert!(t.get(key).unwrap().is_none(), "{key}");
    }
    // A batch: the damaged entries miss, the good one hits (`MGET` skips the set).
    let many = t.get_many(&["moved", "good", "foreign"]).unwrap();
    assert!(many[0].is_none() && many[2].is_none());
    assert_eq!(many[1].as_ref().unwrap().value, "value");
    expected += 2;
    assert_eq!(t.stats().corrupt, expected);
    assert_eq!(t.stats().errors, 0);
    t.clear().unwrap();
}

pub(crate) fn warm_keys_come_from_the_shared_read_counts() {
    let ns = namespace("warm");
    let t = tier(&ns);
    let v = "v".to_owned();
    for k in ["a", "b", "c", "d"] {
        t.put(k, &v, None, &[]).unwrap();
    }
    t.save_heat(&[("c", 10), ("a", 3)]).unwrap();
    t.save_heat(&[("a", 9)]).unwrap();
    assert_eq!(t.warm_keys(2).unwrap(), ["a", "c"]);
    let mut all = t.warm_keys(10).unwrap();
    assert_eq!(&all[..2], ["a", "c"]);
    all.sort();
    assert_eq!(all, ["a", "b", "c", "d"]);
    t.clear().unwrap();
}

pub(crate) fn an_unreachable_server_fails_within_the_timeout_then_fast() {
    // Nothing listens on port 1: connecting is refused at once. A listener that never answers
    // is the other case: only the timeout ends the wait.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("redis://{}", listener.local_addr().unwrap());
    for url in ["redis://127.0.0.1:1", silent.as_str()] {
        let redis = Redis::builder(url)
            .connect_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let t: RedisTier<String> = RedisTier::builder(&redis, "unreachable")
            .timeout(Duration::from_millis(50))
            .build()
            .unwrap();
        let start = Instant::now();
        let err = t.get("k").unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(500), "{url}");
        // The error says what failed and in which namespace, and names no disk: this tier
        // has none.
        let message = err.to_string();
        assert!(
            message.starts_with("tier get failed on redis:unreachable: "),
            "{message}"
        );
        // Known down: the next calls fail at once.
        let start = Instant::now();
        for _ in 0..100 {
            assert!(t.put("k", &"v".to_owned(), None, &[]).is_err());
        }
        assert!(start.elapsed() < Duration::from_millis(50), "{url}");
        assert!(redis.is_down());
        assert_eq!(t.stats().errors, 101);
    }
}

pub(crate) fn bad_configuration_is_refused_at_build() {
    assert!(Redis::open("not a url").is_err());
    let redis = Redis::open("redis://127.0.0.1:1").unwrap();
    for ns in ["", "a{b}"] {
        assert!(RedisTier::<String>::builder(&redis, ns).build().is_err());
    }
    assert!(
        RedisTier::<String>::builder(&redis, "ns")
            .timeout(Duration::ZERO)
            .build()
            .is_err()
    );
    let registry = mpm_metrics::Registry::default();
    let first = RedisTier::<String>::builder(&redis, "ns")
        .metrics(&registry, "shared")
        .build();
    assert!(first.is_ok());
    assert!(
        RedisTier::<String>::builder(&redis, "ns")
            .metrics(&registry, "shared")
            .build()
            .is_err(),
        "a second tier of the same name in one registry"
    );
}
