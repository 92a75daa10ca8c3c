//! Test support for the mpm workspace: the services and programs a test needs, and a test
//! harness that shows a test whose service is missing as *ignored, with the reason*.
//!
//! Tests that need PostgreSQL, Redis or an external program (`promtool`, `chromium`, ...) live in
//! a test binary with `harness = false` whose `main` hands its tests to [`run`]. Each test says
//! what it needs; before it runs, the harness checks that the service answers (a TCP connect to
//! the host and port of its URL) or that the program is on `PATH`. When something is missing:
//!
//! - normally, the test is reported `ignored (skipped: Redis is not reachable at ...)` in the
//!   usual `cargo test` output and counted among the ignored tests;
//! - when `CI` or `MPM_REQUIRE_SERVICES` is set, the test fails with a message that says how to
//!   start the service.
//!
//! The URLs come from `MPM_POSTGRES_URL` and `MPM_REDIS_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test` and `redis://127.0.0.1:6379`.
//!
//! ```
//! use mpm_testkit::Service;
//!
//! // In `tests/services/main.rs` of a crate, declared in its Cargo.toml as
//! // `[[test]] name = "services", harness = false`:
//! fn main() -> std::process::ExitCode {
//!     mpm_testkit::run([
//!         mpm_testkit::test("redis::url_is_a_redis_url", || {
//!             assert!(Service::Redis.url().starts_with("redis"));
//!         })
//!         .needs(Service::Redis),
//!         mpm_testkit::test("sh::is_found", || {
//!             assert!(mpm_testkit::program("sh").is_ok());
//!         })
//!         .needs_program("sh"),
//!     ])
//! }
//! ```
//!
//! [`Forwarder`] stands between a test and a server and can play an outage.
//!
//! [`prometheus`] drives the Prometheus programs: a real server scraping an endpoint and
//! answering queries, and `promtool check metrics`.
//!
//! The crate is not published; members use it as a dev-dependency only.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

mod forwarder;
pub mod prometheus;

pub use forwarder::Forwarder;

/// How long a service has to accept a TCP connection before it counts as missing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A server a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// PostgreSQL, at `MPM_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
    Postgres,
    /// Redis, at `MPM_REDIS_URL` (default `redis://127.0.0.1:6379`).
    Redis,
}

impl Service {
    /// The service's name, as people write it.
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL",
            Service::Redis => "Redis",
        }
    }

    /// The environment variable that holds the service's URL.
    pub fn env_var(self) -> &'static str {
        match self {
            Service::Postgres => "MPM_POSTGRES_URL",
            Service::Redis => "MPM_REDIS_URL",
        }
    }

    fn default_url(self) -> &'static str {
        match self {
            Service::Postgres => "postgres://postgres@127.0.0.1:5432/test",
            Service::Redis => "redis://127.0.0.1:6379",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Service::Postgres => 5432,
            Service::Redis => 6379,
        }
    }

    /// How to start the service locally, for the failure message.
    pub fn start_hint(self) -> &'static str {
        match self {
            Service::Postgres => {
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            }
            Service::Redis => {
                "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
            }
        }
    }

    /// The service's URL: its environment variable, or the default.
    pub fn url(self) -> String {
        std::env::var(self.env_var()).unwrap_or_else(|_| self.default_url().to_owned())
    }

    /// The service's URL if it accepts a TCP connection, else why not. The answer is worked out
    /// once per process.
    pub fn reachable(self) -> Result<String, Missing> {
        static CHECKED: [OnceLock<Result<String, Missing>>; 2] = [OnceLock::new(), OnceLock::new()];
        CHECKED[self as usize]
            .get_or_init(|| {
                let url = self.url();
                match connect(&url, self.default_port()) {
                    Ok(()) => Ok(url),
                    Err(reason) => Err(Missing {
                        what: format!("{} at {url}", self.name()),
                        reason: format!("is not reachable ({reason})"),
                        fix: format!(
                            "start it with `{}`, or point {} at one",
                            self.start_hint(),
                            self.env_var()
                        ),
                    }),
                }
            })
            .clone()
    }
}

/// Whether a missing service or program fails a test instead of skipping it: `CI` or
/// `MPM_REQUIRE_SERVICES` is set.
pub fn services_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("MPM_REQUIRE_SERVICES").is_some()
}

/// The path of an executable program found on `PATH`, else why not.
pub fn program(name: &str) -> Result<PathBuf, Missing> {
    let missing = |reason: String| Missing {
        what: format!("the program `{name}`"),
        reason,
        fix: format!("install `{name}` and put it on PATH"),
    };
    let path = std::env::var_os("PATH")
        .ok_or_else(|| missing("is not found: PATH is not set".to_owned()))?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| missing("is not on PATH".to_owned()))
}

#[cfg(unix)]
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &std::path::Path) -> bool {
    path.is_file()
}

/// Something a test needs that is not there: what, why, and how to get it. Its `Display` is
/// one sentence, such as "Redis at redis://127.0.0.1:6379 is not reachable (Connection
/// refused)".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    what: String,
    reason: String,
    fix: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.what, self.reason)
    }
}

impl std::error::Error for Missing {}

impl Missing {
    /// How to make the missing thing available.
    pub fn fix(&self) -> &str {
        &self.fix
    }
}

