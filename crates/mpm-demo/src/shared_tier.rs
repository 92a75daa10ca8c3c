//! `--redis URL`: the profile cache's shared tier on Redis, the invalidation bus that keeps every
//! instance's L1 fresh, and what they measure.
//!
//! With a Redis URL the profile cache of step 4 gets a [`RedisTier`] as its L2 (instead of the
//! disk tier) and a [`RedisInvalidationBus`] attached, as a service with several instances
//! would run. A second instance of the cache (its own L1, its own connection and bus, the same
//! namespace) stands for another process of the service: the step measures how long an
//! invalidation made by the first takes to be applied by the second.
//!
//! Each run uses a namespace of its own (`mpm-demo:PID:RANDOM`), removed from Redis when the
//! run's [`SharedTier`] is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mpm_core::Mpm;
use mpm_core::cache::{Tier, TieredCache};
use mpm_core::cache_redis::{Redis, RedisInvalidationBus, RedisTier};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::Error;
use crate::percentile::{median, percentile};
use crate::profiles::{Profile, ProfileStore};

/// How long connecting to Redis, and the first answer, may take before the run gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the second instance may take to apply one invalidation before the run fails.
const DELIVERY_LIMIT: Duration = Duration::from_secs(2);

/// What `--redis` measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RedisFigures {
    /// The server, as given (a password in it is shown as `***`).
    pub url: String,
    /// The run's key namespace.
    pub namespace: String,
    /// Of the profile lookups the L1 missed, those answered by Redis, in percent.
    pub l2_hit_rate_pct: f64,
    /// Median time of one `get` through the Redis tier (a round trip, decoding and checksum).
    pub get_p50_us: f64,
    /// 99th percentile of the same.
    pub get_p99_us: f64,
    /// `get`s made.
    pub gets: usize,
    /// Of those, the ones that failed (past the tier's timeout, say): not in the percentiles.
    #[serde(default)]
    pub get_errors: usize,
    /// Of those, the ones that found nothing (the workload's write of the profile failed):
    /// not in the percentiles either.
    #[serde(default)]
    pub get_misses: usize,
    /// Median time from one instance removing an entry until the other instance's bus has
    /// removed it from that instance's L1.
    pub invalidation_p50_ms: f64,
    /// 99th percentile of the same.
    pub invalidation_p99_ms: f64,
    /// Invalidations made.
    pub invalidations: usize,
    /// Of those, the ones that could not be timed (a write or removal that failed, or a
    /// message not applied within 2 s): not in the percentiles.
    #[serde(default)]
    pub invalidation_errors: usize,
    /// The bus's documented staleness bound: the longest another instance may serve an entry
    /// after it was invalidated, even when messages are lost.
    pub staleness_bound_ms: f64,
}

/// The profile cache's shared tier: the connection, the tier and the bus of this instance.
/// Dropping it removes the run's namespace from Redis.
pub struct SharedTier {
    /// The URL as given, for the second instance's connection.
    raw_url: String,
    /// The URL as shown.
    url: String,
    namespace: String,
    /// The name the tier and bus report under.
    name: String,
    redis: Redis,
    tier: RedisTier<Arc<Profile>>,
    bus: RedisInvalidationBus,
}

