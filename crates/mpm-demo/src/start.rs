//! Step 1: start-up, timed from spawn to ready by the parent.
//!
//! The service runs as a child process (`mpm` with a hidden subcommand) that builds everything
//! a request needs and then prints one line, `ready <resident KiB>`. The parent times the span
//! from spawning it to reading that line: process creation, the runtime, opening the L2 store,
//! discovering or warming agents. A cold start begins with an empty state directory; a warm
//! start reuses the one the cold start left.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::Error;

/// One start of the service process.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    /// From spawn to the `ready` line.
    pub elapsed: Duration,
    /// The child's resident memory when ready, in MiB.
    pub resident_mb: f64,
}

/// Starts `exe args... --state state` and waits for its `ready` line (at most `limit`).
pub async fn time_start(
    exe: &Path,
    args: &[&str],
    state: &Path,
    limit: Duration,
) -> Result<Start, Error> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .arg("--state")
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            exe: exe.to_path_buf(),
            source,
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(limit, lines.next_line()).await;
    let elapsed = started.elapsed();
    let line = match line {
        Ok(Ok(Some(line))) => line,
        _ => {
            let _ = child.kill().await;
            let output = child.wait_with_output().await.ok();
            let stderr = output
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            return Err(Error::Child(format!(
                "{} did not report ready within {limit:?}: {}",
                exe.display(),
                stderr.trim()
            )));
        }
    };
    let resident_kib = parse_ready(&line)
        .ok_or_else(|| Error::Child(format!("unexpected line from the service: {line:?}")))?;
    let status = child
        .wait()
        .await
        .map_err(|e| Error::Child(format!("waiting for the service: {e}")))?;
    if !status.success() {
        return Err(Error::Child(format!(
            "the service process exited with {status}"
        )));
    }
    Ok(Start {
        elapsed,
        resident_mb: resident_kib as f64 / 1024.0,
    })
}

/// The line a ready service prints.
pub fn ready_line(resident_kib: u64) -> String {
    format!("ready {resident_kib}")
}

fn parse_ready(line: &str) -> Option<u64> {
    line.strip_prefix("ready ")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_round_trip() {
        assert_eq!(parse_ready(&ready_line(1234)), Some(1234));
        assert_eq!(parse_ready("ready"), None);
        assert_eq!(parse_ready("ready x"), None);
        assert_eq!(parse_ready("steady 1"), None);
    }
}
