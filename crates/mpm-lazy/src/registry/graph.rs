//! The wait-for graph: who builds which service and who waits for whom, so that a dependency
//! cycle is reported as [`Error::Cycle`] instead of deadlocking, also across threads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::stats::Entry;
use super::{AnyService, Inner};
use crate::error::Error;

/// Who waits for whom: an edge `a -> b` means the initialization of `a` waits for `b`.
#[derive(Default)]
pub(super) struct Graph {
    in_progress: HashSet<Arc<str>>,
    edges: HashMap<Arc<str>, Vec<Arc<str>>>,
}

impl Graph {
    fn add_edge(&mut self, from: &Arc<str>, to: &Arc<str>) {
        self.edges
            .entry(Arc::clone(from))
            .or_default()
            .push(Arc::clone(to));
    }

    pub(super) fn remove_edge(&mut self, from: &Arc<str>, to: &Arc<str>) {
        if let Some(targets) = self.edges.get_mut(from) {
            if let Some(i) = targets.iter().position(|t| t == to) {
                targets.swap_remove(i);
            }
            if targets.is_empty() {
                self.edges.remove(from);
            }
        }
    }

    /// A path of waits from `start` to `target`, if one exists (depth first).
    fn path(&self, start: &Arc<str>, target: &Arc<str>) -> Option<Vec<Arc<str>>> {
        let mut path = vec![Arc::clone(start)];
        let mut seen = HashSet::new();
        if self.dfs(start, target, &mut path, &mut seen) {
            Some(path)
        } else {
            None
        }
    }

    fn dfs(
        &self,
        node: &Arc<str>,
        target: &Arc<str>,
        path: &mut Vec<Arc<str>>,
        seen: &mut HashSet<Arc<str>>,
    ) -> bool {
        if node == target {
            return true;
        }
        if !seen.insert(Arc::clone(node)) {
            return false;
        }
        for next in self.edges.get(node).into_iter().flatten() {
            path.push(Arc::clone(next));
            if self.dfs(next, target, path, seen) {
                return true;
            }
            path.pop();
        }
        false
    }
}

/// One step of waiting for a service: it is ready, this caller must build it, or wait.
pub(super) enum Step<'a> {
    Ready(AnyService),
    Build(Claim<'a>),
    Wait(WaitEdge<'a>),
}

/// The right to build one service; releasing it wakes every waiter.
pub(super) struct Claim<'a> {
    inner: &'a Inner,
    name: Arc<str>,
    requester: Option<Arc<str>>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut graph = self.inner.graph.lock();
        graph.in_progress.remove(&self.name);
        if let Some(requester) = &self.requester {
            graph.remove_edge(requester, &self.name);
        }
        drop(graph);
        self.inner.finished.notify_all();
        self.inner.finished_async.notify_waiters();
    }
}

/// A recorded wait of `requester` for `name`, removed when dropped.
pub(super) struct WaitEdge<'a> {
    inner: &'a Inner,
    pub(super) edge: Option<(Arc<str>, Arc<str>)>,
}

impl Drop for WaitEdge<'_> {
    fn drop(&mut self) {
        if let Some((from, to)) = &self.edge {
            self.inner.graph.lock().remove_edge(from, to);
        }
    }
}

/// Decides, under the graph lock, what the caller does next about `entry`.
pub(super) fn step<'a>(
    inner: &'a Inner,
    graph: &mut Graph,
    requester: Option<&Arc<str>>,
    entry: &Entry,
) -> Result<Step<'a>, Error> {
    if let Some(value) = entry.value.get() {
        return Ok(Step::Ready(Arc::clone(value)));
    }
    let name = &entry.name;
    if !graph.in_progress.contains(name) {
        graph.in_progress.insert(Arc::clone(name));
        if let Some(requester) = requester {
            graph.add_edge(requester, name);
        }
        return Ok(Step::Build(Claim {
            inner,
            name: Arc::clone(name),
            requester: requester.cloned(),
        }));
    }
    let Some(requester) = requester else {
        return Ok(Step::Wait(WaitEdge { inner, edge: None }));
    };
    // `requester` would wait for `name`: a cycle if `name` already waits, transitively, for it.
    if let Some(path) = graph.path(name, requester) {
        let mut members: Vec<String> = Vec::with_capacity(path.len() + 1);
        members.push(requester.to_string());
        members.extend(path.iter().take(path.len() - 1).map(|n| n.to_string()));
        return Err(Error::Cycle {
            cycle: canonical_cycle(members),
        });
    }
    graph.add_edge(requester, name);
    Ok(Step::Wait(WaitEdge {
        inner,
        edge: Some((Arc::clone(requester), Arc::clone(name))),
    }))
}

/// The cycle through `members` (each once, in dependency order), rotated to start at the
/// smallest name and closed by repeating it, so every thread caught in one cycle reports the same
/// text.
fn canonical_cycle(mut members: Vec<String>) -> Vec<String> {
    if let Some(start) = members
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.cmp(b.1))
        .map(|(i, _)| i)
    {
        members.rotate_left(start);
    }
    if let Some(first) = members.first().cloned() {
        members.push(first);
    }
    members
}
