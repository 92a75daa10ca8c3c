//! The service's HTTP side: the dashboard page, its WebSocket feed, `/metrics` and a health check.
//!
//! Routes: `GET /` the dashboard (one self-contained page), `GET /ws` the WebSocket feed,
//! `GET /metrics` the Prometheus exposition, `GET /figures.json` the run's figures,
//! `GET /health`. A WebSocket upgrade whose `Origin` is not the service's own is refused (403),
//! one over the client cap too (503); a client that sends a malformed or oversized message is
//! closed and counted; none of that disturbs the other clients.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use hyper::server::conn::http1;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use mpm_core::metrics::Registry;
use parking_lot::RwLock;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::Error;
use crate::frame;
use crate::hub::{Client, Hub, Slot};

/// The dashboard page: HTML, CSS and script in one file, fetching nothing from the network.
pub const DASHBOARD_HTML: &str = include_str!("dashboard.html");

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    /// The WebSocket clients.
    pub hub: Hub,
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// The run's figures as JSON, served at `/figures.json` and sent to new clients.
    pub figures: Arc<RwLock<String>>,
}

/// A running server; dropping it (or [`Server::shutdown`]) stops it.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and serves `state` on the current Tokio runtime.
    pub async fn bind(addr: SocketAddr, state: AppState) -> Result<Self, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let app = Router::new()
            .route("/", get(dashboard))
            .route("/ws", get(upgrade))
            .route("/metrics", get(metrics))
            .route("/figures.json", get(figures))
            .route("/health", get(|| async { "ok\n" }))
            .with_state(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app, stopped));
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on (with the port the OS chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections until `stopped`, serving each over HTTP/1.1 (with upgrades); then asks
/// the open ones to finish and waits for them. A WebSocket client, once upgraded, lives on its
/// own until it disconnects.
///
/// Connections are served by hyper directly (rather than through `axum::serve`) so that an
/// upgraded connection is the plain `TcpStream` again: the hub writes broadcast frames straight
/// to the socket.
async fn serve(listener: TcpListener, app: Router, mut stopped: oneshot::Receiver<()>) {
    let (closing_tx, closing) = watch::channel(());
    let mut connections = JoinSet::new();
    loop {
        let tcp = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) if is_connection_error(&e) => continue,
                // Out of descriptors or memory: give the others time to close some.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small frames go out at once: Nagle's algorithm would hold an event back while the
        // previous one is unacknowledged.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut closing = closing.clone();
        connections.spawn(async move {
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = closing.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing_tx.send(());
    while connections.join_next().await.is_some() {}
}

/// Errors of one incoming connection (not of the listener): skip it and go on.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD_HTML)
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.registry.render_prometheus(),
    )
        .into_response()
}

async fn figures(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.figures.read().clone(),
    )
        .into_response()
}

/// Whether the request's `Origin` (if any) is the service's own address.
///
/// Browsers send `Origin` on every WebSocket upgrade; a page from another site names its own
/// origin and is refused. A client without `Origin` (not a browser) is let in.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(HeaderValue::to_str),
    ) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

/// The `Sec-WebSocket-Key` of a WebSocket upgrade request (RFC 6455 §4.2.1), or `None` when
/// the request is not one.
fn websocket_key(headers: &HeaderMap) -> Option<&HeaderValue> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    (has_token(header::CONNECTION, "upgrade") && has_token(header::UPGRADE, "websocket") && version)
        .then(|| headers.get(header::SEC_WEBSOCKET_KEY))
        .flatten()
}

