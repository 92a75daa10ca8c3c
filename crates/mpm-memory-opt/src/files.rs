//! Reading and replacing memory files safely, and the memories directory.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::options::{Options, SymlinkPolicy};
use crate::report::Report;
use crate::{Error, FileOptions, Optimizer};

/// UTC calendar time now: (year, month, day, hour, minute, second).
pub(crate) fn utc_now() -> (i64, u32, u32, u32, u32, u32) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `YYYY-mm-dd HH:MM:SS` (UTC), claude-mpm's `Last Updated` format.
pub(crate) fn timestamp_now() -> String {
    let (y, mo, d, h, mi, s) = utc_now();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

pub(crate) fn iso_now() -> String {
    let (y, mo, d, h, mi, s) = utc_now();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The agent id of a memory file name: `engineer` for `engineer_memories.md` and
/// `engineer_agent.md`; `None` for other names (README.md, backups, ...).
pub fn agent_id(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(".md")?;
    if stem.contains("_backup_") {
        return None;
    }
    let id = stem
        .strip_suffix("_memories")
        .or_else(|| stem.strip_suffix("_agent"))?;
    (!id.is_empty()).then_some(id)
}

/// Whether a file is an agent memory file, as claude-mpm writes them: named
/// `{agent}_memories.md` or `{agent}_agent.md`, or opening (blank lines aside) with its header
/// `# {Agent} Agent Memory`. `README.md` and backups (`*_backup_*`) never are.
///
/// ```
/// use mpm_memory_opt::is_memory_file;
///
/// assert!(is_memory_file("engineer_memories.md", ""));
/// assert!(is_memory_file("notes.md", "\n# Engineer Agent Memory - demo\n"));
/// assert!(!is_memory_file("Cargo.toml", "[package]\nname = \"x\"\n"));
/// assert!(!is_memory_file("README.md", "# QA Agent Memory\n"));
/// ```
pub fn is_memory_file(file_name: &str, text: &str) -> bool {
    if file_name.eq_ignore_ascii_case("README.md") || file_name.contains("_backup_") {
        return false;
    }
    if agent_id(file_name).is_some() {
        return true;
    }
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty());
    first.is_some_and(|l| {
        l.strip_prefix("# ")
            .is_some_and(|title| title.to_lowercase().contains("agent memory"))
    })
}

fn is_readme(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.eq_ignore_ascii_case("README.md"))
}

/// Checks the path against the policies and reads it (bounded by the hard size limit).
/// Returns the path to write (the link's target when links are followed) and the bytes.
pub(crate) fn read_checked(path: &Path, opts: &Options) -> Result<(PathBuf, Vec<u8>), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    if is_readme(path) {
        return Err(Error::Readme {
            path: path.to_owned(),
        });
    }
    let meta = fs::symlink_metadata(path).map_err(io)?;
    let target = if meta.file_type().is_symlink() {
        match opts.symlinks {
            SymlinkPolicy::Refuse => {
                return Err(Error::Symlink {
                    path: path.to_owned(),
                });
            }
            SymlinkPolicy::Follow => fs::canonicalize(path).map_err(io)?,
        }
    } else {
        path.to_owned()
    };
    if is_readme(&target) {
        return Err(Error::Readme { path: target });
    }
    let meta = fs::metadata(&target).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_owned(),
        });
    }
    if meta.len() > opts.max_file_bytes {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            limit: opts.max_file_bytes,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(&target)
        .map_err(io)?
        .take(opts.max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > opts.max_file_bytes {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            limit: opts.max_file_bytes,
        });
    }
    Ok((target, bytes))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory. The file keeps its permissions.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".mpm-memory-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    if let Ok(meta) = fs::metadata(path) {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        // Best effort: some filesystems refuse fsync on a directory.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes claude-mpm's backup `{stem}_backup_{YYYYmmdd_HHMMSS}{suffix}` beside `path`, never over
/// an existing file (a `_2`, `_3`, ... is added in the same second).
pub(crate) fn write_backup(path: &Path, bytes: &[u8]) -> Result<PathBuf, Error> {
    let (y, mo, d, h, mi, s) = utc_now();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("."));
    let base = format!("{stem}_backup_{y:04}{mo:02}{d:02}_{h:02}{mi:02}{s:02}");
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{base}{suffix}")
        } else {
            format!("{base}_{n}{suffix}")
        };
        let candidate = dir.join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut f) => {
                let io = |source| Error::Io {
                    path: candidate.clone(),
                    source,
                };
                f.write_all(bytes).map_err(io)?;
                f.sync_all().map_err(io)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(Error::Io {
                    path: candidate,
                    source,
                });
            }
        }
    }
    Err(Error::Io {
        path: path.to_owned(),
        source: std::io::Error::other("no free backup name"),
    })
}

