//! A small Chrome DevTools Protocol client: enough to open a page in headless Chromium, read
//! values from it while it runs, and take a screenshot.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium showing one page, driven over the DevTools protocol.
pub(crate) struct Browser {
    child: Child,
    socket: Socket,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromium` on `url`.
    pub(crate) async fn open(chromium: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID".
        let stderr = child.stderr.take().unwrap();
        let port = std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let port = lines.by_ref().find_map(|line| {
                let line = line.ok()?;
                let rest = line.split("ws://127.0.0.1:").nth(1)?;
                rest.split('/').next()?.parse::<u16>().ok()
            });
            // Keep draining so Chromium never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            port
        })
        .join()
        .unwrap()
        .expect("chromium prints its DevTools address");
        let page = page_socket_url(port);
        let (socket, _) = tokio_tungstenite::connect_async(page.as_str())
            .await
            .unwrap();
        Browser {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Calls a protocol method and returns its result.
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(Message::Text(request.into()))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("chromium answers")
                .expect("the DevTools socket stays open")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    pub(crate) async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// A PNG of the page as it is now.
    pub(crate) async fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The DevTools WebSocket URL of the first page, from `GET /json/list`.
fn page_socket_url(port: u16) -> String {
    for _ in 0..100 {
        let list = json_list(port);
        if let Some(url) = list.as_array().and_then(|pages| {
            pages
                .iter()
                .find(|p| p["type"] == "page")
                .and_then(|p| p["webSocketDebuggerUrl"].as_str())
        }) {
            return url.to_owned();
        }
        // The page target appears shortly after the browser listens: ask again.
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("chromium lists no page");
}

/// `GET /json/list` over HTTP/1.1 (DevTools keeps the connection open: read Content-Length).
fn json_list(port: u16) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}