/// What a test needs before it can run.
#[derive(Clone, Debug)]
enum Need {
    Service(Service),
    Program(&'static str),
}

impl Need {
    fn check(&self) -> Result<(), Missing> {
        match self {
            Need::Service(s) => s.reachable().map(drop),
            Need::Program(p) => program(p).map(drop),
        }
    }
}

/// One test for [`run`]: a name, a body, and what it needs.
pub struct Test {
    name: String,
    needs: Vec<Need>,
    body: Box<dyn FnOnce() + Send>,
}

impl fmt::Debug for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Test")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

/// A test named `name` (write it as `module::function`, like the built-in harness does) that
/// runs `body`; a panic in `body` fails it.
pub fn test(name: impl Into<String>, body: impl FnOnce() + Send + 'static) -> Test {
    Test {
        name: name.into(),
        needs: Vec::new(),
        body: Box::new(body),
    }
}

impl Test {
    /// The test runs only if `service` is reachable.
    #[must_use]
    pub fn needs(mut self, service: Service) -> Self {
        self.needs.push(Need::Service(service));
        self
    }

    /// The test runs only if the program `name` is on `PATH`.
    #[must_use]
    pub fn needs_program(mut self, name: &'static str) -> Self {
        self.needs.push(Need::Program(name));
        self
    }

    fn into_trial(self, required: bool) -> Trial {
        let Test { name, needs, body } = self;
        Trial::ignorable_test(name, move || {
            match needs.iter().find_map(|n| n.check().err()) {
                Some(missing) => skip_or_fail(&missing, required),
                None => {
                    body();
                    Ok(Completion::Completed)
                }
            }
        })
    }
}

/// A missing need skips the test, or fails it when services are required.
fn skip_or_fail(missing: &Missing, required: bool) -> Result<Completion, Failed> {
    if required {
        Err(Failed::from(format!(
            "{missing}; {} (CI or MPM_REQUIRE_SERVICES is set, so a missing service fails)",
            missing.fix()
        )))
    } else {
        Ok(Completion::ignored_with(format!("skipped: {missing}")))
    }
}

/// Runs `tests` with the command line's arguments (the built-in harness's: filters, `--list`,
/// `--ignored`, `--test-threads`, ...) and returns the process's exit code. A test whose service
/// or program is missing is reported ignored with the reason, or failed when
/// [`services_required`].
pub fn run(tests: impl IntoIterator<Item = Test>) -> ExitCode {
    let args = Arguments::from_args();
    let required = services_required();
    let trials = tests.into_iter().map(|t| t.into_trial(required)).collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// Connects to the host and port of `url` (`scheme://[user[:password]@]host[:port][/...]`).
fn connect(url: &str, default_port: u16) -> Result<(), String> {
    let (host, port) = host_and_port(url, default_port)?;
    let addrs = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The host and port of a URL; an empty host is `localhost`.
fn host_and_port(url: &str, default_port: u16) -> Result<(String, u16), String> {
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("{url:?} is not a URL"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("{url:?}: port {p:?} is not a number"))?,
        None => default_port,
    };
    let host = if host.is_empty() { "localhost" } else { host };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(url: &str, expect: Result<(&str, u16), ()>) {
        let got = host_and_port(url, 99);
        match expect {
            Ok((host, port)) => assert_eq!(got, Ok((host.to_owned(), port)), "{url}"),
            Err(()) => assert!(got.is_err(), "{url}: {got:?}"),
        }
    }

    #[test]
    fn urls() {
        check(
            "postgres://postgres@127.0.0.1:5432/test",
            Ok(("127.0.0.1", 5432)),
        );
        check("redis://127.0.0.1:6379", Ok(("127.0.0.1", 6379)));
        check("redis://:secret@cache.local/0", Ok(("cache.local", 99)));
        check("redis://user:p@ss@h:1?x=y", Ok(("h", 1)));
        check("redis://[::1]:7000/1", Ok(("::1", 7000)));
        check("postgres:///test", Ok(("localhost", 99)));
        check("127.0.0.1:6379", Err(()));
        check("redis://h:port", Err(()));
    }

    #[test]
    fn a_closed_port_is_missing() {
        // Port 1 (tcpmux) is not served on a test machine.
        assert!(connect("redis://127.0.0.1:1", 1).is_err());
    }

    #[test]
    fn a_missing_service_skips_with_the_reason_or_fails_with_the_fix() {
        let missing = Missing {
            what: "Redis at redis://127.0.0.1:1".to_owned(),
            reason: "is not reachable (Connection refused)".to_owned(),
            fix: "start it with `redis-server`".to_owned(),
        };
        match skip_or_fail(&missing, false) {
            Ok(Completion::Ignored { reason: Some(r) }) => assert_eq!(
                r,
                "skipped: Redis at redis://127.0.0.1:1 is not reachable (Connection refused)"
            ),
            _ => panic!("a missing service skips the test"),
        }
        let failed = skip_or_fail(&missing, true).err().expect("required fails");
        let message = failed.message().expect("a message");
        assert!(
            message.contains("start it with `redis-server`"),
            "{message}"
        );
    }

    #[test]
    fn programs_are_found_on_path() {
        assert!(program("sh").is_ok());
        let err = program("mpm-no-such-program").unwrap_err();
        assert_eq!(
            err.fix(),
            "install `mpm-no-such-program` and put it on PATH"
        );
    }
}
