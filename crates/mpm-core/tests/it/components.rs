//! Every component started from an `Mpm` reports into its registry under the given name,
//! and a second one of the same kind and name fails at build.

use std::num::NonZeroUsize;

use mpm_core::batch::{Batch, Overflow};
use mpm_core::lazy::Resolver;
use mpm_core::memory_opt::Options;
use mpm_core::pool::{keyed, manager};
use mpm_core::{Mpm, Registry, TieredCache};

/// Builds one component called `name` from `mpm`; `Err` carries the build's error.
type Build = fn(&Mpm, &str, &std::path::Path) -> Result<Box<dyn std::any::Any>, String>;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn boxed<T: 'static, E: std::fmt::Display>(
    r: Result<T, E>,
) -> Result<Box<dyn std::any::Any>, String> {
    r.map(|t| Box::new(t) as Box<dyn std::any::Any>)
        .map_err(|e| e.to_string())
}

/// Each kind of component: its builder from `Mpm`, and a series its build registers.
const KINDS: &[(&str, Build, &str)] = &[
    (
        "cache",
        |m, n, _| boxed(m.cache::<String>(n).build()),
        "mpm_cache_entries",
    ),
    (
        "memory_tier",
        |m, n, _| boxed(m.memory_tier::<String, u32>(n).build()),
        "mpm_cache_entries",
    ),
    (
        "disk_tier",
        |m, n, dir| boxed(m.disk_tier(n, dir.join(n)).open::<String>()),
        "mpm_cache_disk_entries",
    ),
    (
        "pool",
        |m, n, _| {
            let manager = manager::from_fns(|| async { Ok::<_, std::io::Error>(0_u8) }, |_| true);
            boxed(m.pool(n, manager).build_lazy())
        },
        "mpm_pool_size",
    ),
    (
        "keyed_pool",
        |m, n, _| {
            let manager = keyed::from_fns(
                |_: &u8| async { Ok::<_, std::io::Error>(0_u8) },
                |_: &u8, _: &u8| true,
            );
            boxed(m.keyed_pool(n, manager).build())
        },
        "mpm_pool_keyed_size",
    ),
    (
        "breaker",
        |m, n, _| boxed(m.breaker(n).build()),
        "mpm_pool_breaker_state",
    ),
    (
        "lazy",
        |m, n, _| boxed(m.lazy(n, || Ok::<_, std::io::Error>(1)).build()),
        "mpm_lazy_resets_total",
    ),
    (
        "async_lazy",
        |m, n, _| {
            boxed(
                m.async_lazy(n, || async { Ok::<_, std::io::Error>(1) })
                    .build(),
            )
        },
        "mpm_lazy_resets_total",
    ),
    (
        "lazy_registry",
        |m, n, _| {
            boxed(
                m.lazy_registry(n)
                    .register_fn("one", |_: &Resolver| Ok(1_u8))
                    .build(),
            )
        },
        "mpm_lazy_registry_services",
    ),
    (
        "config",
        |m, n, dir| {
            let path = dir.join(format!("{n}.json"));
            std::fs::write(&path, "{}").unwrap();
            boxed(m.config(n, &path).build())
        },
        "mpm_lazy_config_sections_parsed",
    ),
    (
        "optimizer",
        |m, n, _| boxed(m.optimizer(n, Options::default()).build()),
        "mpm_memory_opt_documents_total",
    ),
    (
        "batcher",
        |m, n, _| {
            boxed(
                m.batcher::<u8, u8>(n, NonZeroUsize::MIN, Overflow::Wait)
                    .build(|_: Batch<u8, u8>| async { Ok::<_, std::io::Error>(()) }),
            )
        },
        "mpm_batch_queued",
    ),
];

#[test]
fn each_component_reports_under_its_name_once() {
    let rt = rt();
    let _in_runtime = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let mpm = Mpm::default();
    let mut kept = Vec::new();
    for (kind, build, series) in KINDS {
        let name = format!("{kind}_one");
        kept.push(build(&mpm, &name, dir.path()).unwrap_or_else(|e| panic!("{kind}: {e}")));
        let text = mpm.render_prometheus();
        assert!(
            text.contains(&format!("{series}{{name=\"{name}\"")),
            "{kind}: no {series} named {name} in:\n{text}"
        );
        let again = build(&mpm, &name, dir.path());
        assert!(again.is_err(), "{kind}: a second {name} was accepted");
    }
}

#[test]
fn a_given_registry_is_shared_and_clones_share_it() {
    let registry = Registry::default();
    let mpm = Mpm::builder().registry(&registry).build();
    let clone = mpm.clone();
    let cache: TieredCache<String> = clone.cache("profiles").build().unwrap();
    cache.insert("agent:1", "engineer".to_owned());
    let wanted = "mpm_cache_entries{name=\"profiles\",tier=\"l1\"} 1\n";
    assert!(registry.render_prometheus().contains(wanted));
    assert!(mpm.render_prometheus().contains(wanted));
    // The name is claimed in the shared registry, whichever handle asks.
    assert!(mpm.cache::<String>("profiles").build().is_err());
    // A handle of its own registry knows nothing of it.
    assert!(Mpm::default().cache::<String>("profiles").build().is_ok());
}

#[test]
fn a_name_is_released_when_its_component_is_dropped() {
    let mpm = Mpm::default();
    let cache: TieredCache<String> = mpm.cache("profiles").build().unwrap();
    drop(cache);
    assert!(mpm.cache::<String>("profiles").build().is_ok());
}
