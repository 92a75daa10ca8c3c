//! The service's HTTP side: the dashboard page, its WebSocket feed, `/metrics` and a health check.
//!
//! Routes: `GET /` the dashboard (one self-contained page), `GET /ws` the WebSocket feed,
//! `GET /metrics` the Prometheus exposition, `GET /figures.json` the run's figures,
//! `GET /health`. A WebSocket upgrade whose `Origin` is not the service's own is refused (403),
//! one over the client cap too (503); a client that sends a malformed or oversized message is
//! closed and counted; none of that disturbs the other clients.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use futures::{SinkExt, StreamExt};
use mpm_core::metrics::Registry;
use parking_lot::RwLock;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Error;
use crate::hub::{Client, Hub};

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
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        // Small frames go out at once: Nagle's algorithm would hold an event back while the
        // previous one is unacknowledged.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = Router::new()
            .route("/", get(dashboard))
            .route("/ws", get(upgrade))
            .route("/metrics", get(metrics))
            .route("/figures.json", get(figures))
            .route("/health", get(|| async { "ok\n" }))
            .with_state(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
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

async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        state.hub.refuse_origin();
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
    }
    let Some(slot) = state.hub.reserve() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many clients\n").into_response();
    };
    let max = state.hub.limits().max_message_bytes.get();
    let hello = state.figures.read().clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve_client(socket, slot.connect(), hello))
}

/// One client's connection: its outbox goes out, its messages come in.
async fn serve_client(socket: WebSocket, mut client: Client, hello: String) {
    let (mut sink, mut stream) = socket.split();
    let hub = client.hub().clone();
    let id = client.id();
    hub.send_to(
        id,
        Message::Text(format!("{{\"type\":\"figures\",\"figures\":{hello}}}").into()),
    );
    let writer = async {
        while let Some(message) = client.outbox.recv().await {
            if sink.send(message).await.is_err() {
                return;
            }
        }
        // The hub dropped this client (too slow): say why.
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: close_code::POLICY,
                reason: "too slow".into(),
            })))
            .await;
    };
    let reader = async {
        while let Some(message) = stream.next().await {
            match message {
                Ok(Message::Text(text)) => match reply(text.as_str()) {
                    Some(answer) => {
                        if !hub.send_to(id, Message::Text(answer.into())) {
                            return None;
                        }
                    }
                    None => {
                        hub.count_malformed();
                        return Some(CloseFrame {
                            code: close_code::POLICY,
                            reason: "malformed message".into(),
                        });
                    }
                },
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(Message::Close(_)) => return None,
                Ok(Message::Binary(_)) => {
                    hub.count_malformed();
                    return Some(CloseFrame {
                        code: close_code::UNSUPPORTED,
                        reason: "binary messages are not part of the protocol".into(),
                    });
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
        () = writer => None,
        close = reader => close,
    };
    if let Some(frame) = close {
        let _ = sink.send(Message::Close(Some(frame))).await;
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
