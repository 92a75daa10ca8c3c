//! mpm-metrics beside prometheus, prometheus-client, hdrhistogram and the metrics crate.

// criterion's macros generate public functions without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mpm_metrics::{Registry, Unit};

/// 1,024 values spread log-uniformly over 1 ns .. 10 s, the same for every histogram.
fn sample_values() -> Vec<u64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let exp = (x % 1000) as f64 / 1000.0 * 10.0; // 10^0 .. 10^10
            10f64.powf(exp) as u64
        })
        .collect()
}

fn counter(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter_inc");
    let registry = Registry::default();
    let ours = registry
        .counter("requests_total", &[("route", "/a")])
        .unwrap();
    g.bench_function("mpm", |b| b.iter(|| black_box(&ours).inc()));
    let prom = prometheus::IntCounter::new("requests_total", "requests").unwrap();
    g.bench_function("prometheus", |b| b.iter(|| black_box(&prom).inc()));
    let handle = metrics::Counter::from_arc(Arc::new(AtomicU64::new(0)));
    g.bench_function("metrics", |b| b.iter(|| black_box(&handle).increment(1)));
    g.finish();
}

/// Two threads incrementing one counter at once: the contended case.
fn counter_contended(c: &mut Criterion) {
    const PER_THREAD: u64 = 1_000_000;
    fn run(iters: u64, inc: &(dyn Fn() + Sync)) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..PER_THREAD {
                            inc();
                        }
                    });
                }
            });
        }
        start.elapsed()
    }
    let mut g = c.benchmark_group("counter_inc_2_threads_x1m");
    g.sample_size(10);
    let ours = mpm_metrics::Counter::new();
    g.bench_function("mpm", |b| {
        b.iter_custom(|n| run(n, &|| black_box(&ours).inc()))
    });
    let prom = prometheus::IntCounter::new("c", "c").unwrap();
    g.bench_function("prometheus", |b| {
        b.iter_custom(|n| run(n, &|| black_box(&prom).inc()))
    });
    let handle = metrics::Counter::from_arc(Arc::new(AtomicU64::new(0)));
    g.bench_function("metrics", |b| {
        b.iter_custom(|n| run(n, &|| black_box(&handle).increment(1)))
    });
    g.finish();
}

fn histogram(c: &mut Criterion) {
    let values = sample_values();
    let mut g = c.benchmark_group("histogram_record");
    let registry = Registry::default();
    let ours = registry.histogram("latency", &[], Unit::Seconds).unwrap();
    let mut i = 0usize;
    g.bench_function("mpm", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            ours.record(black_box(values[i]));
        })
    });
    let mut hdr = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
    g.bench_function("hdrhistogram", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            hdr.saturating_record(black_box(values[i]));
        })
    });
    let prom =
        prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("latency", "latency"))
            .unwrap();
    let as_secs: Vec<f64> = values.iter().map(|v| *v as f64 * 1e-9).collect();
    g.bench_function("prometheus", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            prom.observe(black_box(as_secs[i]));
        })
    });
    g.finish();
}

fn timer(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer_start_stop");
    let registry = Registry::default();
    let timer = registry.timer("op", &[]).unwrap();
    g.bench_function("mpm_guard", |b| {
        b.iter(|| {
            let guard = timer.start();
            drop(black_box(guard));
        })
    });
    g.bench_function("std_instant_pair", |b| {
        b.iter(|| {
            let start = Instant::now();
            black_box(start.elapsed())
        })
    });
    g.finish();
}

fn render(c: &mut Criterion) {
    const SERIES: usize = 1000;
    let mut g = c.benchmark_group("prometheus_render_1000_series");
    let registry = Registry::default();
    registry
        .describe("requests_total", "Requests served.")
        .unwrap();
    for i in 0..SERIES {
        let route = format!("/agents/{i}");
        registry
            .counter("requests_total", &[("method", "GET"), ("route", &route)])
            .unwrap()
            .add(i as u64);
    }
    let mut buf = String::new();
    g.bench_function("mpm", |b| {
        b.iter(|| {
            buf.clear();
            registry.render_prometheus_into(&mut buf);
            black_box(buf.len())
        })
    });

    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter as PcCounter;
    use prometheus_client::metrics::family::Family;
    let mut pc_registry = prometheus_client::registry::Registry::default();
    let family = Family::<Vec<(String, String)>, PcCounter>::default();
    pc_registry.register("requests", "Requests served.", family.clone());
    for i in 0..SERIES {
        family
            .get_or_create(&vec![
                ("method".to_owned(), "GET".to_owned()),
                ("route".to_owned(), format!("/agents/{i}")),
            ])
            .inc_by(i as u64);
    }
    let mut pc_buf = String::new();
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            pc_buf.clear();
            encode(&mut pc_buf, &pc_registry).unwrap();
            black_box(pc_buf.len())
        })
    });
    g.finish();
}

/// 10,000 series as an application with 1,000 components exposes them: per component nine
/// counters and one gauge that a collector sets at scrape time. prometheus-client holds the
/// same series (its gauges set beforehand, since it has no collectors to run).
fn render_10k(c: &mut Criterion) {
    render_10k_counted_by(c, "prometheus_render_10000_series_with_collectors", 0);
}

/// The same 10,000 series after `threads` threads (besides the bench's own) have each added
/// to every counter of both registries: a counter's value is then spread over several
/// per-thread shards, which a render must all read, as in a server whose workers count.
fn render_10k_counted(c: &mut Criterion) {
    for threads in [2, 8] {
        render_10k_counted_by(
            c,
            &format!("prometheus_render_10000_series_counted_by_{threads}_threads"),
            threads,
        );
    }
}

