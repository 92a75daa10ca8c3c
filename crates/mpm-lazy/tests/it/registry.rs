//! `LazyRegistry`: lazy lookup, fallback chains, cycles, statistics and warm-up.

use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use expect_test::expect;
use futures::FutureExt;
use mpm_lazy::{BoxError, Error, LazyRegistry, RegistryBuilder, Resolver, Service};
use mpm_metrics::{Registry, Unit};

#[track_caller]
fn check_error(result: Result<impl std::fmt::Debug, Error>, expected: expect_test::Expect) {
    expected.assert_eq(&result.expect_err("an error").to_string());
}

fn counted<T: Clone + Send + Sync + 'static>(
    calls: &Arc<AtomicUsize>,
    value: T,
) -> impl Fn(&Resolver) -> Result<T, BoxError> + Send + Sync + 'static {
    let calls = Arc::clone(calls);
    move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(value.clone())
    }
}

#[test]
fn services_are_built_on_first_lookup_and_cached() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = LazyRegistry::builder()
        .register_fn("model", counted(&calls, String::from("sonnet")))
        .build()
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing is built up front");
    assert!(!registry.is_initialized("model"));
    let first = registry.get::<String>("model").unwrap();
    let second = registry.get::<String>("model").unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stats = registry.stats("model").unwrap();
    assert!(stats.initialized);
    assert!(stats.init_time.is_some());
    assert_eq!((stats.accesses, stats.attempts, stats.failures), (2, 1, 0));
    assert_eq!(stats.served_by.as_deref(), Some("model"));
    assert_eq!(stats.last_error, None);
}

#[test]
fn lookup_errors_say_what_and_which() {
    let registry = LazyRegistry::builder()
        .register_fn("model", |_| Ok(7_u32))
        .build()
        .unwrap();
    check_error(
        registry.get::<u32>("modle"),
        expect!["no service named `modle` is registered"],
    );
    check_error(
        registry.get::<String>("model"),
        expect!["service `model` holds a `u32`, not a `alloc::string::String`"],
    );
    assert!(
        !registry.is_initialized("model"),
        "a type mismatch builds nothing"
    );
    registry.get::<u32>("model").unwrap();
    check_error(
        registry.get::<String>("model"),
        expect!["service `model` holds a `u32`, not a `alloc::string::String`"],
    );
    let duplicate = LazyRegistry::builder()
        .register_fn("model", |_| Ok(1_u8))
        .register_fn("model", |_| Ok(2_u8))
        .build();
    check_error(duplicate, expect!["service `model` is registered twice"]);
}

#[test]
fn a_fallback_chain_serves_from_the_first_implementation_that_works() {
    let registry = LazyRegistry::builder()
        .register(
            "deployer",
            Service::from_fn("agent.deployment", |_| {
                Err("no module agent.deployment".into())
            })
            .or_fn("agents.deployment", |_| Ok("legacy")),
        )
        .register(
            "new_first",
            Service::from_fn("new", |_| Ok("new")).or_fn("legacy", |_| Ok("legacy")),
        )
        .build()
        .unwrap();
    assert_eq!(*registry.get::<&str>("deployer").unwrap(), "legacy");
    assert_eq!(*registry.get::<&str>("new_first").unwrap(), "new");
    let stats = registry.stats("deployer").unwrap();
    assert_eq!(stats.served_by.as_deref(), Some("agents.deployment"));
    assert_eq!(
        stats.last_error.as_deref(),
        Some("no module agent.deployment")
    );
    assert_eq!((stats.attempts, stats.failures), (2, 1));
    assert_eq!(
        registry.stats("new_first").unwrap().served_by.as_deref(),
        Some("new")
    );
}

#[test]
fn when_every_implementation_fails_each_error_is_reported_and_nothing_is_cached() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let registry = LazyRegistry::builder()
        .register(
            "deployer",
            Service::from_fn("agent.deployment", |_| Err("module not found".into())).or_fn(
                "agents.deployment",
                {
                    let attempts = Arc::clone(&attempts);
                    move |_| match attempts.fetch_add(1, Ordering::SeqCst) {
                        0 => Err("legacy module not found".into()),
                        _ => Ok(1_u8),
                    }
                },
            ),
        )
        .build()
        .unwrap();
    check_error(
        registry.get::<u8>("deployer"),
        expect![
            "service `deployer` failed to initialize: every implementation failed; `agent.deployment`: module not found; `agents.deployment`: legacy module not found"
        ],
    );
    assert!(!registry.is_initialized("deployer"));
    assert_eq!(
        *registry.get::<u8>("deployer").unwrap(),
        1,
        "the next lookup retries"
    );
}

