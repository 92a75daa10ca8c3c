//! The metric table of the crate docs against a real exposition.

use mpm_cache::{Tier, TieredCache};
use mpm_cache_redis::{Invalidation, Redis, RedisInvalidationBus, RedisTier};
use mpm_metrics::{Registry, contract};
use mpm_testkit::Service;

pub(crate) fn the_table_matches_the_exposition() {
    let ns = crate::instance::namespace("metrics");
    let registry = Registry::default();
    let redis = Redis::open(&Service::Redis.url()).unwrap();
    let bus = RedisInvalidationBus::builder(&redis, &ns)
        .metrics(&registry, "profiles")
        .build()
        .unwrap();
    let tier = RedisTier::<String>::builder(&redis, &ns)
        .bus(&bus)
        .metrics(&registry, "profiles")
        .build()
        .unwrap();
    let cache: TieredCache<String> = TieredCache::builder().l2(tier.clone()).build().unwrap();
    bus.attach(cache.clone());
    // Drive every series: a write, a hit, a miss, a batch, a removal, a message.
    cache.insert("k", "v".into());
    assert!(tier.get("k").unwrap().is_some());
    assert!(tier.get("none").unwrap().is_none());
    tier.get_many(&["k"]).unwrap();
    cache.remove("k").unwrap();
    bus.publish(&Invalidation::Prefix("p".into())).unwrap();

    let text = registry.render_prometheus();
    for line in [
        "mpm_cache_redis_hits_total{name=\"profiles\"} 2",
        "mpm_cache_redis_writes_total{name=\"profiles\"} 1",
        "mpm_cache_redis_up{name=\"profiles\"} 1",
        "mpm_cache_bus_published_total{name=\"profiles\"} 2",
        "mpm_cache_bus_subscribed{name=\"profiles\"} 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    let table = include_str!("../../src/metrics.md");
    contract::check_metric_table(table, &text, "mpm_cache_").unwrap();
    tier.clear().unwrap();
}
