//! The local PostgreSQL and Redis servers: their URLs, and what to do when they are down.

/// How to start each server, for the failure message.
const START_POSTGRES: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
const START_REDIS: &str =
    "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no";

fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("MPM_REQUIRE_SERVICES").is_some()
}

/// Fails (in CI or with `MPM_REQUIRE_SERVICES`) or prints that the test skipped.
fn unavailable(what: &str, url: &str, error: &dyn std::fmt::Display, start: &str) {
    let message = format!("{what} at {url} is not reachable ({error}); start it with: {start}");
    if required() {
        panic!("{message}");
    }
    eprintln!("skipped: {message}");
}

/// The PostgreSQL URL if the server answers.
pub(crate) async fn postgres_url() -> Option<String> {
    let url = std::env::var("MPM_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(_) => Some(url),
        Err(e) => {
            unavailable("PostgreSQL", &url, &e, START_POSTGRES);
            None
        }
    }
}

/// The Redis URL if the server answers.
pub(crate) async fn redis_url() -> Option<String> {
    let url =
        std::env::var("MPM_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let reached = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match reached.await {
        Ok(_) => Some(url),
        Err(e) => {
            unavailable("Redis", &url, &e, START_REDIS);
            None
        }
    }
}