async fn upgrade(State(state): State<AppState>, mut request: Request) -> Response {
    let headers = request.headers();
    let Some(key) = websocket_key(headers) else {
        return (StatusCode::BAD_REQUEST, "not a WebSocket upgrade\n").into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    if !same_origin(headers) {
        state.hub.refuse_origin();
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
    }
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "the connection cannot be upgraded\n",
        )
            .into_response();
    };
    let Some(slot) = state.hub.reserve() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many clients\n").into_response();
    };
    let max = state.hub.limits().max_message_bytes.get();
    let hello = state.figures.read().clone();
    tokio::spawn(async move {
        // A failed upgrade (the client went away) or a connection that is not a plain TCP
        // stream ends here, freeing the place.
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() else {
            return;
        };
        serve_client(parts.io.into_inner(), parts.read_buf, slot, hello, max).await;
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// One client's connection: the hub writes to it, its messages come in.
async fn serve_client(tcp: TcpStream, read_buf: Bytes, slot: Slot, hello: String, max: usize) {
    let (read, write) = tcp.into_split();
    let client = slot.connect(write);
    let hub = client.hub().clone();
    let id = client.id();
    hub.send_to(id, &format!("{{\"type\":\"figures\",\"figures\":{hello}}}"));
    // The library zeroes its whole read buffer before each read: one the size of the largest
    // message rather than its default 128 KiB.
    let config = WebSocketConfig::default()
        .read_buffer_size(max)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let mut stream = WebSocketStream::from_partially_read(
        Inbound {
            read,
            client: &client,
        },
        read_buf.to_vec(),
        Role::Server,
        Some(config),
    )
    .await;
    let reader = async {
        while let Some(message) = stream.next().await {
            match message {
                Ok(Message::Text(text)) => match reply(text.as_str()) {
                    Some(answer) => {
                        if !hub.send_to(id, &answer) {
                            return None;
                        }
                    }
                    None => {
                        hub.count_malformed();
                        return Some((frame::POLICY, "malformed message"));
                    }
                },
                // The library answers pings and a close by itself, on the next read: after a
                // close, that read writes the answer and ends the stream.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_)) => {
                }
                Ok(Message::Binary(_)) => {
                    hub.count_malformed();
                    return Some((
                        frame::UNSUPPORTED,
                        "binary messages are not part of the protocol",
                    ));
                }
                Err(_) => {
                    // An oversized or broken frame: the connection cannot go on.
                    hub.count_malformed();
                    return None;
                }
            }
        }
        None
    };
    let close = tokio::select! {
        // Dropped as too slow (its close frame queued last), or its socket failed.
        () = client.write_out() => return,
        close = reader => close,
    };
    client.close(close);
    client.write_out().await;
}

/// A client's connection as its WebSocket reader sees it: reads come from the socket, and the
/// library's own writes (answers to pings and closes) go through the hub, in order with
/// everything else the client is sent.
struct Inbound<'a> {
    read: OwnedReadHalf,
    client: &'a Client,
}

impl AsyncRead for Inbound<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Inbound<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(if self.client.send_raw(buf) {
            Ok(buf.len())
        } else {
            Err(io::ErrorKind::BrokenPipe.into())
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The answer to a client's message, or `None` when it is not one the service knows.
///
/// Clients send `{"type":"ping","id":N}` and get `{"type":"pong","id":N}`.
fn reply(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    match value.get("type")?.as_str()? {
        "ping" => {
            let id = value
                .get("id")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            Some(format!("{{\"type\":\"pong\",\"id\":{id}}}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn origin_must_be_the_services_own() {
        assert!(same_origin(&headers(None, "127.0.0.1:8080")));
        assert!(same_origin(&headers(
            Some("http://127.0.0.1:8080"),
            "127.0.0.1:8080"
        )));
        assert!(!same_origin(&headers(
            Some("http://evil.example"),
            "127.0.0.1:8080"
        )));
        assert!(!same_origin(&headers(
            Some("http://127.0.0.1:9999"),
            "127.0.0.1:8080"
        )));
        assert!(!same_origin(&headers(Some("null"), "127.0.0.1:8080")));
    }

    #[test]
    fn only_pings_get_answers() {
        assert_eq!(
            reply(r#"{"type":"ping","id":7}"#).as_deref(),
            Some(r#"{"type":"pong","id":7}"#)
        );
        assert_eq!(reply("not json"), None);
        assert_eq!(reply(r#"{"type":"shutdown"}"#), None);
        assert_eq!(reply("[1,2]"), None);
    }
}
