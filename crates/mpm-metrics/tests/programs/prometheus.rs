//! A real Prometheus server scrapes the HTTP endpoint; the figures are read back through
//! its query API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mpm_metrics::{Registry, Unit};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on `addr` over HTTP/1.0: the body, or `None` when the server is not answering.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of an instant query's single result, once Prometheus has one.
fn query(prom: SocketAddr, promql: &str) -> Option<f64> {
    let body = http_get(
        prom,
        &format!("/api/v1/query?query={}", percent_encode(promql)),
    )?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    let [one] = result.as_slice() else {
        return None;
    };
    one["value"][1].as_str()?.parse().ok()
}

/// Polls Prometheus (it scrapes every 200 ms) until `promql` returns `want`.
fn wait_for(prom: SocketAddr, promql: &str, want: f64, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        last = query(prom, promql);
        if last == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{promql} = {last:?}, expected {want}; server log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

pub(crate) fn scrapes_the_endpoint_and_answers_queries() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registry = Registry::default();
    let cache = registry.scope("cache", "profiles").unwrap();
    let hits = cache
        .counter(
            "hits_total",
            "Lookups answered by a tier.",
            &[("tier", "l1")],
        )
        .unwrap();
    let pool = registry.scope("pool", "pg").unwrap();
    let acquire = pool
        .histogram(
            "acquire_seconds",
            "Time to get a connection.",
            Unit::Seconds,
            &[],
        )
        .unwrap();
    hits.add(20);
    for ms in 1..=21u64 {
        acquire.record(ms * 1_000_000);
    }
    let endpoint = rt
        .block_on(
            mpm_metrics::http::MetricsServer::builder(&registry)
                .listen("127.0.0.1:0".parse().unwrap())
                .bearer_token("scrape-token")
                .build(),
        )
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let prom: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(dir.path().join("token"), "scrape-token").unwrap();
    let config = format!(
        "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n\
         scrape_configs:\n  - job_name: mpm\n    authorization:\n      credentials_file: {}\n    \
         static_configs:\n      - targets: ['{}']\n",
        dir.path().join("token").display(),
        endpoint.local_addr()
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let log = dir.path().join("prometheus.log");
    let _server = Server(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus starts"),
    );

    // The target is up (the token was accepted), then the figures arrive as recorded.
    wait_for(prom, "up{job=\"mpm\"}", 1.0, &log);
    wait_for(
        prom,
        "mpm_cache_hits_total{name=\"profiles\",tier=\"l1\"}",
        20.0,
        &log,
    );
    wait_for(
        prom,
        "mpm_pool_acquire_seconds_count{name=\"pg\"}",
        21.0,
        &log,
    );
    wait_for(
        prom,
        "mpm_pool_acquire_seconds_bucket{name=\"pg\",le=\"0.01\"}",
        10.0,
        &log,
    );
    // Recording goes on and the next scrapes see it.
    hits.add(5);
    wait_for(
        prom,
        "mpm_cache_hits_total{name=\"profiles\",tier=\"l1\"}",
        25.0,
        &log,
    );
    rt.block_on(endpoint.shutdown());
}
