//! The dashboard server under bad clients: cross-origin upgrades, clients over the cap,
//! oversized and malformed messages, and a client that never reads are refused or dropped,
//! while a good client keeps its updates.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mpm_core::metrics::Registry;
use mpm_demo::hub::{Hub, Limits};
use mpm_demo::server::{AppState, Server};
use parking_lot::RwLock;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn start(limits: Limits) -> (Server, Hub, Registry) {
    let registry = Registry::default();
    let hub = Hub::new(limits, &registry).unwrap();
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        AppState {
            hub: hub.clone(),
            registry: registry.clone(),
            figures: Arc::new(RwLock::new("[]".into())),
        },
    )
    .await
    .unwrap();
    (server, hub, registry)
}

async fn connect(server: &Server) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr()))
        .await
        .unwrap();
    // The greeting: the client is registered from here on.
    let hello = next_text(&mut socket).await;
    assert!(hello.contains("\"figures\""), "{hello}");
    socket
}

async fn next_text(socket: &mut Socket) -> String {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("no error");
        match m {
            Message::Text(t) => return t.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Reads until the server closes the connection; returns the close frame's code if any.
async fn closed(socket: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("closed in time")
        {
            None | Some(Err(_)) => return None,
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
        }
    }
}

fn counter(registry: &Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    registry
        .snapshot()
        .get(name, labels)
        .map_or(0.0, mpm_core::metrics::Value::as_f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_are_refused_and_the_good_one_keeps_its_updates() {
    let limits = Limits {
        max_clients: NonZeroUsize::new(4).unwrap(),
        queue: NonZeroUsize::new(8).unwrap(),
        max_message_bytes: NonZeroUsize::new(1024).unwrap(),
    };
    let (server, hub, registry) = start(limits).await;
    let mut good = connect(&server).await;

    // A page from another origin is refused before the upgrade.
    let mut request = format!("ws://{}/ws", server.addr())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("cross-origin upgrade not refused: {other:?}"),
    }
    assert_eq!(
        counter(
            &registry,
            "mpm_demo_ws_refused_total",
            &[("reason", "origin")]
        ),
        1.0
    );

    // A malformed message closes that client (policy violation) and is counted.
    let mut malformed = connect(&server).await;
    malformed.send(Message::text("{not json")).await.unwrap();
    assert_eq!(closed(&mut malformed).await, Some(1008));

    // An oversized message closes that client too.
    let mut oversized = connect(&server).await;
    let _ = oversized.send(Message::text("x".repeat(64 * 1024))).await;
    let _ = closed(&mut oversized).await;

    // A client that never reads is dropped once its queue is full; nobody else is.
    let mut slow = connect(&server).await;
    let slow_ping = slow.send(Message::text(r#"{"type":"ping","id":1}"#)).await;
    assert!(slow_ping.is_ok());

    // Over the cap: good + slow hold two places of four; fill the rest and try one more.
    let _a = connect(&server).await;
    let _b = connect(&server).await;
    match tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr())).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("a client over the cap was let in: {other:?}"),
    }

    // Through all of that the good client gets every update, in order. The updates are large
    // (32 KiB, 16 MiB in all), so the client that never reads fills its socket's buffers and
    // then its queue.
    let pad = "x".repeat(32 * 1024);
    for i in 0..512 {
        let update = format!("{{\"type\":\"event\",\"seq\":{i},\"pad\":\"{pad}\"}}");
        hub.broadcast(update.clone());
        assert_eq!(next_text(&mut good).await, update);
    }
    assert!(
        hub.dropped_slow() >= 1,
        "the client that never reads was not dropped"
    );
    assert!(counter(&registry, "mpm_demo_ws_malformed_total", &[]) >= 2.0);
    // A good client's ping is answered.
    good.send(Message::text(r#"{"type":"ping","id":9}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut good).await, r#"{"type":"pong","id":9}"#);
}

#[tokio::test]
async fn metrics_and_health_are_served() {
    let (server, hub, _registry) = start(Limits::default()).await;
    hub.broadcast("x");
    let body = http_get(server.addr(), "/metrics").await;
    assert!(body.contains("mpm_demo_ws_broadcasts_total"), "{body}");
    assert_eq!(http_get(server.addr(), "/health").await, "ok\n");
    let page = http_get(server.addr(), "/").await;
    assert!(page.contains("<canvas class=\"chart\""));
    // The page fetches nothing from the network: no absolute URLs but its own WebSocket.
    assert!(
        !page.contains("https://") && !page.contains("src=\"http"),
        "the page loads remote resources"
    );
}

/// The whole response to a plain `GET path` (status line, headers, body).
async fn http_request(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    response
}

/// The body of a `GET path` answered 200.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let response = http_request(addr, path).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The WebSocket library's own answers (a pong to a ping, the close handshake) go out through
/// the hub in order with the broadcasts, and a message sent with the upgrade request, before the
/// server answered it, is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_answers_and_early_messages_go_through_the_hub() {
    let (server, hub, _registry) = start(Limits::default()).await;
    let mut socket = connect(&server).await;
    socket
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    hub.broadcast("after the ping");
    let mut pong = None;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("no error");
        match m {
            Message::Pong(p) => pong = Some(p.to_vec()),
            Message::Text(t) if t.as_str() == "after the ping" => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    // The pong may go out before or after the broadcast; it does go out, whole.
    if pong.is_none() {
        match next_any(&mut socket).await {
            Message::Pong(p) => pong = Some(p.to_vec()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pong.as_deref(), Some(&b"are you there"[..]));
    socket.close(None).await.unwrap();
    match next_any(&mut socket).await {
        Message::Close(_) => {}
        other => panic!("no close answer: {other:?}"),
    }

    // A ping sent in the same write as the upgrade request.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let masked_ping = {
        // {"type":"ping","id":5}, masked with a zero key (RFC 6455 §5.3).
        let payload = br#"{"type":"ping","id":5}"#;
        let mut f = vec![0x81, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    };
    let mut request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr()
    )
    .into_bytes();
    request.extend_from_slice(&masked_ping);
    tcp.write_all(&request).await.unwrap();
    let mut seen = Vec::new();
    let expected = br#"{"type":"pong","id":5}"#;
    while !seen.windows(expected.len()).any(|w| w == expected) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before the pong: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 101"));
    assert!(
        String::from_utf8_lossy(&seen).contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the accept key of RFC 6455's example"
    );
}

async fn next_any(socket: &mut Socket) -> Message {
    tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a message in time")
        .expect("the socket is open")
        .expect("no error")
}

#[tokio::test]
async fn a_plain_request_for_the_feed_is_not_upgraded() {
    let (server, hub, _registry) = start(Limits::default()).await;
    let response = http_request(server.addr(), "/ws").await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(hub.is_empty());
}
