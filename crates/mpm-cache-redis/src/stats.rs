//! The counters of the tier and of the bus: `mpm-metrics` handles, registered under the
//! `cache_redis` and `cache_bus` components when a registry is given (see `metrics.md`), plain
//! counters otherwise.

use mpm_metrics::{Counter, Histogram, Registry, Scope, Unit};

use crate::Error;
use crate::server::Failure;

/// The tier's handles.
#[derive(Clone, Default)]
pub(crate) struct TierCounters {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) writes: Counter,
    pub(crate) corrupt: Counter,
    errors_down: Counter,
    errors_timeout: Counter,
    errors_connection: Counter,
    errors_command: Counter,
    pub(crate) get_seconds: Histogram,
    pub(crate) get_many_seconds: Histogram,
    pub(crate) put_seconds: Histogram,
    pub(crate) remove_seconds: Histogram,
}

impl TierCounters {
    /// Handles registered in `scope` (component `cache_redis`).
    pub(crate) fn register(scope: &Scope) -> Result<Self, Error> {
        let errors = |reason: &str| {
            scope.counter(
                "errors_total",
                "Calls that failed, by reason: down (failed fast), timeout, connection, command.",
                &[("reason", reason)],
            )
        };
        let seconds = |op: &str| {
            scope.histogram(
                "request_seconds",
                "Time a call waited for Redis, by operation.",
                Unit::Seconds,
                &[("op", op)],
            )
        };
        Ok(Self {
            hits: scope.counter("hits_total", "Reads that found a live, intact entry.", &[])?,
            misses: scope.counter("misses_total", "Reads that found nothing usable.", &[])?,
            writes: scope.counter("writes_total", "Entries written.", &[])?,
            corrupt: scope.counter(
                "corrupt_total",
                "Values under the namespace that failed their checksum or did not decode (each a miss).",
                &[],
            )?,
            errors_down: errors("down")?,
            errors_timeout: errors("timeout")?,
            errors_connection: errors("connection")?,
            errors_command: errors("command")?,
            get_seconds: seconds("get")?,
            get_many_seconds: seconds("get_many")?,
            put_seconds: seconds("put")?,
            remove_seconds: seconds("remove")?,
        })
    }

    pub(crate) fn failed(&self, f: &Failure) {
        match f.reason() {
            "down" => self.errors_down.inc(),
            "timeout" => self.errors_timeout.inc(),
            "connection" => self.errors_connection.inc(),
            _ => self.errors_command.inc(),
        }
    }

    pub(crate) fn errors(&self) -> u64 {
        self.errors_down.get()
            + self.errors_timeout.get()
            + self.errors_connection.get()
            + self.errors_command.get()
    }
}

/// The bus's handles.
#[derive(Clone, Default)]
pub(crate) struct BusCounters {
    pub(crate) published: Counter,
    pub(crate) publish_errors: Counter,
    pub(crate) applied: Counter,
    pub(crate) own: Counter,
    pub(crate) malformed: Counter,
    pub(crate) failed: Counter,
    pub(crate) disconnects: Counter,
    pub(crate) local_clears: Counter,
    pub(crate) undo_removed: Counter,
    pub(crate) undo_kept: Counter,
    pub(crate) delivery_seconds: Histogram,
}

impl BusCounters {
    /// Handles registered in `scope` (component `cache_bus`).
    pub(crate) fn register(scope: &Scope) -> Result<Self, Error> {
        let received = |outcome: &str| {
            scope.counter(
                "received_total",
                "Invalidation messages received, by outcome: applied, own (sent by this instance), malformed, failed.",
                &[("outcome", outcome)],
            )
        };
        let undone = |outcome: &str| {
            scope.counter(
                "undone_writes_total",
                "Writes of this instance checked because they may have raced an invalidation (received from another instance, or lost while the subscription was broken), by outcome: removed, kept (the entry holds a newer value or is gone).",
                &[("outcome", outcome)],
            )
        };
        Ok(Self {
            published: scope.counter("published_total", "Invalidations published.", &[])?,
            publish_errors: scope.counter(
                "publish_errors_total",
                "Invalidations that could not be published.",
                &[],
            )?,
            applied: received("applied")?,
            own: received("own")?,
            malformed: received("malformed")?,
            failed: received("failed")?,
            disconnects: scope.counter(
                "disconnects_total",
                "Subscriptions lost (the connection dropped or stopped answering its heartbeat).",
                &[],
            )?,
            local_clears: scope.counter(
                "local_clears_total",
                "Times the attached local caches were cleared because messages may have been lost.",
                &[],
            )?,
            undo_removed: undone("removed")?,
            undo_kept: undone("kept")?,
            delivery_seconds: scope.histogram(
                "delivery_seconds",
                "Time from publishing an invalidation to applying it here (wall clock).",
                Unit::Seconds,
                &[],
            )?,
        })
    }
}

/// The claimed scope, if a registry was given.
pub(crate) fn scope(
    metrics: Option<&(Registry, String)>,
    component: &str,
) -> Result<Option<Scope>, Error> {
    metrics
        .map(|(registry, name)| registry.scope(component, name))
        .transpose()
        .map_err(Error::from)
}

/// What a [`RedisInvalidationBus`](crate::RedisInvalidationBus) has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusSnapshot {
    /// Invalidations published.
    pub published: u64,
    /// Invalidations that could not be published.
    pub publish_errors: u64,
    /// Messages from other instances applied to the attached caches.
    pub applied: u64,
    /// Messages from this instance, ignored.
    pub own: u64,
    /// Messages that did not parse, ignored.
    pub malformed: u64,
    /// Messages whose application failed in some attached cache.
    pub failed: u64,
    /// Subscriptions lost.
    pub disconnects: u64,
    /// Times the attached caches were cleared because messages may have been lost.
    pub local_clears: u64,
    /// Entries this instance wrote lately that it removed from Redis because they may have
    /// raced an invalidation: one received from another instance, or one lost while the
    /// subscription was broken (checked when it subscribes again).
    pub writes_undone: u64,
    /// Such entries left in place: written again since (a newer value) or already gone.
    pub writes_kept: u64,
}

impl BusCounters {
    pub(crate) fn snapshot(&self) -> BusSnapshot {
        BusSnapshot {
            published: self.published.get(),
            publish_errors: self.publish_errors.get(),
            applied: self.applied.get(),
            own: self.own.get(),
            malformed: self.malformed.get(),
            failed: self.failed.get(),
            disconnects: self.disconnects.get(),
            local_clears: self.local_clears.get(),
            writes_undone: self.undo_removed.get(),
            writes_kept: self.undo_kept.get(),
        }
    }
}
