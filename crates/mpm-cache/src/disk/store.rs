//! The store file behind a `DiskTier`, guarded so that no content of the file makes us panic.
//!
//! redb trusts a file that was shut down cleanly: it checks page checksums only when it repairs
//! after an unclean shutdown (or when asked to, which reads the whole file), and it panics on
//! some damaged pages (`unreachable!`, slice indexes, and debug assertions at open in builds
//! that have them). So every call into redb runs under [`Store::run`], which catches a panic
//! and treats it, like redb's own `Corrupted` errors and a read past the end of a truncated
//! file, as a damaged store: the file is moved aside (`cache.redb.corrupt-<ms>`), counted in
//! `DiskStats::corrupt_files`, and replaced by an empty store, and the call is tried once more
//! on it. A cache may always start empty; what it must not do is answer from a damaged file.
//!
//! A store that is intact but that redb will not use any more after an I/O error (it reports
//! `PreviousIo` until reopened) is reopened in place instead.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, TableDefinition};

use crate::Error;
use crate::stats::DiskStats;

/// What went wrong inside a guarded call.
pub(super) enum Fault {
    /// redb's error (sorted into damage, a dead handle, or a plain failure by [`Store::run`]).
    Redb(redb::Error),
    /// Our own error, passed through as it is.
    Ours(Error),
}

impl<E: Into<redb::Error>> From<E> for Fault {
    fn from(e: E) -> Self {
        Fault::Redb(e.into())
    }
}

/// How a failed call leaves the store.
enum Damage {
    /// The file's content is damaged: move it aside and start empty.
    Corrupt(String),
    /// The handle refuses work after an earlier I/O error: reopen the same file.
    Stale,
}