#[test]
fn a_single_failing_factory_names_the_service() {
    let registry = LazyRegistry::builder()
        .register_fn("db", |_| -> Result<u8, BoxError> {
            Err("connection refused".into())
        })
        .register_fn("profiles", |r| Ok(*r.get::<u8>("db")?))
        .build()
        .unwrap();
    check_error(
        registry.get::<u8>("profiles"),
        expect![
            "service `profiles` failed to initialize: service `db` failed to initialize: connection refused"
        ],
    );
    assert_eq!(registry.stats("db").unwrap().failures, 1);
}

#[test]
fn a_panicking_factory_leaves_the_service_buildable() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let registry = LazyRegistry::builder()
        .register_fn("flaky", {
            let attempts = Arc::clone(&attempts);
            move |_| {
                assert!(
                    attempts.fetch_add(1, Ordering::SeqCst) > 0,
                    "first attempt panics"
                );
                Ok(5_u8)
            }
        })
        .build()
        .unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| registry.get::<u8>("flaky")));
    assert!(outcome.is_err());
    assert_eq!(*registry.get::<u8>("flaky").unwrap(), 5);
}

fn dependent(
    name: &'static str,
    needs: &'static str,
) -> impl Fn(&Resolver) -> Result<String, BoxError> + Send + Sync {
    move |r| Ok(format!("{name}+{}", r.get::<String>(needs)?))
}

#[test]
fn a_cycle_is_an_error_naming_the_whole_cycle() {
    let registry = LazyRegistry::builder()
        .register_fn("a", dependent("a", "b"))
        .register_fn("b", dependent("b", "c"))
        .register_fn("c", dependent("c", "a"))
        .register_fn("self", dependent("self", "self"))
        .build()
        .unwrap();
    for start in ["a", "b", "c"] {
        check_error(
            registry.get::<String>(start),
            expect!["dependency cycle: a -> b -> c -> a"],
        );
    }
    match registry.get::<String>("b") {
        Err(Error::Cycle { cycle }) => assert_eq!(cycle, ["a", "b", "c", "a"]),
        other => panic!("expected a cycle, got {other:?}"),
    }
    check_error(
        registry.get::<String>("self"),
        expect!["dependency cycle: self -> self"],
    );
}

#[test]
fn dependencies_are_built_once_and_shared() {
    let db_calls = Arc::new(AtomicUsize::new(0));
    let registry = LazyRegistry::builder()
        .register_fn("db", counted(&db_calls, String::from("db")))
        .register_fn("profiles", dependent("profiles", "db"))
        .register_fn("memory", dependent("memory", "db"))
        .build()
        .unwrap();
    assert_eq!(*registry.get::<String>("profiles").unwrap(), "profiles+db");
    assert_eq!(*registry.get::<String>("memory").unwrap(), "memory+db");
    assert_eq!(db_calls.load(Ordering::SeqCst), 1);
    assert_eq!(registry.stats("db").unwrap().accesses, 2);
}

/// A factory for `name` needing `needs`; its first run meets the other thread at `meet` first,
/// so that both services are being built when each asks for the other.
fn meeting(
    name: &'static str,
    needs: &'static str,
    meet: &Arc<Barrier>,
) -> impl Fn(&Resolver) -> Result<String, BoxError> + Send + Sync + 'static {
    let meet = Arc::clone(meet);
    let runs = AtomicUsize::new(0);
    move |r| {
        if runs.fetch_add(1, Ordering::SeqCst) == 0 {
            meet.wait();
        }
        Ok(format!("{name}+{}", r.get::<String>(needs)?))
    }
}

