//! The `mpm-ops` binary of `mpm-benches`: one deterministic operation per crate, for callgrind,
//! and the generated memory file the Python peer reads.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::manifest::{root, target_dir};

/// Builds `mpm-ops` in release mode (the profile `cargo bench` shares) and returns its path.
pub(crate) fn build(log: Option<&Path>) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args([
        "build",
        "--release",
        "--package",
        "mpm-benches",
        "--bin",
        "mpm-ops",
    ]);
    let out = cmd.output().context("could not start cargo build")?;
    if let Some(log) = log {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(&out.stderr);
        }
    }
    if !out.status.success() {
        bail!(
            "building mpm-ops failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(target_dir().join("release").join("mpm-ops"))
}

/// Writes the generated memory file of `bytes` (the one the benches optimize) to `path`.
pub(crate) fn memory_file(bytes: usize, path: &Path, log: &Path) -> Result<()> {
    let bin = build(Some(log))?;
    let status = Command::new(&bin)
        .arg("--memory-file")
        .arg(bytes.to_string())
        .arg(path)
        .status()
        .with_context(|| format!("could not start {}", bin.display()))?;
    if !status.success() {
        bail!("mpm-ops could not write {} ({status})", path.display());
    }
    Ok(())
}