impl SharedTier {
    /// Connects to the Redis server at `url` and checks that it answers; then builds, with
    /// `mpm`, the tier and the bus called `name` in a namespace of this run. Errors name the
    /// server: a URL that does not parse, a server that does not answer, a subscription that
    /// does not hold.
    pub fn connect(mpm: &Mpm, name: &str, url: &str) -> Result<Self, Error> {
        let shown = redact(url);
        let redis = open(url, &shown, "mpm-demo")?;
        let namespace = format!("mpm-demo:{}:{:08x}", std::process::id(), fastrand::u32(..));
        let fail = |why: String| Error::Redis {
            url: shown.clone(),
            why,
        };
        let bus = mpm
            .redis_bus(name, &redis, &namespace)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        if !bus.is_subscribed() {
            return Err(fail(format!(
                "the invalidation bus could not subscribe to {} within {CONNECT_TIMEOUT:?}",
                bus.channel()
            )));
        }
        let tier = mpm
            .redis_tier::<Arc<Profile>>(name, &redis, &namespace)
            .bus(&bus)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            raw_url: url.to_owned(),
            url: shown,
            namespace,
            name: name.to_owned(),
            redis: redis.clone(),
            tier,
            bus,
        })
    }

    /// The tier, to put below the profile cache's L1.
    pub fn tier(&self) -> RedisTier<Arc<Profile>> {
        self.tier.clone()
    }

    /// Keeps `cache` (the one over [`tier`](Self::tier)) fresh with the other instances'
    /// invalidations.
    pub fn attach(&self, cache: &TieredCache<Arc<Profile>>) {
        self.bus.attach(cache.clone());
    }

    /// The server, as shown in messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Measures the shared tier after the profile workload ran through `cache` (the first
    /// instance), whose L1 missed `l2_hit_rate_pct` of its lookups into Redis: `gets` timed
    /// gets through the tier of the hottest profiles of `store`, then `invalidations` made
    /// by `cache` and applied by a second instance built with `mpm` (as `NAME_peer`, NAME the
    /// tier's).
    pub async fn measure(
        &self,
        mpm: &Mpm,
        cache: &TieredCache<Arc<Profile>>,
        store: &ProfileStore,
        l2_hit_rate_pct: f64,
        gets: usize,
        invalidations: usize,
    ) -> Result<RedisFigures, Error> {
        let fail = |why: String| Error::Redis {
            url: self.url.clone(),
            why,
        };

        // Gets through the tier: the hottest profiles, written to Redis by the workload.
        let hot: Vec<String> = (0..64.min(store.len())).map(ProfileStore::key).collect();
        let mut times = Vec::with_capacity(gets);
        let mut get_errors = 0;
        let mut get_misses = 0;
        let mut last_error = None;
        for i in 0..gets {
            let key = &hot[i % hot.len()];
            self.wait_until_up().await;
            let t = Instant::now();
            match self.tier.get(key) {
                Ok(Some(_)) => times.push(t.elapsed()),
                // The workload's write of it failed (and the L1 kept it): a miss, counted.
                Ok(None) => get_misses += 1,
                // A call past the tier's timeout (a loaded machine): counted, not timed.
                Err(e) => {
                    get_errors += 1;
                    last_error = Some(e);
                }
            }
        }
        if times.is_empty() {
            return Err(fail(match last_error {
                Some(e) => format!("every get through the tier failed: {e}"),
                None => "the workload wrote none of the hottest profiles to Redis".into(),
            }));
        }

        // A second instance: its own connection, bus, tier and L1 on the same namespace.
        let peer = format!("{}_peer", self.name);
        let redis = open(&self.raw_url, &self.url, "mpm-demo-peer")?;
        let bus = mpm
            .redis_bus(&peer, &redis, &self.namespace)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        if !bus.is_subscribed() {
            return Err(fail("the second instance's bus could not subscribe".into()));
        }
        let tier = mpm
            .redis_tier::<Arc<Profile>>(&peer, &redis, &self.namespace)
            .bus(&bus)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let other: TieredCache<Arc<Profile>> = mpm
            .cache(&peer)
            .l2(tier)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        bus.attach(other.clone());
        let (applied_tx, mut applied) = mpsc::unbounded_channel::<(String, Instant)>();
        other.on_invalidate(move |key| {
            let _ = applied_tx.send((key.to_owned(), Instant::now()));
        });

        // Each round: the second instance holds a profile in its L1, the first removes it, and
        // the second's bus applies the removal.
        // A round whose write or removal fails (a call past its timeout on a loaded machine,
        // or a connection the server dropped) is counted and not timed.
        let mut delivery = Vec::with_capacity(invalidations);
        let mut invalidation_errors = 0;
        let mut last_error = String::new();
        for i in 0..invalidations {
            let key = format!("invalidation:{i}");
            let profile = Arc::new(store.load(i % store.len().max(1))?);
            self.wait_until_up().await;
            wait_until_up(&redis).await;
            if let Err(e) =
                other.try_insert_with(&key, profile, mpm_core::cache::EntryOptions::new())
            {
                invalidation_errors += 1;
                last_error = format!("the second instance's write of {key}: {e}");
                continue;
            }
            let started = Instant::now();
            if let Err(e) = cache.remove(&key) {
                invalidation_errors += 1;
                last_error = format!("the removal of {key}: {e}");
                continue;
            }
            let Some(at) = wait_for(&mut applied, &key).await else {
                invalidation_errors += 1;
                last_error = format!(
                    "the second instance did not apply the invalidation of {key} within {DELIVERY_LIMIT:?}"
                );
                continue;
            };
            delivery.push(at.saturating_duration_since(started));
            if other.contains(&key) {
                return Err(fail(format!(
                    "the second instance still holds {key} after applying its invalidation"
                )));
            }
        }
        if delivery.is_empty() {
            return Err(fail(format!(
                "no invalidation could be timed: {last_error}"
            )));
        }

        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Ok(RedisFigures {
            url: self.url.clone(),
            namespace: self.namespace.clone(),
            l2_hit_rate_pct,
            get_p50_us: us(median(&mut times)),
            get_p99_us: us(percentile(&mut times, 0.99)),
            gets,
            get_errors,
            get_misses,
            invalidation_p50_ms: ms(median(&mut delivery)),
            invalidation_p99_ms: ms(percentile(&mut delivery, 0.99)),
            invalidations,
            invalidation_errors,
            staleness_bound_ms: ms(self.bus.staleness_bound()),
        })
    }
}

