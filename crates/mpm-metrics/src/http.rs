//! An HTTP endpoint serving a registry (feature `http`): `GET /metrics` (Prometheus text),
//! `GET /metrics.json` (the [`Snapshot`](crate::Snapshot) as JSON) and `GET /health`, on tokio
//! and hyper, in the manner of metrics-exporter-prometheus's `with_http_listener`.
//!
//! Safe by default:
//!
//! - it listens on loopback (`127.0.0.1:9000`) unless another address is named;
//! - it can require `Authorization: Bearer <token>` on the metrics paths (`/health` stays
//!   open, for probes);
//! - requests are bounded: headers larger than [`MetricsServerBuilder::max_request_bytes`]
//!   get `431`, a declared body larger than it gets `413`, and a client that takes longer than
//!   [`MetricsServerBuilder::header_timeout`] to send its headers is disconnected;
//! - at most [`MetricsServerBuilder::max_connections`] connections are served at once; beyond
//!   that a new connection is closed at once, and a connection lives at most
//!   [`MetricsServerBuilder::connection_timeout`];
//! - a scrape renders into its own buffer and releases the registry before writing a byte, so a
//!   slow or stalled client holds no lock: recording never waits for a client (recording takes
//!   no lock at all), and neither do other clients.
//!
//! ```no_run
//! # async fn run() -> Result<(), mpm_metrics::http::ServeError> {
//! let registry = mpm_metrics::Registry::default();
//! let server = mpm_metrics::http::serve(&registry, "127.0.0.1:9000".parse().unwrap()).await?;
//! println!("scrape http://{}/metrics", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! # let _ = run;
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::{PROMETHEUS_CONTENT_TYPE, Registry};

/// The address served when none is named: loopback, port 9000.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9000);

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The bearer token is empty or holds characters an HTTP header cannot carry.
    #[error("the bearer token must be non-empty visible ASCII")]
    InvalidToken,
    /// There is no tokio runtime to run the server on.
    #[error("the metrics endpoint must be started inside a tokio runtime")]
    NoRuntime,
}

/// Serves `registry` on `addr` with the default limits: the one call most applications need.
pub async fn serve(registry: &Registry, addr: SocketAddr) -> Result<MetricsServer, ServeError> {
    MetricsServer::builder(registry).listen(addr).build().await
}

/// Settings of a [`MetricsServer`]; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct MetricsServerBuilder {
    registry: Registry,
    addr: SocketAddr,
    token: Option<String>,
    max_connections: NonZeroUsize,
    max_request_bytes: NonZeroUsize,
    header_timeout: Duration,
    connection_timeout: Duration,
}

impl MetricsServerBuilder {
    /// The address to listen on (default [`DEFAULT_ADDR`], loopback). Port 0 picks a free
    /// port; read it from [`MetricsServer::local_addr`].
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Requires `Authorization: Bearer <token>` on `/metrics` and `/metrics.json`; other
    /// requests get `401`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How many connections are served at once (default 64); beyond it new connections are
    /// closed without an answer.
    pub fn max_connections(mut self, max: NonZeroUsize) -> Self {
        self.max_connections = max;
        self
    }

    /// The largest request head, and declared body, accepted (default 8 KiB; hyper reads at
    /// least 8 KiB at a time, so smaller values act as 8 KiB for the head).
    pub fn max_request_bytes(mut self, max: NonZeroUsize) -> Self {
        self.max_request_bytes = max;
        self
    }

    /// How long a client may take to send a request's headers (default 5 s).
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// How long one connection may stay open, requests and all (default 60 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Binds the address and starts serving on the current tokio runtime.
    pub async fn build(self) -> Result<MetricsServer, ServeError> {
        let auth = match &self.token {
            None => None,
            Some(t) => {
                let ok = !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic());
                if !ok {
                    return Err(ServeError::InvalidToken);
                }
                Some(format!("Bearer {t}").into_bytes())
            }
        };
        let handle = tokio::runtime::Handle::try_current().map_err(|_| ServeError::NoRuntime)?;
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: self.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: self.addr,
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            registry: self.registry,
            auth,
            max_request_bytes: self.max_request_bytes.get(),
        });
        let task = handle.spawn(accept_loop(
            listener,
            shared,
            Arc::new(Semaphore::new(self.max_connections.get())),
            self.max_request_bytes.get(),
            self.header_timeout,
            self.connection_timeout,
            stopped,
        ));
        Ok(MetricsServer {
            local_addr,
            stop,
            task: Some(task),
        })
    }
}

/// A running endpoint. Dropping it stops accepting connections (connections already open finish
/// their current request or time out); [`MetricsServer::shutdown`] also waits for that.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Settings for serving `registry`, starting from the defaults.
    pub fn builder(registry: &Registry) -> MetricsServerBuilder {
        MetricsServerBuilder {
            registry: registry.clone(),
            addr: DEFAULT_ADDR,
            token: None,
            max_connections: NonZeroUsize::new(64).expect("64 is not zero"),
            max_request_bytes: NonZeroUsize::new(8 * 1024).expect("not zero"),
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(60),
        }
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits until the accept loop has ended.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Shared {
    registry: Registry,
    /// The whole expected `Authorization` value, `Bearer <token>`.
    auth: Option<Vec<u8>>,
    max_request_bytes: usize,
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    max_request_bytes: usize,
    header_timeout: Duration,
    connection_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: try again with the next client.
                Err(_) => {
                    tokio::task::yield_now().await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(respond(&shared, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(max_request_bytes.max(8 * 1024))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(connection_timeout, conn).await;
            drop(permit);
        });
    }
}

fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > shared.max_request_bytes as u64) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    if path == "/health" {
        return plain(StatusCode::OK, "ok\n");
    }
    if path != "/metrics" && path != "/metrics.json" {
        return plain(StatusCode::NOT_FOUND, "not found; try /metrics\n");
    }
    if let Some(expected) = &shared.auth {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .map_or(&[][..], HeaderValue::as_bytes);
        if !constant_time_eq(given, expected) {
            let mut r = plain(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    let (body, content_type) = if path == "/metrics" {
        (shared.registry.render_prometheus(), PROMETHEUS_CONTENT_TYPE)
    } else {
        (shared.registry.snapshot().to_json(), "application/json")
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Compares without stopping at the first difference, so the time taken does not tell how much
/// of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
