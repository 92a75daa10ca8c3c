//! The agent service: every component built from one `Mpm`.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use std::any::Any;

use mpm_core::batch::{Batch, Overflow};
use mpm_core::lazy::{LazyConfig, Resolver};
use mpm_core::memory_opt::Options;
use mpm_core::pool::Pool;
use mpm_core::pool::keyed;
use mpm_core::pool::postgres::PgManager;
use mpm_core::{Mpm, TieredCache};
use mpm_testkit::Service;

/// Agents whose profiles the service loads.
pub(crate) const AGENTS: usize = 20;

/// The service, its parts kept alive so that their series stay in the registry.
pub(crate) struct App {
    pub(crate) mpm: Mpm,
    pub(crate) profiles: TieredCache<String>,
    pub(crate) pg: Pool<PgManager>,
    pub(crate) settings: LazyConfig,
    /// The other components, each used once.
    _others: Vec<Box<dyn Any>>,
    _dir: tempfile::TempDir,
}

/// Builds the service on the current Tokio runtime, with an empty cache; nothing has been
/// looked up or checked out yet.
pub(crate) async fn start() -> App {
    let mpm = Mpm::builder().build();
    let dir = tempfile::tempdir().unwrap();

    let path = dir.path().join("service.toml");
    std::fs::write(&path, "[agents]\nmax_active = 4\n").unwrap();
    let settings = mpm.config("service", &path).build().unwrap();
    let limits = settings
        .section::<HashMap<String, usize>>("agents")
        .unwrap();

    let pg = mpm
        .pool("pg", PgManager::from_url(&Service::Postgres.url()).unwrap())
        .max_size(NonZeroUsize::new(limits["max_active"]).unwrap())
        .circuit_breaker(mpm.breaker("pg").build().unwrap())
        .build()
        .await
        .unwrap();
    let profiles: TieredCache<String> = mpm
        .cache("profiles")
        .l1(mpm_core::MemoryTier::builder().default_ttl(Some(Duration::from_secs(300))))
        .l2(mpm
            .disk_tier("profiles", dir.path().join("profiles"))
            .open()
            .unwrap())
        .build()
        .unwrap();

    let others = others(&mpm).await;
    App {
        mpm,
        profiles,
        pg,
        settings,
        _others: others,
        _dir: dir,
    }
}

/// A keyed pool, a lazy value, an async one, a lazy registry, an optimizer and a batcher,
/// each used once, so that the exposition holds every crate's series.
async fn others(mpm: &Mpm) -> Vec<Box<dyn Any>> {
    let sessions = mpm
        .keyed_pool(
            "sessions",
            keyed::from_fns(
                |client: &String| {
                    std::future::ready(Ok::<_, std::io::Error>(format!("session of {client}")))
                },
                |_: &String, _: &String| true,
            ),
        )
        .build()
        .unwrap();
    drop(sessions.get("dashboard".to_owned()).await.unwrap());

    let model = mpm
        .lazy("model", || Ok::<_, std::io::Error>("sonnet".to_owned()))
        .build()
        .unwrap();
    model.get_or_init().unwrap();
    let catalog = mpm
        .async_lazy("catalog", || async { Ok::<_, std::io::Error>(AGENTS) })
        .build()
        .unwrap();
    catalog.get_or_init().await.unwrap();
    let services = mpm
        .lazy_registry("services")
        .register_fn("clock", |_: &Resolver| Ok(0_u64))
        .build()
        .unwrap();
    services.get::<u64>("clock").unwrap();

    let optimizer = mpm
        .optimizer("memories", Options::default())
        .build()
        .unwrap();
    optimizer
        .optimize_bytes(b"# Memory\n\n## Learnings\n- Use pathlib\n- use   pathlib\n")
        .unwrap();
    let events = mpm
        .batcher("dashboard", NonZeroUsize::new(64).unwrap(), Overflow::Wait)
        .build(|_: Batch<&'static str, String>| async { Ok::<_, std::io::Error>(()) })
        .unwrap();
    events.push("agent_started", "qa".to_owned()).await.unwrap();
    events.flush().await.unwrap();
    vec![
        Box::new(sessions),
        Box::new(model),
        Box::new(catalog),
        Box::new(services),
        Box::new(optimizer),
        Box::new(events),
    ]
}

impl App {
    /// The profile of `agent`, from the cache or, on a miss, from PostgreSQL.
    pub(crate) async fn profile(&self, agent: usize) -> String {
        self.profiles
            .get_or_load(&format!("agent:{agent}"), || async {
                let conn = self.pg.get().await.map_err(|e| e.to_string())?;
                let row = conn
                    .query_one(
                        "SELECT 'profile of agent ' || $1::text",
                        &[&agent.to_string()],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(row.get::<_, String>(0))
            })
            .await
            .unwrap()
    }

    /// A day of work: every agent's profile loaded once (20 misses, 20 checkouts),
    /// one health check (the 21st checkout), then 24 more rounds of reads (480 hits).
    pub(crate) async fn run_day(&self) {
        for agent in 0..AGENTS {
            assert_eq!(
                self.profile(agent).await,
                format!("profile of agent {agent}")
            );
        }
        let conn = self.pg.get().await.unwrap();
        assert_eq!(
            conn.query_one("SELECT 1", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
            1
        );
        drop(conn);
        for _ in 0..24 {
            for agent in 0..AGENTS {
                self.profile(agent).await;
            }
        }
    }
}
