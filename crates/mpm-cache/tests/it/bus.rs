//! `InvalidationBus`.

use std::sync::Arc;

use mpm_cache::{Error, InvalidationBus, TieredCache};

#[test]
fn events_map_to_patterns_with_escaped_fields() {
    let c: TieredCache<u32> = TieredCache::builder().build().unwrap();
    for k in [
        "agent:1:a",
        "agent:1:b",
        "agent:2:a",
        "agent:*:a",
        "config:x",
    ] {
        c.insert(k, 0);
    }
    let bus = InvalidationBus::default();
    bus.subscribe("agent_updated", "agent:{agent_id}:*", Arc::new(c.clone()))
        .unwrap();
    bus.subscribe("config_changed", "config:*", Arc::new(c.clone()))
        .unwrap();
    assert_eq!(
        bus.publish("agent_updated", &[("agent_id", "1")]).unwrap(),
        2
    );
    // A `*` inside an id matches only itself.
    assert_eq!(
        bus.publish("agent_updated", &[("agent_id", "*")]).unwrap(),
        1
    );
    assert_eq!(c.get("agent:2:a"), Some(0));
    assert_eq!(bus.publish("config_changed", &[]).unwrap(), 1);
    assert_eq!(bus.publish("unknown", &[]).unwrap(), 0);
}

#[test]
fn bad_templates_and_missing_fields_are_errors() {
    let c: Arc<TieredCache<u32>> = Arc::new(TieredCache::builder().build().unwrap());
    let bus = InvalidationBus::default();
    assert!(bus.subscribe("e", "agent:{id", c.clone()).is_err());
    assert!(bus.subscribe("e", "agent:}", c.clone()).is_err());
    assert!(bus.subscribe("e", "agent:{}", c.clone()).is_err());
    assert!(bus.subscribe("e", "agent:[", c.clone()).is_err());
    bus.subscribe("e", "agent:{id}:*", c).unwrap();
    let err = bus.publish("e", &[("other", "1")]).unwrap_err();
    assert!(matches!(err, Error::MissingEventField { .. }), "{err}");
    assert!(err.to_string().contains("\"id\""));
}
