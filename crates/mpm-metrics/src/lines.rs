//! A family's series in render order, in one slice.
//!
//! A family keeps its series in a B-tree keyed by label set, which gives the exposition its
//! order. Walking the tree at every render loaded its nodes scattered over the heap, a stall
//! each, and the renderer walked it twice (once a few series ahead, to prefetch the cells).
//! The first render after a series was added or removed copies each series' line start and
//! handle into a slice, in the tree's order; later renders walk that slice from memory read
//! in order, and look ahead by index.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::OnceLock;

use crate::registry::{Handle, Series};

/// One series, as the renderer reads it.
pub(crate) struct Line {
    /// Where the series' line start, `name{labels} `, lies in its family's heads.
    pub(crate) head: Range<usize>,
    /// The series' metric.
    pub(crate) handle: Handle,
    /// A counter's id in its registry's arena: where a render's sums hold its value.
    pub(crate) counter: u32,
}

/// A family's series in render order, made on first use after each change.
#[derive(Default)]
pub(crate) struct Lines(OnceLock<Box<[Line]>>);

impl Lines {
    /// Forgets the slice; call after adding or removing a series, or moving a head.
    pub(crate) fn invalidate(&mut self) {
        self.0.take();
    }

    /// The series of `series` in its order, made from it when the slice was invalidated.
    pub(crate) fn get(&self, series: &BTreeMap<String, Series>) -> &[Line] {
        self.0.get_or_init(|| {
            series
                .values()
                .map(|s| Line {
                    head: s.head.clone(),
                    handle: s.handle.clone(),
                    counter: match &s.handle {
                        Handle::Counter(c) => c.id(),
                        _ => 0,
                    },
                })
                .collect()
        })
    }
}
