//! Resolving a service: the twin sync and async paths (look, claim or wait, build through the
//! fallback chain, settle each attempt). They differ only in how they wait and whether async
//! factories may run.

use std::sync::Arc;
use std::time::Instant;

use super::graph::{Claim, Step, step};
use super::service::{Factory, Implementation};
use super::stats::{Entry, finish, record, record_failure};
use super::{AnyService, Inner, Resolver, check_type, downcast, entry};
use crate::error::{BoxError, Error};

pub(super) fn lookup_sync<T: Send + Sync + 'static>(
    inner: &Arc<Inner>,
    requester: Option<&Arc<str>>,
    name: &str,
) -> Result<Arc<T>, Error> {
    let entry = entry(inner, name)?;
    check_type::<T>(entry)?;
    downcast(entry, resolve_sync(inner, requester, entry)?)
}

pub(super) async fn lookup_async<T: Send + Sync + 'static>(
    inner: &Arc<Inner>,
    requester: Option<&Arc<str>>,
    name: &str,
) -> Result<Arc<T>, Error> {
    let entry = entry(inner, name)?;
    check_type::<T>(entry)?;
    downcast(entry, resolve_async(inner, requester, entry).await?)
}

pub(super) fn resolve_sync(
    inner: &Arc<Inner>,
    requester: Option<&Arc<str>>,
    entry: &Entry,
) -> Result<AnyService, Error> {
    entry.accesses.inc();
    if let Some(value) = entry.value.get() {
        return Ok(Arc::clone(value));
    }
    if entry.needs_async() {
        return Err(Error::RequiresAsync {
            service: entry.name.to_string(),
        });
    }
    let mut graph = inner.graph.lock();
    loop {
        match step(inner, &mut graph, requester, entry)? {
            Step::Ready(value) => return Ok(value),
            Step::Build(claim) => {
                drop(graph);
                return build_sync(inner, entry, claim);
            }
            Step::Wait(mut edge) => {
                inner.finished.wait(&mut graph);
                // Remove the edge under the lock this thread holds again, then look again.
                if let Some((from, to)) = edge.edge.take() {
                    graph.remove_edge(&from, &to);
                }
            }
        }
    }
}

pub(super) async fn resolve_async(
    inner: &Arc<Inner>,
    requester: Option<&Arc<str>>,
    entry: &Entry,
) -> Result<AnyService, Error> {
    entry.accesses.inc();
    if let Some(value) = entry.value.get() {
        return Ok(Arc::clone(value));
    }
    loop {
        let notified = inner.finished_async.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        let step = {
            let mut graph = inner.graph.lock();
            step(inner, &mut graph, requester, entry)?
        };
        match step {
            Step::Ready(value) => return Ok(value),
            Step::Build(claim) => return build_async(inner, entry, claim).await,
            Step::Wait(edge) => {
                notified.await;
                drop(edge);
            }
        }
    }
}

/// Records one implementation's attempt: on success the finished service, on failure `None`
/// with the error added to `failures` (the next implementation of the chain is tried).
fn settle(
    inner: &Inner,
    entry: &Entry,
    implementation: &Implementation,
    started: Instant,
    result: Result<AnyService, BoxError>,
    failures: &mut Vec<(String, BoxError)>,
) -> Option<AnyService> {
    record(inner, entry, &implementation.name, started, result.is_ok());
    match result {
        Ok(value) => Some(finish(entry, value)),
        Err(error) => {
            record_failure(entry, &error);
            failures.push((implementation.name.clone(), error));
            None
        }
    }
}

fn failed(entry: &Entry, mut failures: Vec<(String, BoxError)>) -> Error {
    if failures.len() == 1 {
        let (implementation, source) = failures.remove(0);
        // A cycle passes through unchanged, so the top-level caller sees the whole cycle.
        return match source.downcast::<Error>() {
            Ok(error) if matches!(*error, Error::Cycle { .. }) => *error,
            Ok(error) => Error::Factory {
                service: entry.name.to_string(),
                implementation,
                source: error,
            },
            Err(source) => Error::Factory {
                service: entry.name.to_string(),
                implementation,
                source,
            },
        };
    }
    Error::AllImplementationsFailed {
        service: entry.name.to_string(),
        failures,
    }
}

fn build_sync(inner: &Arc<Inner>, entry: &Entry, claim: Claim<'_>) -> Result<AnyService, Error> {
    let resolver = Resolver {
        inner: Arc::clone(inner),
        requester: Arc::clone(&entry.name),
    };
    let mut failures = Vec::new();
    for implementation in &entry.implementations {
        let Factory::Sync(factory) = &implementation.factory else {
            continue;
        };
        let started = Instant::now();
        let result = factory(&resolver);
        if let Some(value) = settle(inner, entry, implementation, started, result, &mut failures) {
            drop(claim);
            return Ok(value);
        }
    }
    drop(claim);
    Err(failed(entry, failures))
}

async fn build_async(
    inner: &Arc<Inner>,
    entry: &Entry,
    claim: Claim<'_>,
) -> Result<AnyService, Error> {
    let mut failures = Vec::new();
    for implementation in &entry.implementations {
        let resolver = Resolver {
            inner: Arc::clone(inner),
            requester: Arc::clone(&entry.name),
        };
        let started = Instant::now();
        let result = match &implementation.factory {
            Factory::Sync(factory) => factory(&resolver),
            Factory::Async(factory) => factory(resolver).await,
        };
        if let Some(value) = settle(inner, entry, implementation, started, result, &mut failures) {
            drop(claim);
            return Ok(value);
        }
    }
    drop(claim);
    Err(failed(entry, failures))
}