#[test]
fn two_threads_entering_a_cycle_from_both_ends_both_get_the_cycle() {
    for _ in 0..50 {
        let meet = Arc::new(Barrier::new(2));
        let registry = LazyRegistry::builder()
            .register_fn("planner", meeting("planner", "executor", &meet))
            .register_fn("executor", meeting("executor", "planner", &meet))
            .build()
            .unwrap();
        let (left, right) = std::thread::scope(|scope| {
            let left = scope.spawn(|| registry.get::<String>("planner"));
            let right = scope.spawn(|| registry.get::<String>("executor"));
            (left.join().unwrap(), right.join().unwrap())
        });
        check_error(
            left,
            expect!["dependency cycle: executor -> planner -> executor"],
        );
        check_error(
            right,
            expect!["dependency cycle: executor -> planner -> executor"],
        );
        assert!(!registry.is_initialized("planner") && !registry.is_initialized("executor"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tasks_entering_a_cycle_from_both_ends_both_get_the_cycle() {
    fn meeting_async(
        name: &'static str,
        needs: &'static str,
        meet: &Arc<tokio::sync::Barrier>,
    ) -> Service<String> {
        let meet = Arc::clone(meet);
        let runs = Arc::new(AtomicUsize::new(0));
        Service::from_async_fn(name, move |r: Resolver| {
            let (meet, runs) = (Arc::clone(&meet), Arc::clone(&runs));
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    meet.wait().await;
                }
                Ok(format!("{name}+{}", r.get_async::<String>(needs).await?))
            }
        })
    }
    for _ in 0..20 {
        let meet = Arc::new(tokio::sync::Barrier::new(2));
        let registry = LazyRegistry::builder()
            .register("planner", meeting_async("planner", "executor", &meet))
            .register("executor", meeting_async("executor", "planner", &meet))
            .build()
            .unwrap();
        let left = tokio::spawn({
            let registry = registry.clone();
            async move { registry.get_async::<String>("planner").await.map(|_| ()) }
        });
        let right = tokio::spawn({
            let registry = registry.clone();
            async move { registry.get_async::<String>("executor").await.map(|_| ()) }
        });
        check_error(
            left.await.unwrap(),
            expect!["dependency cycle: executor -> planner -> executor"],
        );
        check_error(
            right.await.unwrap(),
            expect!["dependency cycle: executor -> planner -> executor"],
        );
    }
}

#[test]
fn concurrent_first_lookups_build_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = LazyRegistry::builder()
        .register_fn("index", {
            let calls = Arc::clone(&calls);
            move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                std::thread::yield_now();
                Ok(vec![1_u32, 2, 3])
            }
        })
        .build()
        .unwrap();
    let start = Barrier::new(64);
    std::thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| {
                start.wait();
                assert_eq!(registry.get::<Vec<u32>>("index").unwrap().len(), 3);
            });
        }
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(registry.stats("index").unwrap().accesses, 64);
}

/// Warm lookups count on per-thread cells: more threads than cells (the extra ones share a
/// cell) and many lookups each, and not one is lost.
#[test]
fn warm_lookups_from_many_threads_are_all_counted() {
    let registry = LazyRegistry::builder()
        .register_fn("index", |_| Ok(7_u64))
        .build()
        .unwrap();
    assert_eq!(*registry.get::<u64>("index").unwrap(), 7);
    let start = Barrier::new(24);
    std::thread::scope(|scope| {
        for _ in 0..24 {
            scope.spawn(|| {
                start.wait();
                for _ in 0..5_000 {
                    assert_eq!(*registry.get::<u64>("index").unwrap(), 7);
                }
            });
        }
    });
    assert_eq!(registry.stats("index").unwrap().accesses, 1 + 24 * 5_000);
}

fn async_registry(builder: RegistryBuilder) -> LazyRegistry {
    builder
        .register_async_fn("remote", |_| async {
            Ok::<_, BoxError>(String::from("remote"))
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn async_factories_resolve_through_get_async() {
    let registry = async_registry(LazyRegistry::builder().register_async_fn(
        "client",
        |r: Resolver| async move {
            Ok::<_, BoxError>(format!(
                "client of {}",
                r.get_async::<String>("remote").await?
            ))
        },
    ));
    check_error(
        registry.get::<String>("client"),
        expect!["service `client` has an async factory; resolve it with `get_async`"],
    );
    assert_eq!(
        *registry.get_async::<String>("client").await.unwrap(),
        "client of remote"
    );
    assert_eq!(
        *registry.get::<String>("client").unwrap(),
        "client of remote",
        "built ones are sync"
    );
}

#[tokio::test]
async fn a_cancelled_async_build_lets_the_next_lookup_build() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = LazyRegistry::builder()
        .register_async_fn("slow", {
            let (gate, runs) = (Arc::clone(&gate), Arc::clone(&runs));
            move |_| {
                let (gate, runs) = (Arc::clone(&gate), Arc::clone(&runs));
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        let _never = gate.acquire().await;
                    }
                    Ok::<_, BoxError>(3_u8)
                }
            }
        })
        .build()
        .unwrap();
    assert!(
        registry.get_async::<u8>("slow").now_or_never().is_none(),
        "cancelled mid-build"
    );
    assert_eq!(*registry.get_async::<u8>("slow").await.unwrap(), 3);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn initialize_all_warms_up_with_bounded_concurrency() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut builder = LazyRegistry::builder();
    for i in 0..6 {
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        builder = builder.register_async_fn(&format!("svc{i}"), move |_| {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, BoxError>(i)
            }
        });
    }
    let registry = builder
        .register_fn("broken", |_| -> Result<u8, BoxError> {
            Err("no such binary".into())
        })
        .build()
        .unwrap();
    let warm_up = registry.initialize_all(NonZeroUsize::new(2).unwrap()).await;
    assert_eq!(
        warm_up.initialized,
        ["svc0", "svc1", "svc2", "svc3", "svc4", "svc5"]
    );
    assert_eq!(warm_up.failed.len(), 1);
    assert_eq!(
        warm_up.failed[0].1.to_string(),
        "service `broken` failed to initialize: no such binary"
    );
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "at most two at once, and two reached"
    );
    let stats = registry.all_stats();
    assert_eq!(stats.len(), 7);
    assert_eq!(stats.iter().filter(|s| s.initialized).count(), 6);
}

