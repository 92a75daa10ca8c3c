//! Step 5: optimize the agents' memory files with `mpm-memory-opt`, in place, atomically.

use std::path::Path;
use std::time::{Duration, Instant};

use mpm_core::memory_opt::Optimizer;

use crate::Error;
use crate::atomic::write_atomic;
use crate::memory_files::{GUIDE_SHAPED, SHIPPED_TEXT};

/// One file's outcome.
#[derive(Clone, Debug)]
pub struct MemoryFile {
    /// The file's name.
    pub name: String,
    /// Bytes before.
    pub before: usize,
    /// Bytes after.
    pub after: usize,
    /// Entries removed as duplicates.
    pub duplicates_removed: usize,
    /// Entries merged into others.
    pub consolidated: usize,
}

impl MemoryFile {
    /// The size reduction in percent.
    pub fn reduction_pct(&self) -> f64 {
        if self.before == 0 {
            0.0
        } else {
            (1.0 - self.after as f64 / self.before as f64) * 100.0
        }
    }
}

/// What the step did.
#[derive(Clone, Debug)]
pub struct MemoryFigures {
    /// Each file, in the order of [`SHIPPED_TEXT`].
    pub files: Vec<MemoryFile>,
    /// The reduction of the file shaped like the guide's example, in percent.
    pub guide_shaped_reduction_pct: f64,
    /// Time to optimize and rewrite every file.
    pub elapsed: Duration,
}

/// Writes the shipped memory files into `dir` (an agent service's `.claude-mpm/memories`),
/// then optimizes each in place with `optimizer` (the scenario's has the default options).
pub fn optimize_memories(optimizer: &Optimizer, dir: &Path) -> Result<MemoryFigures, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for (name, text) in SHIPPED_TEXT {
        write_atomic(&dir.join(name), text.as_bytes())?;
    }
    let started = Instant::now();
    let mut files = Vec::with_capacity(SHIPPED_TEXT.len());
    for (name, _) in SHIPPED_TEXT {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let outcome = optimizer
            .optimize_bytes(&bytes)
            .map_err(|e| Error::Memory(format!("{}: {e}", path.display())))?;
        write_atomic(&path, outcome.output.as_bytes())?;
        files.push(MemoryFile {
            name: name.to_owned(),
            before: bytes.len(),
            after: outcome.output.len(),
            duplicates_removed: outcome.report.duplicates_removed,
            consolidated: outcome.report.items_consolidated,
        });
    }
    let elapsed = started.elapsed();
    let guide_shaped_reduction_pct = files
        .iter()
        .find(|f| f.name == GUIDE_SHAPED)
        .map_or(0.0, MemoryFile::reduction_pct);
    Ok(MemoryFigures {
        files,
        guide_shaped_reduction_pct,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_shrinks_and_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let optimizer = Optimizer::new(mpm_core::memory_opt::Options::default());
        let f = optimize_memories(&optimizer, dir.path()).unwrap();
        assert_eq!(f.files.len(), SHIPPED_TEXT.len());
        for file in &f.files {
            assert!(file.after < file.before, "{file:?}");
            let on_disk = std::fs::metadata(dir.path().join(&file.name))
                .unwrap()
                .len();
            assert_eq!(on_disk as usize, file.after);
        }
        assert!(f.guide_shaped_reduction_pct > 0.0);
    }
}
