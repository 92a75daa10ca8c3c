//! The real Python peer: claude-mpm's `MemoryOptimizer`, installed from PyPI into a virtual
//! environment under `target/`, timed on the same generated memory file the benches use.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::estimates::Estimate;
use crate::manifest::target_dir;

/// The claude-mpm release whose optimizer `mpm-memory-opt`'s `claude_mpm` profile reproduces.
pub(crate) const CLAUDE_MPM: &str = "claude-mpm==4.0.29";

const TIMER: &str = r#"
import json, shutil, sys, tempfile, time
from pathlib import Path
from claude_mpm.core import unified_paths
from claude_mpm.services.memory.optimizer import MemoryOptimizer

# claude-mpm 4.0.29's optimizer calls `get_project_root()`, which its own path manager of that
# release lacks (it has the `project_root` property): the shim below is the only change.
manager = type(unified_paths.get_path_manager())
if not hasattr(manager, "get_project_root"):
    manager.get_project_root = lambda self: self.project_root

source, runs = Path(sys.argv[1]), int(sys.argv[2])
times = []
for _ in range(runs):
    with tempfile.TemporaryDirectory() as d:
        memories = Path(d) / ".claude-mpm" / "memories"
        memories.mkdir(parents=True)
        shutil.copy(source, memories / "engineer_agent.md")
        optimizer = MemoryOptimizer(working_directory=Path(d))
        start = time.perf_counter()
        result = optimizer.optimize_agent_memory("engineer")
        times.append(time.perf_counter() - start)
        if not result.get("success"):
            sys.exit("the optimizer failed: %r" % (result,))
print(json.dumps(times))
"#;

fn venv() -> PathBuf {
    target_dir().join("mpm-python/venv")
}

/// The venv's interpreter, creating the venv and installing claude-mpm when needed.
fn python(log: &Path) -> Result<PathBuf> {
    let venv = venv();
    let python = venv.join("bin/python");
    let installed = python.is_file()
        && Command::new(&python)
            .args(["-c", "import claude_mpm.services.memory.optimizer"])
            .output()
            .is_ok_and(|o| o.status.success());
    if installed {
        return Ok(python);
    }
    println!("installing {CLAUDE_MPM} from PyPI into {}", venv.display());
    run_logged(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        log,
        "python3 -m venv (on Debian: apt-get install python3-venv)",
    )?;
    run_logged(
        Command::new(venv.join("bin/pip")).args(["install", "--quiet", CLAUDE_MPM]),
        log,
        "pip install claude-mpm",
    )?;
    Ok(python)
}

fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("could not start {what}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    append(log, &text);
    if !out.status.success() {
        bail!("{what} failed ({}); see {}", out.status, log.display());
    }
    Ok(())
}

fn append(log: &Path, text: &str) {
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = f.write_all(text.as_bytes());
    }
}

/// Times the Python optimizer `runs` times on `memory_file`. The figure is the median; its
/// interval is the fastest and slowest run (for 5 runs, a 94% interval of the median).
pub(crate) fn time(memory_file: &Path, runs: usize, log: &Path) -> Result<Estimate> {
    let python = python(log)?;
    let script = target_dir().join("mpm-python/time_optimizer.py");
    crate::summary::write_atomic(&script, TIMER.as_bytes())?;
    let out = Command::new(&python)
        .arg(&script)
        .arg(memory_file)
        .arg(runs.to_string())
        .output()
        .context("could not start the Python timer")?;
    append(log, &String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!(
            "timing claude-mpm's optimizer failed ({}); see {}",
            out.status,
            log.display()
        );
    }
    let seconds: Vec<f64> =
        serde_json::from_slice(&out.stdout).context("reading the Python timer's output")?;
    estimate(seconds).context("the Python timer returned no runs")
}

/// Median and range of run times in seconds, as an estimate in nanoseconds.
fn estimate(mut seconds: Vec<f64>) -> Option<Estimate> {
    seconds.retain(|s| s.is_finite());
    seconds.sort_by(f64::total_cmp);
    let n = seconds.len();
    if n == 0 {
        return None;
    }
    let median = if n % 2 == 1 {
        seconds[n / 2]
    } else {
        (seconds[n / 2 - 1] + seconds[n / 2]) / 2.0
    };
    Some(Estimate {
        median: median * 1e9,
        lower: seconds[0] * 1e9,
        upper: seconds[n - 1] * 1e9,
        elements: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let e = estimate(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((e.median, e.lower, e.upper), (2e9, 1e9, 3e9));
        assert_eq!(estimate(vec![1.0, 3.0]).unwrap().median, 2e9);
        assert_eq!(estimate(vec![]), None);
    }
}
