//! Serves the dashboard with a synthetic feed, for trying the page in a browser.
use std::sync::Arc;
use std::time::Duration;
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let registry = mpm_core::metrics::Registry::default();
        let hub = mpm_demo::hub::Hub::new(Default::default(), &registry).unwrap();
        let state = mpm_demo::server::AppState {
            hub: hub.clone(),
            registry,
            figures: Arc::new(parking_lot::RwLock::new("[]".into())),
        };
        let server = mpm_demo::server::Server::bind("127.0.0.1:0".parse().unwrap(), state)
            .await
            .unwrap();
        println!("http://{}/", server.addr());
        let mut i = 0u64;
        let _feed = mpm_demo::live::spawn_feed(hub, Duration::from_millis(200), move || {
            i += 1;
            mpm_demo::live::LiveStats {
                t_ms: i * 200,
                hit_rate: 90.0 + (i % 7) as f64,
                load_p50_us: 1.0 + (i % 3) as f64,
                load_p99_us: 20.0 + (i % 5) as f64,
                pool_size: 5,
                pool_in_use: i % 5,
                pool_waiting: i % 2,
                events_per_s: 100.0 + i as f64,
            }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
}
