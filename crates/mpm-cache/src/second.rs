//! What the tiered cache needs from a durable second tier.

use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::pattern::Pattern;

/// A value read from the second tier, with what is needed to promote it to L1.
pub(crate) struct L2Hit<V> {
    pub(crate) value: V,
    /// The time to live left; `None` means never.
    pub(crate) ttl: Option<Duration>,
    pub(crate) tags: Arc<[Arc<str>]>,
}

/// A durable tier below the L1. Implemented by `DiskTier`.
pub(crate) trait SecondTier<V>: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<L2Hit<V>>, Error>;
    fn put(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
        tags: &[Arc<str>],
    ) -> Result<(), Error>;
    fn remove(&self, key: &str) -> Result<bool, Error>;
    fn remove_prefix(&self, prefix: &str) -> Result<usize, Error>;
    fn remove_tag(&self, tag: &str) -> Result<usize, Error>;
    fn remove_matching(&self, pattern: &Pattern) -> Result<usize, Error>;
    fn clear(&self) -> Result<(), Error>;
    fn newest_keys(&self, n: usize) -> Result<Vec<String>, Error>;
    fn hottest_keys(&self, n: usize) -> Result<Vec<String>, Error>;
    fn save_heat(&self, reads: &[(&str, u64)]) -> Result<(), Error>;
    fn flush(&self) -> Result<(), Error>;
}
