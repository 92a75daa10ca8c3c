//! From the command line's paths to the memory files to work on.

use std::io::Read;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use mpm_memory_opt::{MemoryStore, Options, is_memory_file};

/// How many bytes of a file named on the command line are read to find its header.
const HEADER_PROBE: u64 = 4096;

/// The memory files named by `paths`, and the errors met (per path).
///
/// A directory gives its memory files (`*_memories.md`, `*_agent.md`); a directory without any
/// is an error that says where it looked. A file is kept when it is named or headed as a memory
/// file (see [`is_memory_file`]), or with `force`; a file that cannot be read is kept, so that
/// the optimizer reports why.
pub(crate) fn expand(paths: &[PathBuf], force: bool) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            match MemoryStore::new(p, Options::default()).files() {
                Ok(found) if found.is_empty() => errors.push((p.clone(), nothing_found(p))),
                Ok(found) => files.extend(found),
                Err(e) => errors.push((p.clone(), e.to_string())),
            }
        } else if force || !p.is_file() || looks_like_memory(p) {
            files.push(p.clone());
        } else {
            errors.push((
                p.clone(),
                "not a memory file: claude-mpm names them `{agent}_memories.md` or `{agent}_agent.md` and opens them with `# {Agent} Agent Memory`; pass --force to use it anyway".to_owned(),
            ));
        }
    }
    (files, errors)
}

fn looks_like_memory(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(HEADER_PROBE).read_to_end(&mut head);
    }
    is_memory_file(name, &String::from_utf8_lossy(&head))
}

fn nothing_found(dir: &Path) -> String {
    let mut msg = format!(
        "no memory files found in {} (looked for *_memories.md and *_agent.md)",
        dir.display()
    );
    let nested = dir.join(".claude-mpm").join("memories");
    if nested.is_dir() {
        msg.push_str(&format!("; did you mean {}?", nested.display()));
    }
    msg
}

/// A progress bar on standard error for `n` files (hidden for JSON output and when standard
/// error is not a terminal).
pub(crate) fn progress(n: usize, json: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if json || n < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(n as u64).with_style(style)
}