impl SharedTier {
    /// Waits (at most [`CONNECT_TIMEOUT`]) while the connection is known to be down: a call
    /// that timed out on a loaded machine marks it down until a probe answers, and calls made
    /// meanwhile fail at once without reaching Redis. The crate offers no signal for the
    /// probe's answer, so this looks every millisecond.
    async fn wait_until_up(&self) {
        wait_until_up(&self.redis).await;
    }
}

/// Waits (at most [`CONNECT_TIMEOUT`]) while `redis` is known to be down; see
/// [`SharedTier::wait_until_up`].
async fn wait_until_up(redis: &Redis) {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while redis.is_down() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The run's namespace goes when the run ends: its profiles, written with no TTL, would
/// otherwise stay in the server.
impl Drop for SharedTier {
    fn drop(&mut self) {
        let _ = Tier::clear(&self.tier);
    }
}

/// A handle on the server at `url` (shown as `shown`), checked with a `PING`.
fn open(url: &str, shown: &str, client_name: &str) -> Result<Redis, Error> {
    let fail = |why: String| Error::Redis {
        url: shown.to_owned(),
        why,
    };
    let redis = Redis::builder(url)
        .client_name(client_name)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    redis
        .ping(CONNECT_TIMEOUT)
        .map_err(|e| fail(format!("the server does not answer: {e}")))?;
    Ok(redis)
}

/// Waits for the second instance to report `key` removed; when it did.
async fn wait_for(
    applied: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    key: &str,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + DELIVERY_LIMIT;
    loop {
        match tokio::time::timeout_at(deadline, applied.recv()).await {
            Ok(Some((k, at))) if k == key => return Some(at),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// `url` with the password (if any) replaced by `***`, for messages and the report.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(url: &str, expect: &str) {
        assert_eq!(redact(url), expect);
    }

    #[test]
    fn passwords_are_not_shown() {
        check("redis://127.0.0.1:6379", "redis://127.0.0.1:6379");
        check("redis://:secret@host:6379/0", "redis://:***@host:6379/0");
        check("redis://user:secret@host", "redis://user:***@host");
        check("redis://user@host", "redis://user@host");
        check("not a url", "not a url");
    }
}
