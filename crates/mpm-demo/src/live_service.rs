//! After the scenario: the service keeps running a light workload and serves the dashboard.
//!
//! The workload looks profiles up (the same Zipf law as step 4), records a deployment now and
//! then through the database pool, and broadcasts an agent event every few milliseconds; the
//! feed samples it twice a second for the dashboard's charts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::Error;
use crate::deploy::{Deployment, DeploymentLog};
use crate::live::{LiveStats, spawn_feed};
use crate::percentile::percentile;
use crate::profiles::{ProfileStore, Zipf};
use crate::scenario::{Demo, ZIPF_S};
use crate::server::{AppState, Server};

/// What the workload has done since the feed last looked.
#[derive(Default)]
struct Window {
    lookups: u64,
    hits: u64,
    latencies_ns: Vec<u64>,
}

/// The running dashboard; dropping it stops the workload and the server.
pub struct LiveService {
    addr: SocketAddr,
    server: Option<Server>,
    tasks: Vec<JoinHandle<()>>,
}

impl LiveService {
    /// Serves the dashboard of `demo` on `addr` and starts the light workload.
    pub async fn start(demo: &Demo, addr: SocketAddr) -> Result<Self, Error> {
        let service = &demo.service;
        let server = Server::bind(
            addr,
            AppState {
                hub: service.hub.clone(),
                registry: demo.mpm.registry().clone(),
                figures: Arc::clone(&service.figures),
            },
        )
        .await?;
        let window = Arc::new(Mutex::new(Window::default()));
        let events = Arc::new(AtomicU64::new(0));

        let workload = {
            let cache = service.profiles.clone();
            let store = service.store.clone();
            let database = service.database.clone();
            let hub = service.hub.clone();
            let window = Arc::clone(&window);
            let events = Arc::clone(&events);
            let agents: Vec<String> = service.agents.iter().map(|a| a.meta.name.clone()).collect();
            tokio::spawn(async move {
                let mut zipf = Zipf::new(store.len(), ZIPF_S, 7);
                let mut tick = tokio::time::interval(Duration::from_millis(5));
                let mut n: u64 = 0;
                loop {
                    tick.tick().await;
                    n += 1;
                    let mut local = Window::default();
                    for _ in 0..20 {
                        let i = zipf.sample();
                        let key = ProfileStore::key(i);
                        let t = Instant::now();
                        // One lookup: a hit in either tier runs no loader.
                        let mut loaded = false;
                        let store = &store;
                        let _ = cache
                            .get_or_load(&key, || {
                                loaded = true;
                                async move { store.load(i).map(Arc::new) }
                            })
                            .await;
                        local.lookups += 1;
                        local.hits += u64::from(!loaded);
                        local.latencies_ns.push(t.elapsed().as_nanos() as u64);
                    }
                    {
                        let mut w = window.lock();
                        w.lookups += local.lookups;
                        w.hits += local.hits;
                        w.latencies_ns.extend(local.latencies_ns);
                    }
                    let agent = &agents[(n as usize) % agents.len().max(1)];
                    hub.broadcast(format!(
                        "{{\"type\":\"event\",\"seq\":{n},\"agent\":\"{agent}\",\"state\":\"heartbeat\"}}"
                    ));
                    events.fetch_add(1, Ordering::Relaxed);
                    if n.is_multiple_of(20) {
                        let d = Deployment {
                            id: format!("live-{n}"),
                            agent: agent.clone(),
                            version: "live".into(),
                            model: "sonnet".into(),
                            path: format!("{agent}.md").into(),
                            bytes: 0,
                        };
                        let _ = database.record(&d).await;
                    }
                }
            })
        };

        let feed = {
            let database = service.database.clone();
            let started = Instant::now();
            let mut last = Instant::now();
            let mut last_events = 0;
            spawn_feed(service.hub.clone(), Duration::from_millis(500), move || {
                let mut w = std::mem::take(&mut *window.lock());
                let now_events = events.load(Ordering::Relaxed);
                let secs = last.elapsed().as_secs_f64().max(1e-3);
                last = Instant::now();
                let per_s = (now_events - last_events) as f64 / secs;
                last_events = now_events;
                let (size, in_use, waiting) = database.pool_status();
                let mut us = |q| percentile(&mut w.latencies_ns, q) as f64 / 1e3;
                LiveStats {
                    t_ms: started.elapsed().as_millis() as u64,
                    hit_rate: if w.lookups == 0 {
                        0.0
                    } else {
                        w.hits as f64 * 100.0 / w.lookups as f64
                    },
                    load_p50_us: us(0.5),
                    load_p99_us: us(0.99),
                    pool_size: size,
                    pool_in_use: in_use,
                    pool_waiting: waiting,
                    events_per_s: per_s,
                }
            })
        };
        Ok(Self {
            addr: server.addr(),
            server: Some(server),
            tasks: vec![workload, feed],
        })
    }

    /// The address the dashboard is served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the workload and the server.
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

impl Drop for LiveService {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
