//! The Prometheus programs a test can drive: a real server that scrapes an endpoint and
//! answers queries ([`Prometheus`]), and `promtool check metrics` ([`promtool_check_metrics`]).
//! Tests using them declare `.needs_program("prometheus")` or `.needs_program("promtool")`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`Prometheus::wait_for`] waits for a query to give the expected value.
const QUERY_DEADLINE: Duration = Duration::from_secs(60);

/// A `prometheus` server, started in a temporary directory, scraping one target every 200 ms.
/// Dropping it kills the server.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts a server scraping `http://{target}/metrics` as job `mpm`, sending
    /// `Authorization: Bearer {token}` when a token is given. Panics if it cannot start (this
    /// is test support: the test fails).
    pub fn scrape(target: SocketAddr, bearer_token: Option<&str>) -> Prometheus {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let auth = match bearer_token {
            Some(token) => {
                let file = dir.path().join("token");
                std::fs::write(&file, token).expect("the token file is written");
                format!(
                    "    authorization:\n      credentials_file: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        let config = format!(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n\
             scrape_configs:\n  - job_name: mpm\n{auth}    \
             static_configs:\n      - targets: ['{target}']\n"
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("the configuration is written");
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.path().join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the log file is created"))
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// The address of the server's web interface and API.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value of an instant query that has exactly one result, else `None` (no answer
    /// yet, no series yet, or several).
    pub fn query(&self, promql: &str) -> Option<f64> {
        let body = http_get(
            self.addr,
            &format!("/api/v1/query?query={}", percent_encode(promql)),
        )?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        let [one] = result.as_slice() else {
            return None;
        };
        one["value"][1].as_str()?.parse().ok()
    }

    /// Polls the server (it scrapes every 200 ms; there is no signal to wait for) until
    /// `promql` gives `want`; panics with the last answer and the server's log after a minute.
    #[track_caller]
    pub fn wait_for(&self, promql: &str, want: f64) {
        let deadline = Instant::now() + QUERY_DEADLINE;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.query(promql);
            if last == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{promql} = {last:?}, expected {want}; server log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `promtool check metrics` on `exposition`: `Ok` when it accepts it without a word of
/// lint, else what it said.
pub fn promtool_check_metrics(exposition: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool does not start: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("promtool has no stdin")?;
    stdin
        .write_all(exposition.as_bytes())
        .map_err(|e| format!("promtool does not read: {e}"))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| format!("promtool does not finish: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool ({}): {said}", out.status))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// `GET path` on `addr` over HTTP/1.0: the body of a 200 answer, else `None`.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?;
    (status == "200").then(|| body.to_owned())
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

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(percent_encode("up{job=\"mpm\"}"), "up%7Bjob%3D%22mpm%22%7D");
    }
}