/// Thread `t` of `threads` adds `t + 1` to every counter, all threads at once.
fn add_from_threads<C: Sync>(threads: usize, counters: &[C], add: impl Fn(&C, u64) + Sync) {
    std::thread::scope(|s| {
        for t in 0..threads {
            let add = &add;
            s.spawn(move || {
                for c in counters {
                    add(c, t as u64 + 1);
                }
            });
        }
    });
}

fn render_10k_counted_by(c: &mut Criterion, group: &str, threads: usize) {
    const COMPONENTS: usize = 1000;
    const TIERS: [&str; 9] = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    let mut g = c.benchmark_group(group);
    // The default cap (1,000 label sets per metric) would fold most hits into one series.
    let registry = Registry::builder()
        .max_series_per_metric(std::num::NonZeroUsize::new(10_000).unwrap())
        .build();
    let mut keep = Vec::new();
    let mut counters = Vec::new();
    for i in 0..COMPONENTS {
        let scope = registry.scope("cache", &format!("c{i}")).unwrap();
        for tier in TIERS {
            let hits = scope
                .counter("hits_total", "Lookups answered.", &[("tier", tier)])
                .unwrap();
            hits.add(i as u64);
            counters.push(hits);
        }
        let state = Arc::new(AtomicU64::new(i as u64));
        let entries = scope.int_gauge("entries", "Entries held.", &[]).unwrap();
        scope.collector(&state, move |s| {
            entries.set(s.load(std::sync::atomic::Ordering::Relaxed) as i64)
        });
        keep.push((scope, state));
    }
    add_from_threads(threads, &counters, |c, n| c.add(n));
    assert_eq!(registry.collectors(), COMPONENTS);
    let series: usize = registry
        .snapshot()
        .metrics
        .iter()
        .map(|m| m.series.len())
        .sum();
    assert_eq!(series, COMPONENTS * (TIERS.len() + 1));
    let added: u64 = (1..=threads as u64).sum();
    assert_eq!(counters[9].get(), 1 + added);
    let mut buf = String::new();
    g.bench_function("mpm", |b| {
        b.iter(|| {
            buf.clear();
            registry.render_prometheus_into(&mut buf);
            black_box(buf.len())
        })
    });

    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter as PcCounter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge as PcGauge;
    let mut pc_registry = prometheus_client::registry::Registry::default();
    let hits = Family::<Vec<(String, String)>, PcCounter>::default();
    let entries = Family::<Vec<(String, String)>, PcGauge>::default();
    pc_registry.register("mpm_cache_hits", "Lookups answered.", hits.clone());
    pc_registry.register("mpm_cache_entries", "Entries held.", entries.clone());
    let mut pc_counters = Vec::new();
    for i in 0..COMPONENTS {
        let name = format!("c{i}");
        for tier in TIERS {
            let counter = hits
                .get_or_create(&vec![
                    ("name".to_owned(), name.clone()),
                    ("tier".to_owned(), tier.to_owned()),
                ])
                .clone();
            counter.inc_by(i as u64);
            pc_counters.push(counter);
        }
        entries
            .get_or_create(&vec![("name".to_owned(), name)])
            .set(i as i64);
    }
    add_from_threads(threads, &pc_counters, |c, n| {
        c.inc_by(n);
    });
    assert_eq!(pc_counters[9].get(), 1 + added);
    let mut pc_buf = String::new();
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            pc_buf.clear();
            encode(&mut pc_buf, &pc_registry).unwrap();
            black_box(pc_buf.len())
        })
    });
    g.finish();
    drop(keep);
}

/// One `GET /metrics` of 1,000 series through the HTTP endpoint on loopback, on a kept-alive
/// connection: request written, whole answer read. An upper bound of the server's time.
fn http_scrape(c: &mut Criterion) {
    use std::io::{Read, Write};
    const SERIES: usize = 1000;
    let mut g = c.benchmark_group("http_scrape_1000_series");
    let registry = Registry::default();
    for i in 0..SERIES {
        registry
            .counter("requests_total", &[("route", &format!("/agents/{i}"))])
            .unwrap()
            .add(i as u64);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(
            mpm_metrics::http::MetricsServer::builder(&registry)
                .listen("127.0.0.1:0".parse().unwrap())
                .build(),
        )
        .unwrap();
    let addr = server.local_addr();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut scrape = move || {
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
            .unwrap();
        // Read the head, then as many body bytes as Content-Length says.
        let mut have = 0;
        let mut want = usize::MAX;
        while have < want {
            let n = stream.read(&mut buf[have..]).unwrap();
            assert!(n > 0, "the server closed the connection");
            have += n;
            if want == usize::MAX
                && let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n")
            {
                let head = std::str::from_utf8(&buf[..end])
                    .unwrap()
                    .to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                want = end + 4 + len;
            }
        }
        have
    };
    assert!(scrape() > SERIES * 20);
    g.bench_function("mpm_round_trip", |b| b.iter(|| black_box(scrape())));
    g.finish();
    drop(server);
}

fn snapshot(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_snapshot");
    let values = sample_values();
    let h = mpm_metrics::Histogram::new();
    for v in &values {
        h.record(*v);
    }
    g.bench_function("mpm", |b| b.iter(|| black_box(h.snapshot().p99)));
    let mut hdr = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
    for v in &values {
        hdr.saturating_record(*v);
    }
    g.bench_function("hdrhistogram", |b| {
        b.iter_batched(
            || (),
            |_| black_box(hdr.value_at_quantile(0.99)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = counter, counter_contended, histogram, timer, render, render_10k, render_10k_counted, http_scrape, snapshot
}
criterion_main!(benches);
