//! Runs only the demo's WebSocket step (50 clients, 200 broadcasts, 1,000 updates) a few times
//! and prints its figures, for working on the broadcast path without the whole scenario.
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for _ in 0..runs {
            let registry = mpm_core::metrics::Registry::default();
            let hub = mpm_demo::hub::Hub::new(Default::default(), &registry).expect("hub");
            let state = mpm_demo::server::AppState {
                hub: hub.clone(),
                registry,
                figures: Arc::new(parking_lot::RwLock::new("[]".into())),
            };
            let server =
                mpm_demo::server::Server::bind("127.0.0.1:0".parse().expect("addr"), state)
                    .await
                    .expect("bind");
            let plan = mpm_demo::events::EventPlan {
                clients: 50,
                broadcasts: 200,
                updates: 1_000,
                update_interval: Duration::from_millis(1),
            };
            let e = mpm_demo::events::measure(server.addr(), &hub, plan)
                .await
                .expect("measure");
            println!(
                "broadcast_50_ms {:.3} ws_connect_ms {:.3} update_latency_p99_ms {:.3} lost {}",
                e.broadcast_ms, e.connect_ms, e.update_p99_ms, e.lost
            );
            server.shutdown().await;
        }
    });
}
