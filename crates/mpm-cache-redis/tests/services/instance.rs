//! One instance of a service, as the tests build it: its own Redis handle, bus, tier and
//! `TieredCache`; and the admin connection that kills the instances' clients.

use std::sync::mpsc;
use std::time::Duration;

use mpm_cache::TieredCache;
use mpm_cache_redis::{Redis, RedisInvalidationBus, RedisInvalidationBusBuilder, RedisTier};
use mpm_testkit::Service;

/// The tier's timeout in the tests.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(100);

pub(crate) struct Instance {
    pub(crate) redis: Redis,
    pub(crate) bus: RedisInvalidationBus,
    pub(crate) tier: RedisTier<String>,
    pub(crate) cache: TieredCache<String>,
    /// Every key the cache removes from its L1, as the bus applies invalidations.
    pub(crate) removed: mpsc::Receiver<String>,
}

/// A namespace no other test (or run) uses.
pub(crate) fn namespace(test: &str) -> String {
    format!(
        "mpm-test:{test}:{}:{:08x}",
        std::process::id(),
        fastrand_u32()
    )
}

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

pub(crate) fn instance(namespace: &str) -> Instance {
    instance_at(&Service::Redis.url(), namespace)
}

pub(crate) fn instance_at(url: &str, namespace: &str) -> Instance {
    instance_with(url, namespace, |b| b)
}

/// An instance whose bus builder `tune` adjusts.
pub(crate) fn instance_with(
    url: &str,
    namespace: &str,
    tune: impl FnOnce(RedisInvalidationBusBuilder) -> RedisInvalidationBusBuilder,
) -> Instance {
    let redis = Redis::builder(url)
        .probe_max_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let bus = tune(
        RedisInvalidationBus::builder(&redis, namespace)
            .heartbeat(Duration::from_millis(50), Duration::from_millis(50))
            .reconnect_max(Duration::from_millis(50)),
    )
    .build()
    .unwrap();
    let tier = RedisTier::<String>::builder(&redis, namespace)
        .timeout(TIMEOUT)
        .bus(&bus)
        .build()
        .unwrap();
    let cache: TieredCache<String> = TieredCache::builder().l2(tier.clone()).build().unwrap();
    let (tx, removed) = mpsc::channel();
    cache.on_invalidate(move |k| {
        let _ = tx.send(k.to_owned());
    });
    bus.attach(cache.clone());
    Instance {
        redis,
        bus,
        tier,
        cache,
        removed,
    }
}

impl Instance {
    /// Forgets the keys removed so far.
    pub(crate) fn drain(&self) {
        while self.removed.try_recv().is_ok() {}
    }

    /// The names of this instance's connections (`CLIENT LIST`).
    pub(crate) fn client_names(&self) -> [String; 2] {
        [
            self.redis.client_name().to_owned(),
            self.bus.client_name().to_owned(),
        ]
    }
}

/// A plain connection for what the tests do behind the instances' backs.
pub(crate) fn admin() -> redis::Connection {
    admin_at(&Service::Redis.url())
}

pub(crate) fn admin_at(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap()
}

/// Kills every client whose name is in `names` (`CLIENT KILL ID`); returns how many.
pub(crate) fn kill_clients(admin: &mut redis::Connection, names: &[String]) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(admin).unwrap();
    let mut killed = 0;
    for line in list.lines() {
        let field = |k: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(k))
                .unwrap_or_default()
        };
        if names.iter().any(|n| n == field("name=")) {
            let id: i64 = field("id=").parse().unwrap();
            killed += redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .query::<usize>(admin)
                .unwrap_or(0);
        }
    }
    killed
}
