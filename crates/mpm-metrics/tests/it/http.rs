//! The HTTP endpoint: routes, token, request limits, connection cap, slow clients.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use mpm_metrics::http::{MetricsServer, ServeError};
use mpm_metrics::{Exposition, PROMETHEUS_CONTENT_TYPE, Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` as is on a new connection and reads the whole answer; a connection closed
/// or reset without one gives status 0.
async fn raw(addr: SocketAddr, request: &str) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut bytes = Vec::new();
    if s.write_all(request.as_bytes()).await.is_ok() {
        // A reset after part of an answer keeps the part.
        let _ = s.read_to_end(&mut bytes).await;
    }
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

async fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"),
    )
    .await
}

fn sample() -> Registry {
    let r = Registry::default();
    let s = r.shared_scope("cache", "profiles").unwrap();
    s.counter("hits_total", "Hits.", &[]).unwrap().add(7);
    s.histogram("load_seconds", "Loads.", Unit::Seconds, &[])
        .unwrap()
        .record(2_000_000);
    r
}

#[tokio::test]
async fn serves_metrics_json_and_health_on_loopback() {
    let r = sample();
    let server = MetricsServer::builder(&r)
        .listen(any_port())
        .build()
        .await
        .unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());

    let m = get(addr, "/metrics", "").await;
    assert_eq!(m.status, 200);
    assert!(
        m.head
            .contains(&format!("content-type: {PROMETHEUS_CONTENT_TYPE}")),
        "{}",
        m.head
    );
    let e = Exposition::parse(&m.body).unwrap();
    assert_eq!(
        e.value("mpm_cache_hits_total", &[("name", "profiles")]),
        Some(7.0)
    );

    let j = get(addr, "/metrics.json", "").await;
    assert_eq!(j.status, 200);
    assert!(j.head.contains("content-type: application/json"));
    let v: serde_json::Value = serde_json::from_str(&j.body).unwrap();
    assert!(v["metrics"].as_array().unwrap().len() >= 2);

    let h = get(addr, "/health", "").await;
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
    assert_eq!(get(addr, "/nope", "").await.status, 404);
    let post = raw(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(post.status, 405);
    assert!(post.head.contains("allow: get, head"));
    let head = raw(
        addr,
        "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    server.shutdown().await;
}

#[tokio::test]
async fn the_default_address_is_loopback() {
    assert!(mpm_metrics::http::DEFAULT_ADDR.ip().is_loopback());
    // A server built without an address binds loopback (or says which address it could not
    // bind, when the default port is taken on this machine).
    match MetricsServer::builder(&sample()).build().await {
        Ok(server) => {
            assert!(server.local_addr().ip().is_loopback());
            server.shutdown().await;
        }
        Err(ServeError::Bind { addr, .. }) => assert!(addr.ip().is_loopback()),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// Without any limit set, a request head is bounded and so are connections.
#[tokio::test]
async fn requests_and_connections_are_bounded_by_default() {
    let r = sample();
    let server = MetricsServer::builder(&r)
        .listen(any_port())
        .build()
        .await
        .unwrap();
    let addr = server.local_addr();
    let huge = format!("X-Filler: {}\r\n", "a".repeat(64 * 1024));
    assert_eq!(get(addr, "/metrics", &huge).await.status, 431);
    // Fill every slot with a kept-alive connection; the next one is closed unanswered.
    let mut idle = Vec::new();
    let mut refused = false;
    for _ in 0..1_000 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 256];
        let answered = s
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .is_ok()
            && s.read(&mut buf).await.is_ok_and(|n| n > 0);
        if !answered {
            refused = true;
            break;
        }
        idle.push(s);
    }
    assert!(refused, "1,000 idle connections were all kept");
    assert!(
        !idle.is_empty() && idle.len() < 1_000,
        "{} kept",
        idle.len()
    );
    drop(idle);
    server.shutdown().await;
}

#[tokio::test]
async fn a_bearer_token_guards_the_metrics_but_not_health() {
    let r = sample();
    let server = MetricsServer::builder(&r)
        .listen(any_port())
        .bearer_token("s3cret")
        .build()
        .await
        .unwrap();
    let addr = server.local_addr();
    let none = get(addr, "/metrics", "").await;
    assert_eq!(none.status, 401);
    assert!(none.head.contains("www-authenticate: bearer"));
    assert!(!none.body.contains("mpm_cache"));
    assert_eq!(
        get(addr, "/metrics.json", "Authorization: Bearer wrong!\r\n")
            .await
            .status,
        401
    );
    assert_eq!(
        get(addr, "/metrics", "Authorization: Bearer s3cret\r\n")
            .await
            .status,
        200
    );
    assert_eq!(get(addr, "/health", "").await.status, 200);
    for bad in ["", "two words", "tab\t"] {
        let err = MetricsServer::builder(&r)
            .listen(any_port())
            .bearer_token(bad)
            .build()
            .await
            .unwrap_err();
        assert!(matches!(err, ServeError::InvalidToken), "{err}");
    }
}

#[tokio::test]
async fn requests_are_bounded_in_size() {
    let r = sample();
    let server = MetricsServer::builder(&r)
        .listen(any_port())
        .max_request_bytes(NonZeroUsize::new(8 * 1024).unwrap())
        .build()
        .await
        .unwrap();
    let addr = server.local_addr();
    let huge = format!("X-Filler: {}\r\n", "a".repeat(64 * 1024));
    let big_head = get(addr, "/metrics", &huge).await;
    assert_eq!(big_head.status, 431, "{}", big_head.head);
    let big_body = raw(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(big_body.status, 413);
    let garbage = raw(addr, "\x16\x03\x01 not http at all\r\n\r\n").await;
    assert_eq!(garbage.status, 400);
    // The server is still there for well-behaved clients.
    assert_eq!(get(addr, "/metrics", "").await.status, 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let r = sample();
    let server = MetricsServer::builder(&r)
        .listen(any_port())
        .max_connections(NonZeroUsize::new(2).unwrap())
        .build()
        .await
        .unwrap();
    let addr = server.local_addr();
    // Two idle connections take both slots (accepted in order, before the third).
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        // Answered, and kept alive: the slot stays taken.
        assert!(s.read(&mut buf).await.unwrap() > 0);
        idle.push(s);
    }
    let refused = get(addr, "/metrics", "").await;
    assert_eq!(
        refused.status, 0,
        "closed without an answer: {}",
        refused.head
    );
    drop(idle);
    // Once the idle clients are gone their slots come back (the server notices the close).
    let mut served = false;
    for _ in 0..200 {
        if get(addr, "/metrics", "").await.status == 200 {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served);
}

#[tokio::test]
async fn a_client_that_stalls_its_headers_is_cut_off_by_the_header_timeout() {
    let r = sample();
    let server = MetricsServer::builder(&r)
        .listen(any_port())
        .header_timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let mut slow = TcpStream::connect(server.local_addr()).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let mut rest = Vec::new();
    // The server closes the connection (with a 408 or nothing): read_to_end returns.
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the stalled connection was not closed");
    assert!(!String::from_utf8_lossy(&rest).contains("mpm_cache"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_stalled_clients_stall_neither_recording_nor_other_clients() {
    let r = Registry::default();
    // A large exposition, so a client that does not read fills its socket buffers.
    for i in 0..5_000 {
        r.counter("filler_total", &[("i", &i.to_string())])
            .unwrap()
            .inc();
    }
    let server = MetricsServer::builder(&r)
        .listen(any_port())
        .build()
        .await
        .unwrap();
    let addr = server.local_addr();
    // Ten clients ask for /metrics and never read the answer; ten more send half a request.
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req: &[u8] = if i % 2 == 0 {
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        } else {
            b"GET /metrics HTTP/1.1\r\nHo"
        };
        s.write_all(req).await.unwrap();
        stalled.push(s);
    }
    // Meanwhile recording, registering and scraping go on.
    let c = r.counter("after_total", &[]).unwrap();
    for _ in 0..1000 {
        c.inc();
    }
    r.scope("cache", "new")
        .unwrap()
        .int_gauge("entries", "E.", &[])
        .unwrap()
        .set(1);
    for _ in 0..5 {
        let m = get(addr, "/metrics", "").await;
        assert_eq!(m.status, 200);
        assert!(m.body.contains("after_total 1000\n"));
    }
    drop(stalled);
}