fn damage(e: &redb::Error) -> Option<Damage> {
    match e {
        redb::Error::Corrupted(m) => Some(Damage::Corrupt(m.clone())),
        redb::Error::TableTypeMismatch { .. }
        | redb::Error::TypeDefinitionChanged { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::UpgradeRequired(_) => Some(Damage::Corrupt(e.to_string())),
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Some(Damage::Corrupt(format!("truncated: {io}")))
        }
        redb::Error::PreviousIo | redb::Error::LockPoisoned(_) => Some(Damage::Stale),
        _ => None,
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("the storage engine panicked: {what}")
}

/// The tables a store holds; created at open so that readers never meet a missing table.
pub(super) type Tables = [TableDefinition<'static, &'static [u8], &'static [u8]>];

/// The guarded database handle. See the module docs.
pub(super) struct Store {
    path: PathBuf,
    db: RwLock<Arc<Database>>,
    tables: &'static Tables,
    stats: DiskStats,
}

impl Store {
    /// Opens (or creates) the store at `path`. A file that is damaged, foreign, truncated or
    /// makes the engine panic is moved aside and replaced by an empty store; `verify` reads
    /// the whole file at open and checks every page checksum first (slow: see the crate docs).
    pub(super) fn open(
        path: PathBuf,
        tables: &'static Tables,
        stats: DiskStats,
        verify: bool,
    ) -> Result<Self, Error> {
        let db = match Self::try_open(&path, tables, verify) {
            Ok(db) => db,
            Err(Fault::Redb(e)) if damage(&e).is_some() || !starts_like_a_store(&path) => {
                Self::set_aside(&path, &stats)?;
                Self::try_open(&path, tables, false).map_err(|f| fault_error(&path, "open", f))?
            }
            Err(f) => return Err(fault_error(&path, "open", f)),
        };
        Ok(Self {
            path,
            db: RwLock::new(Arc::new(db)),
            tables,
            stats,
        })
    }

    fn try_open(path: &Path, tables: &'static Tables, verify: bool) -> Result<Database, Fault> {
        let opened = catch_unwind(|| -> Result<Database, Fault> {
            let mut b = Database::builder();
            b.set_check_integrity_on_open(verify);
            let db = b.create(path)?;
            // Reading the tables checks their types; only a new store needs a write (and an
            // `fsync`) to create them.
            let missing = {
                let tx = db.begin_read()?;
                let mut missing = false;
                for t in tables {
                    match tx.open_table(*t) {
                        Ok(_) => {}
                        Err(redb::TableError::TableDoesNotExist(_)) => missing = true,
                        Err(e) => return Err(e.into()),
                    }
                }
                missing
            };
            if missing {
                let tx = db.begin_write()?;
                for t in tables {
                    tx.open_table(*t)?;
                }
                tx.commit()?;
            }
            Ok(db)
        });
        opened.unwrap_or_else(|p| {
            Err(Fault::Redb(redb::Error::Corrupted(panic_message(
                p.as_ref(),
            ))))
        })
    }

    /// Moves the file at `path` aside and counts it.
    fn set_aside(path: &Path, stats: &DiskStats) -> Result<(), Error> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let name = path
            .file_name()
            .map_or_else(|| "cache.redb".into(), |n| n.to_string_lossy().into_owned());
        let aside = path.with_file_name(format!("{name}.corrupt-{stamp}"));
        std::fs::rename(path, &aside).map_err(|source| Error::Io {
            op: "move aside",
            path: path.to_owned(),
            source,
        })?;
        stats.corrupt_files.inc();
        Ok(())
    }

    /// The store's file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn current(&self) -> Arc<Database> {
        Arc::clone(
            &self
                .db
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Runs `f` on the database once; a damaged store is replaced (see the module docs) and
    /// reported as [`Error::Corrupt`] without retrying.
    pub(super) fn run_once<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Database) -> Result<T, Fault>,
    ) -> Result<T, Error> {
        let db = self.current();
        let outcome = catch_unwind(AssertUnwindSafe(|| f(&db)));
        let seen = db;
        let fault = match self.sort(op, outcome) {
            Ok(v) => {
                close(seen);
                return v;
            }
            Err(d) => d,
        };
        let message = match &fault {
            Damage::Corrupt(m) => m.clone(),
            Damage::Stale => "the store refused work after an I/O error".to_owned(),
        };
        let replaced = self.replace(&seen, fault);
        close(seen);
        replaced?;
        Err(Error::Corrupt {
            path: self.path.clone(),
            message,
        })
    }

    /// Sorts the outcome of a guarded call: a result to return as it is, or damage.
    fn sort<T>(
        &self,
        op: &'static str,
        outcome: std::thread::Result<Result<T, Fault>>,
    ) -> Result<Result<T, Error>, Damage> {
        match outcome {
            Ok(Ok(v)) => Ok(Ok(v)),
            Ok(Err(Fault::Ours(e))) => Ok(Err(e)),
            Ok(Err(Fault::Redb(e))) => match damage(&e) {
                Some(d) => Err(d),
                None => Ok(Err(redb_error(&self.path, op, &e))),
            },
            Err(p) => Err(Damage::Corrupt(panic_message(p.as_ref()))),
        }
    }

    /// Runs `f` on the database; if the store turns out damaged, it is replaced and `f` runs
    /// once more on the fresh store.
    pub(super) fn run<T>(
        &self,
        op: &'static str,
        mut f: impl FnMut(&Database) -> Result<T, Fault>,
    ) -> Result<T, Error> {
        match self.run_once(op, &mut f) {
            Err(Error::Corrupt { .. }) => self.run_once(op, f),
            r => r,
        }
    }

    /// Replaces the database `seen` (unless another thread already did): moves a damaged file
    /// aside and starts an empty store, or reopens a stale handle's file.
    fn replace(&self, seen: &Arc<Database>, damage: Damage) -> Result<(), Error> {
        let mut db = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !Arc::ptr_eq(&db, seen) {
            return Ok(());
        }
        let fresh = match damage {
            Damage::Corrupt(_) => {
                Self::set_aside(&self.path, &self.stats)?;
                Self::try_open(&self.path, self.tables, false)
            }
            Damage::Stale => match Self::try_open(&self.path, self.tables, false) {
                Err(Fault::Redb(e)) if damage_is_corrupt(&e) => {
                    Self::set_aside(&self.path, &self.stats)?;
                    Self::try_open(&self.path, self.tables, false)
                }
                r => r,
            },
        }
        .map_err(|f| fault_error(&self.path, "reopen", f))?;
        let old = std::mem::replace(&mut *db, Arc::new(fresh));
        drop(db);
        close(old);
        Ok(())
    }
}

/// Drops a handle to a database; closing a damaged database (when this is the last handle)
/// may meet the damage again, so a panic there is contained.
fn close(db: Arc<Database>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(db)));
}

fn damage_is_corrupt(e: &redb::Error) -> bool {
    matches!(damage(e), Some(Damage::Corrupt(_)))
}

impl Drop for Store {
    fn drop(&mut self) {
        let db = std::mem::replace(
            self.db.get_mut().unwrap_or_else(|p| p.into_inner()),
            Arc::new(placeholder()),
        );
        close(db);
    }
}

/// An in-memory database, only to take the place of the real one while it is dropped.
fn placeholder() -> Database {
    match Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()) {
        Ok(db) => db,
        Err(e) => unreachable!("an in-memory redb database cannot fail to open: {e}"),
    }
}

/// Whether `path` starts like a redb file (its magic number) or is empty or absent. A store that
/// fails to open for another reason (permissions, a full disk) is never moved aside.
fn starts_like_a_store(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return true;
    };
    const MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
    let mut magic = [0u8; 9];
    match f.read_exact(&mut magic) {
        Ok(()) => magic == MAGIC,
        Err(_) => false,
    }
}

fn redb_error(path: &Path, op: &'static str, e: &redb::Error) -> Error {
    Error::Storage {
        op,
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn fault_error(path: &Path, op: &'static str, f: Fault) -> Error {
    match f {
        Fault::Ours(e) => e,
        Fault::Redb(e) => redb_error(path, op, &e),
    }
}
