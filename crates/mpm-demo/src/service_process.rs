//! The service as a process of its own, for step 1: it starts, gets its agent catalog ready and
//! reports `ready`.
//!
//! Its state folder holds the agent templates (`templates/`) and the cache's L2 (`l2/`). A cold
//! start finds no catalog in L2: it scans and validates every template, stores the catalog in
//! L2 and flushes it. A warm start finds the catalog in L2, checks that the templates folder has
//! not changed since, and is ready without reading a template.

use std::path::Path;
use std::time::UNIX_EPOCH;

use mpm_core::Mpm;
use mpm_core::cache::TieredCache;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::agents::{Agent, template_files};
use crate::memory_use::resident;
use crate::start::ready_line;

/// The validated agents of a templates folder, and the folder's modification time then.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Catalog {
    /// The folder's modification time, in nanoseconds since the epoch.
    pub stamp: u128,
    /// Every agent, in file-name order.
    pub agents: Vec<Agent>,
}

fn folder_stamp(dir: &Path) -> Result<u128, Error> {
    let modified = std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .map_err(|e| Error::io(dir, e))?;
    Ok(modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos()))
}

/// Scans and validates every template of `dir`.
pub fn scan(dir: &Path) -> Result<Catalog, Error> {
    let stamp = folder_stamp(dir)?;
    let paths = template_files(dir)?;
    let mut agents = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        agents.push(Agent::parse(&path, &text)?);
    }
    Ok(Catalog { stamp, agents })
}

/// Whether a start found its catalog in L2 (warm) or scanned (cold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartKind {
    /// The catalog came from L2.
    Warm,
    /// The templates were scanned.
    Cold,
}

/// Gets the service in `state` ready; returns how, and the number of agents.
pub fn prepare(state: &Path) -> Result<(StartKind, usize), Error> {
    let templates = state.join("templates");
    let mpm = Mpm::default();
    let l2 = mpm
        .disk_tier("catalog", state.join("l2"))
        .open()
        .map_err(|e| Error::Cache(e.to_string()))?;
    let cache: TieredCache<Catalog> = mpm
        .cache("catalog")
        .l2(l2)
        .build()
        .map_err(|e| Error::Cache(e.to_string()))?;
    let stamp = folder_stamp(&templates)?;
    if let Some(catalog) = cache.get("catalog")
        && catalog.stamp == stamp
    {
        return Ok((StartKind::Warm, catalog.agents.len()));
    }
    let catalog = scan(&templates)?;
    let n = catalog.agents.len();
    cache
        .try_insert_with("catalog", catalog, mpm_core::cache::EntryOptions::new())
        .map_err(|e| Error::Cache(e.to_string()))?;
    cache.flush().map_err(|e| Error::Cache(e.to_string()))?;
    Ok((StartKind::Cold, n))
}

/// The service process's `main`: prepares the service in `state`, prints the ready line with
/// the process's resident memory, and returns.
pub fn main(state: &Path) -> Result<(), Error> {
    prepare(state)?;
    let resident_kib = resident().map_or(0, |r| (r.now_mb * 1024.0) as u64);
    println!("{}", ready_line(resident_kib));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_start_is_warm_until_the_templates_change() {
        let state = tempfile::tempdir().unwrap();
        let templates = state.path().join("templates");
        crate::scenario::install_templates(&templates).unwrap();
        let n = crate::agents::TEMPLATES.len();
        assert_eq!(prepare(state.path()).unwrap(), (StartKind::Cold, n));
        assert_eq!(prepare(state.path()).unwrap(), (StartKind::Warm, n));
        // A new template changes the folder: the next start scans again.
        std::fs::write(
            templates.join("extra.md"),
            crate::agents::TEMPLATES[0]
                .1
                .replace("name: api-qa", "name: extra"),
        )
        .unwrap();
        assert_eq!(prepare(state.path()).unwrap(), (StartKind::Cold, n + 1));
        assert_eq!(prepare(state.path()).unwrap(), (StartKind::Warm, n + 1));
    }
}