/// A `.claude-mpm/memories` directory.
///
/// ```
/// use mpm_memory_opt::{FileOptions, MemoryStore, Options};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("engineer_memories.md"), "## Learnings\n- a\n- a\n")?;
/// std::fs::write(dir.path().join("qa_agent.md"), "## Learnings\n- b\n")?;
/// std::fs::write(dir.path().join("README.md"), "not a memory\n")?;
/// let store = MemoryStore::new(dir.path(), Options::default());
/// assert_eq!(store.agents()?, ["engineer", "qa"]);
/// let results = store.optimize_all(2, FileOptions::default());
/// assert_eq!(results.len(), 2);
/// assert_eq!(std::fs::read_to_string(dir.path().join("engineer_memories.md"))?, "## Learnings\n- a\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    dir: PathBuf,
    optimizer: Optimizer,
}

impl MemoryStore {
    /// A store over `dir` with these options.
    pub fn new(dir: impl Into<PathBuf>, options: Options) -> MemoryStore {
        MemoryStore {
            dir: dir.into(),
            optimizer: Optimizer::new(options),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The memory files, sorted by name: `*_memories.md` and `*_agent.md` (README.md and
    /// backups excluded). An agent with both names is listed under both files.
    pub fn files(&self) -> Result<Vec<PathBuf>, Error> {
        let io = |source| Error::Io {
            path: self.dir.clone(),
            source,
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            if name.to_str().and_then(agent_id).is_some() {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// The agent ids, sorted and without repeats.
    pub fn agents(&self) -> Result<Vec<String>, Error> {
        let mut ids: Vec<String> = self
            .files()?
            .iter()
            .filter_map(|p| {
                p.file_name()?
                    .to_str()
                    .and_then(agent_id)
                    .map(str::to_owned)
            })
            .collect();
        ids.dedup();
        Ok(ids)
    }

    /// The file of an agent: `{id}_memories.md` if it exists, else `{id}_agent.md`.
    pub fn path_of(&self, agent: &str) -> PathBuf {
        let new = self.dir.join(format!("{agent}_memories.md"));
        if new.exists() {
            new
        } else {
            self.dir.join(format!("{agent}_agent.md"))
        }
    }

    /// Optimizes every memory file with at most `concurrency` threads; one result per file, in
    /// file-name order. An error on one file does not stop the others.
    pub fn optimize_all(
        &self,
        concurrency: usize,
        options: FileOptions,
    ) -> Vec<(PathBuf, Result<Report, Error>)> {
        let files = match self.files() {
            Ok(f) => f,
            Err(e) => return vec![(self.dir.clone(), Err(e))],
        };
        let results: Vec<std::sync::Mutex<Option<Result<Report, Error>>>> =
            files.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..concurrency.clamp(1, files.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        let r = self.optimizer.optimize_file(path, options);
                        if let Ok(mut slot) = results[i].lock() {
                            *slot = Some(r);
                        }
                    }
                });
            }
        });
        files
            .into_iter()
            .zip(results)
            .map(|(p, m)| {
                let r = m.into_inner().ok().flatten().unwrap_or_else(|| {
                    Err(Error::Io {
                        path: p.clone(),
                        source: std::io::Error::other("worker did not finish"),
                    })
                });
                (p, r)
            })
            .collect()
    }

    /// Whether an agent's file is past the trigger (`trigger_ratio` of `size_limit`, 80% of
    /// 80 KB by default).
    pub fn needs_optimization(&self, agent: &str) -> Result<bool, Error> {
        let opts = self.optimizer.options();
        let Some(limit) = opts.size_limit else {
            return Ok(false);
        };
        let path = self.path_of(agent);
        let len = fs::metadata(&path)
            .map_err(|source| Error::Io { path, source })?
            .len();
        Ok(len as f64 > limit as f64 * opts.trigger_ratio)
    }

    /// Optimizes an agent's file if it is past the trigger; `None` when it is not.
    pub fn auto_optimize_if_needed(&self, agent: &str) -> Result<Option<Report>, Error> {
        if !self.needs_optimization(agent)? {
            return Ok(None);
        }
        self.optimizer
            .optimize_file(&self.path_of(agent), FileOptions::default())
            .map(Some)
    }
}
