//! The tier below the L1 as the tiered cache calls it: every call's failure counted by
//! operation, every write counted, a panic turned into an error, and the tier bypassed while
//! it keeps failing (`bypass.rs`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use mpm_metrics::Registry;

use super::bypass::Bypass;
use crate::Error;
use crate::pattern::Pattern;
use crate::stats::{L2Op, L2Stats, TierSnapshot};
use crate::tier::{Tier, TierEntry};

/// The L2 of a tiered cache and what the cache counts about it.
pub(super) struct Lower<V> {
    tier: Arc<dyn Tier<V>>,
    pub(super) stats: L2Stats,
    pub(super) bypass: Bypass,
}

impl<V> Lower<V> {
    pub(super) fn new(tier: Arc<dyn Tier<V>>, stats: L2Stats, bypass: Bypass) -> Self {
        Self {
            tier,
            stats,
            bypass,
        }
    }

    /// Runs one call of the tier unless it is bypassed: counts its failure as `op`, and tells
    /// the bypass how it went (an error, a panic or, except for `flush`, a call slower than
    /// the policy allows is a failure).
    fn call<T>(
        &self,
        op: L2Op,
        f: impl FnOnce(&dyn Tier<V>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let call = self
            .bypass
            .start(op != L2Op::Flush)
            .map_err(|retry_in| Error::TierBypassed { retry_in })?;
        let r = catch_unwind(AssertUnwindSafe(|| f(self.tier.as_ref()))).unwrap_or_else(|p| {
            Err(Error::TierPanicked {
                op: op.as_str(),
                message: panic_message(p.as_ref()),
            })
        });
        if r.is_err() {
            self.stats.error(op);
        }
        self.bypass.finish(call, r.is_ok());
        r
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

impl<V> Tier<V> for Lower<V> {
    fn get(&self, key: &str) -> Result<Option<TierEntry<V>>, Error> {
        self.call(L2Op::Get, |t| t.get(key))
    }

    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<TierEntry<V>>>, Error> {
        self.call(L2Op::Get, |t| t.get_many(keys))
    }

    fn put(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
        tags: &[Arc<str>],
    ) -> Result<(), Error> {
        self.call(L2Op::Put, |t| t.put(key, value, ttl, tags))?;
        self.stats.writes.inc();
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<bool, Error> {
        self.call(L2Op::Remove, |t| t.remove(key))
    }

    fn remove_prefix(&self, prefix: &str) -> Result<usize, Error> {
        self.call(L2Op::Remove, |t| t.remove_prefix(prefix))
    }

    fn remove_tag(&self, tag: &str) -> Result<usize, Error> {
        self.call(L2Op::Remove, |t| t.remove_tag(tag))
    }

    fn remove_matching(&self, pattern: &Pattern) -> Result<usize, Error> {
        self.call(L2Op::Remove, |t| t.remove_matching(pattern))
    }

    fn clear(&self) -> Result<(), Error> {
        self.call(L2Op::Remove, |t| t.clear())
    }

    fn flush(&self) -> Result<(), Error> {
        self.call(L2Op::Flush, |t| t.flush())
    }

    fn stats(&self) -> TierSnapshot {
        self.tier.stats()
    }

    fn warm_keys(&self, n: usize) -> Result<Vec<String>, Error> {
        self.call(L2Op::Get, |t| t.warm_keys(n))
    }

    fn save_heat(&self, reads: &[(&str, u64)]) -> Result<(), Error> {
        self.call(L2Op::Flush, |t| t.save_heat(reads))
    }

    fn register_metrics(&self, registry: &Registry, name: &str) -> Result<(), Error> {
        self.tier.register_metrics(registry, name)
    }
}
