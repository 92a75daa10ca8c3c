//! mpm-lazy beside std's `OnceLock`/`LazyLock`, once_cell, tokio's `OnceCell` and arc-swap.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use criterion::Criterion;
use std::any::Any;
use std::collections::HashMap;
use std::sync::RwLock;

use mpm_lazy::{AsyncLazy, Lazy, LazyConfig, LazyRegistry, Swap};

/// The warm read of a lazily built value: what every later access pays.
fn warm_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("lazy_warm_read");

    let std_once = OnceLock::new();
    std_once.get_or_init(|| 42_u64);
    g.bench_function("std_oncelock_get", |b| {
        b.iter(|| *black_box(&std_once).get().unwrap())
    });

    let ours: Lazy<u64, ()> = Lazy::new(|| Ok(42));
    ours.get_or_init().unwrap();
    g.bench_function("mpm_lazy_get", |b| {
        b.iter(|| *black_box(&ours).get().unwrap())
    });
    g.bench_function("mpm_lazy_get_or_init", |b| {
        b.iter(|| *black_box(&ours).get_or_init().unwrap())
    });

    let after_reset: Lazy<u64, ()> = Lazy::new(|| Ok(42));
    after_reset.get_or_init().unwrap();
    after_reset.reset();
    after_reset.get_or_init().unwrap();
    g.bench_function("mpm_lazy_get_after_reset", |b| {
        b.iter(|| *black_box(&after_reset).get().unwrap())
    });

    let std_lazy: LazyLock<u64> = LazyLock::new(|| 42);
    LazyLock::force(&std_lazy);
    g.bench_function("std_lazylock_deref", |b| b.iter(|| **black_box(&std_lazy)));

    let oc_lazy: once_cell::sync::Lazy<u64> = once_cell::sync::Lazy::new(|| 42);
    once_cell::sync::Lazy::force(&oc_lazy);
    g.bench_function("once_cell_lazy_deref", |b| b.iter(|| **black_box(&oc_lazy)));

    let ours_async: AsyncLazy<u64, ()> = AsyncLazy::new(|| Box::pin(async { Ok(42) }));
    futures_block_on_ready(&ours_async);
    g.bench_function("mpm_async_lazy_get", |b| {
        b.iter(|| *black_box(&ours_async).get().unwrap())
    });

    let tokio_cell = tokio::sync::OnceCell::new();
    tokio_cell.set(42_u64).unwrap();
    g.bench_function("tokio_oncecell_get", |b| {
        b.iter(|| *black_box(&tokio_cell).get().unwrap())
    });
    g.finish();
}

/// Drives `get_or_init` of a lazy value whose init is immediately ready.
fn futures_block_on_ready(lazy: &AsyncLazy<u64, ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        lazy.get_or_init().await.expect("the init cannot fail");
    });
}

/// Loading the current value of a hot-swappable handle and reading a field.
fn swap_load(c: &mut Criterion) {
    let mut g = c.benchmark_group("swap_load");
    let ours = Swap::from_value(AtomicU64::new(7));
    g.bench_function("mpm_swap", |b| {
        b.iter(|| black_box(&ours).load().load(Ordering::Relaxed))
    });
    let peer = arc_swap::ArcSwap::from_pointee(AtomicU64::new(7));
    g.bench_function("arc_swap", |b| {
        b.iter(|| black_box(&peer).load().load(Ordering::Relaxed))
    });

    trait Model: Send + Sync {
        fn id(&self) -> u64;
    }
    struct Sonnet;
    impl Model for Sonnet {
        fn id(&self) -> u64 {
            7
        }
    }
    let ours_dyn: Swap<dyn Model> = Swap::new(Arc::new(Sonnet));
    g.bench_function("mpm_swap_dyn", |b| {
        b.iter(|| black_box(&ours_dyn).load().id())
    });
    let peer_dyn: arc_swap::ArcSwap<Box<dyn Model>> =
        arc_swap::ArcSwap::from_pointee(Box::new(Sonnet));
    g.bench_function("arc_swap_boxed_dyn", |b| {
        b.iter(|| black_box(&peer_dyn).load().id())
    });
    g.finish();
}

/// Looking up an initialized service by name, among 50 services.
fn registry_lookup(c: &mut Criterion) {
    struct Deployer {
        id: u64,
    }
    let names: Vec<String> = (0..50).map(|i| format!("service_{i}")).collect();
    let mut g = c.benchmark_group("registry_lookup");

    let mut builder = LazyRegistry::builder();
    for (i, name) in names.iter().enumerate() {
        let id = i as u64;
        builder = builder.register_fn(name, move |_| Ok(Deployer { id }));
    }
    let ours = builder.build().expect("unique names");
    for name in &names {
        ours.get::<Deployer>(name).expect("builds");
    }
    let key = "service_17";
    g.bench_function("mpm_registry_get", |b| {
        b.iter(|| black_box(&ours).get::<Deployer>(black_box(key)).unwrap().id)
    });

    let mut map: HashMap<String, Arc<dyn Any + Send + Sync>> = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        map.insert(name.clone(), Arc::new(Deployer { id: i as u64 }));
    }
    let peer = RwLock::new(map);
    g.bench_function("rwlock_hashmap_get", |b| {
        b.iter(|| {
            let any = Arc::clone(
                black_box(&peer)
                    .read()
                    .unwrap()
                    .get(black_box(key))
                    .unwrap(),
            );
            any.downcast::<Deployer>().unwrap().id
        })
    });
    g.finish();
}