#[test]
fn init_time_goes_into_the_metrics_registry() {
    let metrics = Registry::default();
    let registry = LazyRegistry::builder()
        .register(
            "deployer",
            Service::from_fn("new", |_| Err("missing".into())).or_fn("legacy", |_| Ok(1_u8)),
        )
        .metrics(&metrics, "services")
        .build()
        .unwrap();
    registry.get::<u8>("deployer").unwrap();
    let count = |implementation, outcome| {
        metrics
            .histogram(
                "mpm_lazy_registry_init_seconds",
                &[
                    ("name", "services"),
                    ("service", "deployer"),
                    ("implementation", implementation),
                    ("outcome", outcome),
                ],
                Unit::Seconds,
            )
            .unwrap()
            .snapshot()
            .count
    };
    assert_eq!((count("new", "error"), count("legacy", "ok")), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_resolving_a_diamond_build_each_service_once() {
    // top needs left and right; both need base; base fails its first three attempts.
    let base_attempts = Arc::new(AtomicUsize::new(0));
    let builds = Arc::new(AtomicUsize::new(0));
    let side = |name: &'static str, builds: &Arc<AtomicUsize>| {
        let builds = Arc::clone(builds);
        move |r: Resolver| {
            let builds = Arc::clone(&builds);
            async move {
                let base = r.get_async::<u32>("base").await?;
                tokio::task::yield_now().await;
                builds.fetch_add(1, Ordering::SeqCst);
                Ok::<_, BoxError>(format!("{name}({base})"))
            }
        }
    };
    let registry = LazyRegistry::builder()
        .register_async_fn("base", {
            let attempts = Arc::clone(&base_attempts);
            move |_| {
                let attempts = Arc::clone(&attempts);
                async move {
                    tokio::task::yield_now().await;
                    match attempts.fetch_add(1, Ordering::SeqCst) {
                        0..3 => Err::<u32, BoxError>("warming up".into()),
                        _ => Ok(7),
                    }
                }
            }
        })
        .register_async_fn("left", side("left", &builds))
        .register_async_fn("right", side("right", &builds))
        .register_async_fn("top", {
            let builds = Arc::clone(&builds);
            move |r: Resolver| {
                let builds = Arc::clone(&builds);
                async move {
                    let (left, right) = tokio::join!(
                        r.get_async::<String>("left"),
                        r.get_async::<String>("right")
                    );
                    let value = format!("{}+{}", left?, right?);
                    builds.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, BoxError>(value)
                }
            }
        })
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move {
                let name = ["top", "left", "right"][i % 3];
                loop {
                    match registry.get_async::<String>(name).await {
                        Ok(value) => return (name, value),
                        Err(_) => tokio::task::yield_now().await,
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let (name, value) = task.await.unwrap();
        let expected = match name {
            "top" => "left(7)+right(7)",
            "left" => "left(7)",
            _ => "right(7)",
        };
        assert_eq!(*value, expected);
    }
    assert_eq!(
        builds.load(Ordering::SeqCst),
        3,
        "left, right and top built once each"
    );
    assert_eq!(
        base_attempts.load(Ordering::SeqCst),
        4,
        "three failures, then one success"
    );
    let base = registry.stats("base").unwrap();
    assert_eq!((base.attempts, base.failures), (4, 3));
}

#[tokio::test]
async fn a_sync_lookup_skips_async_implementations_of_a_chain() {
    let build = || {
        LazyRegistry::builder()
            .register(
                "deployer",
                Service::from_async_fn("agent.deployment", |_| async {
                    Ok::<_, BoxError>(String::from("new"))
                })
                .or_fn("agents.deployment", |_| Ok(String::from("legacy"))),
            )
            .build()
            .unwrap()
    };
    assert_eq!(*build().get::<String>("deployer").unwrap(), "legacy");
    assert_eq!(
        *build().get_async::<String>("deployer").await.unwrap(),
        "new"
    );
}
