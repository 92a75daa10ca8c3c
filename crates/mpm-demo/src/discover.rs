//! Step 2: agent discovery: scan a folder of templates, parse and validate each; then serve the
//! same answer from the cache, where each template's entry depends on its file, so that a
//! changed template (and only that one) is loaded again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use mpm_core::cache::{EntryOptions, TieredCache};
use parking_lot::Mutex;

use crate::Error;
use crate::agents::{Agent, template_files};

/// The agents found in a folder of templates, cached per file.
pub struct Discovery {
    dir: PathBuf,
    cache: TieredCache<Arc<Agent>>,
    /// The folder's file list, with the folder's modification time when it was read.
    listing: Mutex<Option<(SystemTime, Arc<[PathBuf]>)>>,
    loads: AtomicU64,
    scans: AtomicU64,
}

impl Discovery {
    /// Discovery of the templates (`*.md`) in `dir`, caching parsed agents in `cache`.
    pub fn new(dir: impl Into<PathBuf>, cache: TieredCache<Arc<Agent>>) -> Self {
        Self {
            dir: dir.into(),
            cache,
            listing: Mutex::new(None),
            loads: AtomicU64::new(0),
            scans: AtomicU64::new(0),
        }
    }

    /// Templates read and parsed so far (cache misses).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// Times the folder was listed so far.
    pub fn scans(&self) -> u64 {
        self.scans.load(Ordering::Relaxed)
    }

    /// The template files, listing the folder again only when it changed.
    fn templates(&self) -> Result<Arc<[PathBuf]>, Error> {
        let modified = std::fs::metadata(&self.dir)
            .and_then(|m| m.modified())
            .map_err(|e| Error::io(&self.dir, e))?;
        let mut listing = self.listing.lock();
        if let Some((at, files)) = &*listing
            && *at == modified
        {
            return Ok(Arc::clone(files));
        }
        self.scans.fetch_add(1, Ordering::Relaxed);
        let files: Arc<[PathBuf]> = template_files(&self.dir)?.into();
        *listing = Some((modified, Arc::clone(&files)));
        Ok(files)
    }

    /// Every agent, in file-name order. A template is read and parsed only when it is not
    /// cached or its file changed since; an invalid template is an error naming it.
    pub async fn discover(&self) -> Result<Vec<Arc<Agent>>, Error> {
        let files = self.templates()?;
        let mut agents = Vec::with_capacity(files.len());
        for path in files.iter() {
            agents.push(self.agent(path).await?);
        }
        Ok(agents)
    }

    async fn agent(&self, path: &Path) -> Result<Arc<Agent>, Error> {
        let key = format!("agent:{}", path.display());
        let options = EntryOptions::new().depends_on(path);
        let loaded = self
            .cache
            .get_or_load_with(&key, options, || async {
                self.loads.fetch_add(1, Ordering::Relaxed);
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                Agent::parse(path, &text).map(Arc::new)
            })
            .await;
        loaded.map_err(|e| Error::Cache(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Discovery) {
        let dir = tempfile::tempdir().unwrap();
        crate::scenario::install_templates(dir.path()).unwrap();
        let cache = TieredCache::builder().build().unwrap();
        let d = Discovery::new(dir.path(), cache);
        (dir, d)
    }

    #[tokio::test]
    async fn a_changed_template_and_only_it_is_loaded_again() {
        let (dir, d) = setup();
        let fresh = d.discover().await.unwrap();
        assert_eq!(fresh.len(), crate::agents::TEMPLATES.len());
        assert_eq!(d.loads(), fresh.len() as u64);
        let cached = d.discover().await.unwrap();
        assert_eq!(d.loads(), fresh.len() as u64, "nothing reloaded");
        assert_eq!(d.scans(), 1);
        assert!(fresh.iter().zip(&cached).all(|(a, b)| Arc::ptr_eq(a, b)));

        // Touch one template: exactly that one is read again, with its new content.
        let qa = dir.path().join("qa.md");
        let text = std::fs::read_to_string(&qa).unwrap() + "\n- Also test the rollback.\n";
        std::fs::write(&qa, text).unwrap();
        let after = d.discover().await.unwrap();
        assert_eq!(d.loads(), fresh.len() as u64 + 1);
        let qa_agent = after.iter().find(|a| a.meta.name == "qa").unwrap();
        assert!(qa_agent.instructions.contains("rollback"));
    }

    #[tokio::test]
    async fn an_invalid_template_is_an_error_naming_it() {
        let (dir, d) = setup();
        std::fs::write(dir.path().join("zz-broken.md"), "no front matter").unwrap();
        let e = d.discover().await.unwrap_err().to_string();
        assert!(e.contains("zz-broken.md"), "{e}");
    }
}
