//! `InvalidationBus`: named events mapped to invalidation patterns (the guide's
//! `EventInvalidationCache`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::pattern::Pattern;
use crate::{Error, TieredCache};

/// Something that can drop the entries whose keys match a [`Pattern`].
pub trait Invalidate: Send + Sync {
    /// Removes every entry whose key matches `pattern`; returns how many were removed.
    fn invalidate_pattern(&self, pattern: &str) -> Result<usize, Error>;
}

impl<V, S> Invalidate for TieredCache<V, S>
where
    V: Clone + Send + Sync + 'static,
    S: std::hash::BuildHasher + Clone + Send + Sync + 'static,
{
    fn invalidate_pattern(&self, pattern: &str) -> Result<usize, Error> {
        TieredCache::invalidate_pattern(self, pattern)
    }
}

impl<T: Invalidate + ?Sized> Invalidate for Arc<T> {
    fn invalidate_pattern(&self, pattern: &str) -> Result<usize, Error> {
        (**self).invalidate_pattern(pattern)
    }
}

struct Route {
    template: String,
    target: Arc<dyn Invalidate>,
}

/// Maps events such as `agent_updated { agent_id }` to invalidation patterns such as
/// `agent:{agent_id}:*`, in process.
///
/// Field values are escaped before they are put into the pattern, so an id containing `*` or
/// `[` matches only itself.
///
/// ```
/// use mpm_cache::{InvalidationBus, TieredCache};
/// use std::sync::Arc;
///
/// let cache: TieredCache<u32> = TieredCache::builder().build()?;
/// cache.insert("agent:42:profile", 1);
/// cache.insert("agent:42:memory", 2);
/// cache.insert("agent:7:profile", 3);
/// let bus = InvalidationBus::default();
/// bus.subscribe("agent_updated", "agent:{agent_id}:*", Arc::new(cache.clone()))?;
/// assert_eq!(bus.publish("agent_updated", &[("agent_id", "42")])?, 2);
/// assert!(cache.get("agent:7:profile").is_some());
/// # Ok::<(), mpm_cache::Error>(())
/// ```
#[derive(Default)]
pub struct InvalidationBus {
    routes: RwLock<HashMap<String, Vec<Route>>>,
}

impl fmt::Debug for InvalidationBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes = self.routes.read().map(|r| r.len()).unwrap_or(0);
        f.debug_struct("InvalidationBus")
            .field("events", &routes)
            .finish()
    }
}

/// Splits a template into literal text and `{field}` names; refuses unbalanced braces.
fn parse(template: &str) -> Result<Vec<(bool, &str)>, Error> {
    let bad = |reason: &str| Error::InvalidPattern {
        pattern: template.to_owned(),
        reason: reason.to_owned(),
    };
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(bad("'}' without '{'"));
        }
        parts.push((false, &rest[..open]));
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| bad("'{' without '}'"))?;
        let name = &rest[open + 1..open + close];
        if name.is_empty() || name.contains('{') {
            return Err(bad("an empty or nested '{...}'"));
        }
        parts.push((true, name));
        rest = &rest[open + close + 1..];
    }
    parts.push((false, rest));
    Ok(parts)
}

impl InvalidationBus {
    /// On every `event`, invalidate `template` (with `{field}` replaced by the event's field) in
    /// `target`. The template is checked now.
    pub fn subscribe(
        &self,
        event: &str,
        template: &str,
        target: Arc<dyn Invalidate>,
    ) -> Result<(), Error> {
        let parts = parse(template)?;
        // The rendered pattern must parse whatever the field values are (they are escaped).
        let probe: String = parts
            .iter()
            .map(|(field, s)| if *field { "x" } else { s })
            .collect();
        Pattern::new(&probe)?;
        self.routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(event.to_owned())
            .or_default()
            .push(Route {
                template: template.to_owned(),
                target,
            });
        Ok(())
    }

    /// Publishes `event` with `fields`; returns the number of entries invalidated. A field a
    /// template needs but the event lacks is an error (nothing is invalidated for that route).
    pub fn publish(&self, event: &str, fields: &[(&str, &str)]) -> Result<usize, Error> {
        let routes = self
            .routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(routes) = routes.get(event) else {
            return Ok(0);
        };
        let mut total = 0;
        let mut first_err = None;
        for r in routes {
            match Self::render(event, &r.template, fields) {
                Ok(p) => match r.target.invalidate_pattern(&p) {
                    Ok(n) => total += n,
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                },
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(total), Err)
    }

    fn render(event: &str, template: &str, fields: &[(&str, &str)]) -> Result<String, Error> {
        let mut out = String::new();
        for (is_field, s) in parse(template)? {
            if is_field {
                let v = fields.iter().find(|(k, _)| *k == s).ok_or_else(|| {
                    Error::MissingEventField {
                        event: event.to_owned(),
                        field: s.to_owned(),
                        template: template.to_owned(),
                    }
                })?;
                out.push_str(&Pattern::escape(v.1));
            } else {
                out.push_str(s);
            }
        }
        Ok(out)
    }
}