/// A TOML file of `sections` agent sections, about 70 bytes each.
fn agents_toml(sections: usize) -> String {
    let mut text = String::from("title = \"agents\"\n\n");
    for i in 0..sections {
        text.push_str(&format!(
            "[agent_{i}]\nmodel = \"sonnet\"\nport = {}\ntags = [\"a\", \"b\"]\n\n",
            8000 + i
        ));
    }
    text
}

/// Opening a configuration file of 10 and of 1,000 sections; the peer parses it eagerly.
fn config_open(c: &mut Criterion) {
    #[derive(serde::Deserialize)]
    struct Agent {
        port: u16,
    }
    let dir = std::env::temp_dir().join(format!("mpm-lazy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let mut g = c.benchmark_group("config_open");
    for sections in [10, 1_000] {
        let path = dir.join(format!("agents_{sections}.toml"));
        std::fs::write(&path, agents_toml(sections)).expect("write the config");
        g.bench_function(format!("mpm_open_{sections}"), |b| {
            b.iter(|| LazyConfig::open(black_box(&path)).unwrap())
        });
        g.bench_function(format!("mpm_open_and_read_one_{sections}"), |b| {
            b.iter(|| {
                let config = LazyConfig::open(black_box(&path)).unwrap();
                config.section::<Agent>("agent_5").unwrap().port
            })
        });
        g.bench_function(format!("toml_eager_parse_{sections}"), |b| {
            b.iter(|| {
                let text = std::fs::read_to_string(black_box(&path)).unwrap();
                toml::from_str::<toml::Table>(&text).unwrap()
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two ways to serve sections of a 1,000-section TOML file lazily: `LazyConfig`'s scan for the
/// section's lines (then parsing those alone), beside parsing the whole file once into a value
/// tree (`toml::Table`) and deserializing sections from it. Rows: the first section read
/// (open + one section) and every section read once.
fn config_section_source(c: &mut Criterion) {
    #[derive(serde::Deserialize)]
    struct Agent {
        model: String,
        port: u16,
        tags: Vec<String>,
    }
    fn weight(a: &Agent) -> usize {
        a.model.len() + usize::from(a.port) + a.tags.len()
    }
    const SECTIONS: usize = 1_000;
    let dir = std::env::temp_dir().join(format!("mpm-lazy-bench-tree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join("agents.toml");
    std::fs::write(&path, agents_toml(SECTIONS)).expect("write the config");
    let names: Vec<String> = (0..SECTIONS).map(|i| format!("agent_{i}")).collect();
    let tree_of = |path: &std::path::Path| {
        let text = std::fs::read_to_string(path).unwrap();
        toml::from_str::<toml::Table>(&text).unwrap()
    };
    let from_tree = |tree: &toml::Table, name: &str| -> Agent {
        tree.get(name).unwrap().clone().try_into().unwrap()
    };
    let mut g = c.benchmark_group("config_section_source");
    g.bench_function("scanned_first_section_1000", |b| {
        b.iter(|| {
            let config = LazyConfig::open(black_box(&path)).unwrap();
            weight(&config.section::<Agent>("agent_500").unwrap())
        })
    });
    g.bench_function("value_tree_first_section_1000", |b| {
        b.iter(|| {
            let tree = tree_of(black_box(&path));
            weight(&from_tree(&tree, "agent_500"))
        })
    });
    g.bench_function("scanned_every_section_1000", |b| {
        b.iter(|| {
            let config = LazyConfig::open(black_box(&path)).unwrap();
            names
                .iter()
                .map(|n| weight(&config.section::<Agent>(n).unwrap()))
                .sum::<usize>()
        })
    });
    g.bench_function("value_tree_every_section_1000", |b| {
        b.iter(|| {
            let tree = tree_of(black_box(&path));
            names
                .iter()
                .map(|n| weight(&from_tree(&tree, n)))
                .sum::<usize>()
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

// Written out instead of `criterion_group!`, whose generated `pub fn` has no docs.
fn main() {
    let mut criterion = config().configure_from_args();
    warm_read(&mut criterion);
    swap_load(&mut criterion);
    registry_lookup(&mut criterion);
    config_open(&mut criterion);
    config_section_source(&mut criterion);
    criterion.final_summary();
}
