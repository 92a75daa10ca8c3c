//! The Redis tier and bus started from `Mpm` report under their names beside the cache.

use mpm_core::cache_redis::Redis;
use mpm_core::metrics::Exposition;
use mpm_core::{Mpm, TieredCache};
use mpm_testkit::Service;

pub(crate) fn tier_and_bus_report_under_their_names() {
    let mpm = Mpm::default();
    let redis = Redis::open(&Service::Redis.url()).unwrap();
    // A namespace of this run only: other tests share the server.
    let namespace = format!("mpm-core-test-{}", std::process::id());
    let bus = mpm
        .redis_bus("profiles", &redis, &namespace)
        .build()
        .unwrap();
    let tier = mpm
        .redis_tier::<String>("profiles", &redis, &namespace)
        .bus(&bus)
        .build()
        .unwrap();
    let cache: TieredCache<String> = mpm.cache("profiles").l2(tier).build().unwrap();
    bus.attach(cache.clone());

    cache.insert("agent:1", "engineer".to_owned());
    assert!(cache.remove("agent:1").unwrap());

    let text = mpm.render_prometheus();
    let exposed = Exposition::parse(&text).unwrap();
    let profiles = [("name", "profiles")];
    assert_eq!(
        exposed.value("mpm_cache_redis_writes_total", &profiles),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        exposed.value("mpm_cache_redis_up", &profiles),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        exposed.value("mpm_cache_bus_published_total", &profiles),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        exposed.value("mpm_cache_bus_subscribed", &profiles),
        Some(1.0),
        "{text}"
    );
    // A second tier or bus of the name is refused.
    assert!(
        mpm.redis_tier::<String>("profiles", &redis, &namespace)
            .build()
            .is_err()
    );
    assert!(
        mpm.redis_bus("profiles", &redis, &namespace)
            .build()
            .is_err()
    );
}
