//! A family's series in render order, laid out for the renderer.
//!
//! A family keeps its series in a B-tree keyed by label set, which gives the exposition its
//! order. Walking the tree at every render loaded its nodes scattered over the heap, a stall
//! each. The first render after a series was added or removed writes, in the tree's order,
//! every series' line start (`name{labels} `) into one string, and beside it where each ends,
//! each counter's id in the registry's arena and each handle. Later renders read the line
//! starts and ids in address order: the line starts were once kept in the order the series
//! were made, and a render hopping between them in label order missed the cache.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::registry::{Handle, Series};

/// A family's series in render order.
pub(crate) struct Rendered {
    /// Every series' line start, `name{labels} `, one after the other.
    pub(crate) heads: String,
    /// Where each series' line start ends in `heads` (it starts where the one before ends).
    pub(crate) ends: Box<[usize]>,
    /// Each counter's id in its registry's arena (0 for other kinds).
    pub(crate) counters: Box<[u32]>,
    /// Each series' metric.
    pub(crate) handles: Box<[Handle]>,
}

/// A family's series in render order, made on first use after each change.
#[derive(Default)]
pub(crate) struct Lines(OnceLock<Rendered>);

impl Lines {
    /// Forgets the layout; call after adding or removing a series.
    pub(crate) fn invalidate(&mut self) {
        self.0.take();
    }

    /// The series of the family `name`, made from `series` when the layout was invalidated.
    pub(crate) fn get(&self, name: &str, series: &BTreeMap<String, Series>) -> &Rendered {
        self.0.get_or_init(|| {
            let mut heads = String::with_capacity(series.len() * (name.len() + 16));
            let mut ends = Vec::with_capacity(series.len());
            let mut counters = Vec::with_capacity(series.len());
            let mut handles = Vec::with_capacity(series.len());
            for (key, s) in series {
                heads.push_str(name);
                if !key.is_empty() {
                    heads.push('{');
                    heads.push_str(key);
                    heads.push('}');
                }
                heads.push(' ');
                ends.push(heads.len());
                counters.push(match &s.handle {
                    Handle::Counter(c) => c.id(),
                    _ => 0,
                });
                handles.push(s.handle.clone());
            }
            Rendered {
                heads,
                ends: ends.into(),
                counters: counters.into(),
                handles: handles.into(),
            }
        })
    }
}
