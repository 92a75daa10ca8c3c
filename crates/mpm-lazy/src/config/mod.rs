//! [`LazyConfig`]: a configuration file whose sections are parsed into typed structs on first use.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use once_cell::sync::OnceCell;
use parking_lot::{Mutex, RwLock};
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::Error;
pub use builder::ConfigBuilder;
use builder::ConfigMetrics;
#[cfg(not(all(feature = "toml", feature = "yaml")))]
use errors::disabled_error;
#[cfg(feature = "toml")]
use errors::toml_error;
#[cfg(feature = "yaml")]
use errors::yaml_error;
use errors::{At, Chunks, json_error, line_of};
use pick::pick;
use scan::{SectionRegions, scan_json, scan_toml, scan_yaml};

mod builder;
mod errors;
mod pick;
mod scan;

/// The formats a [`LazyConfig`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// TOML; top-level tables are the sections.
    Toml,
    /// JSON; the keys of the top-level object are the sections.
    Json,
    /// YAML; the keys of the top-level mapping are the sections.
    Yaml,
}

impl Format {
    /// The format named by the extension of `path` (`toml`, `json`, `yaml`, `yml`).
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Self::Toml),
            "json" => Some(Self::Json),
            "yaml" | "yml" => Some(Self::Yaml),
            _ => None,
        }
    }

    /// Whether this build of the crate reads the format: JSON always, TOML with the `toml`
    /// feature, YAML with the `yaml` feature (both on by default).
    pub const fn is_enabled(self) -> bool {
        match self {
            Self::Json => true,
            Self::Toml => cfg!(feature = "toml"),
            Self::Yaml => cfg!(feature = "yaml"),
        }
    }
}

/// What [`LazyConfig::reload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reload {
    /// The file's content is the one already loaded; nothing changed.
    Unchanged,
    /// The new content is in use; `reparsed` sections that had been read were parsed again.
    Applied {
        /// Sections (per type) parsed again from the new content.
        reparsed: usize,
    },
}

type AnySection = Arc<dyn Any + Send + Sync>;
type Reparse = fn(&LazyConfig, &Snapshot, &str) -> Result<AnySection, Error>;

struct Cached {
    value: AnySection,
    reparse: Reparse,
}

/// Where the sections are in the text, found by a light scan on first use.
enum Index {
    /// Sections as byte ranges; `root` (TOML keys before the first table) is part of every one.
    Regions {
        root: Range<usize>,
        sections: SectionRegions,
    },
    /// JSON: each top-level key's value.
    Values(HashMap<String, Range<usize>>),
    /// The scan could not split the text safely; every section parses the whole document.
    WholeDocument,
}

/// One version of the file's content, and what was parsed from it.
struct Snapshot {
    /// The file as opened, until its content is read on first use.
    source: Mutex<Option<File>>,
    text: OnceCell<String>,
    index: OnceLock<Index>,
    sections: RwLock<HashMap<(String, TypeId), Cached>>,
}

impl Snapshot {
    fn opened(file: File) -> Self {
        Self {
            source: Mutex::new(Some(file)),
            text: OnceCell::new(),
            index: OnceLock::new(),
            sections: RwLock::new(HashMap::new()),
        }
    }

    fn with_text(text: String) -> Self {
        Self {
            source: Mutex::new(None),
            text: OnceCell::with_value(text),
            index: OnceLock::new(),
            sections: RwLock::new(HashMap::new()),
        }
    }

    /// The content, read from the opened file on the first call.
    fn text(&self, path: &Path) -> Result<&str, Error> {
        self.text
            .get_or_try_init(|| {
                let mut source = self.source.lock();
                let io = |source| Error::ConfigIo {
                    path: path.to_owned(),
                    source,
                };
                let file = source.as_mut().ok_or_else(|| {
                    io(std::io::Error::other(
                        "the opened file is no longer available",
                    ))
                })?;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                let mut text = String::new();
                file.read_to_string(&mut text).map_err(io)?;
                *source = None;
                Ok(text)
            })
            .map(String::as_str)
    }
}

/// A configuration file (TOML, JSON or YAML) whose sections are parsed into typed structs only
/// when first asked for: the guide's `Config.get_section`.
///
/// - [`open`](LazyConfig::open) opens the file and parses nothing, so opening a file of 1,000
///   sections costs what opening one of 10 costs. The content is read once, through the handle
///   opened then, on first use; every section comes from that one read (a file replaced by an
///   atomic rename after `open` is not seen until [`reload`](LazyConfig::reload)).
/// - [`section`](LazyConfig::section) parses one section into any `serde` type on first use and
///   caches it per type; later reads return the cached `Arc`.
/// - Errors name the file, the section, the field and the line (where the format gives one).
/// - [`reload`](LazyConfig::reload) reads the file again; if the new content is invalid, or a
///   section already in use no longer parses, the old values stay and the error says why.
///
/// ```
/// use serde::Deserialize;
/// use mpm_lazy::LazyConfig;
///
/// #[derive(Deserialize)]
/// struct Dashboard { port: u16 }
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("mpm.toml");
/// std::fs::write(&path, "[dashboard]\nport = 8765\n\n[memory]\nlimit_kb = 80\n")?;
///
/// let config = LazyConfig::open(&path)?;
/// assert_eq!(config.parsed_sections(), 0);
/// assert_eq!(config.section::<Dashboard>("dashboard")?.port, 8765);
/// assert_eq!(config.parsed_sections(), 1); // `memory` is still unparsed text
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LazyConfig {
    path: PathBuf,
    format: Format,
    // In an `Arc` so the metrics' collector can read it at scrape time.
    current: Arc<ArcSwap<Snapshot>>,
    reloads: AtomicU64,
    metrics: Option<ConfigMetrics>,
}

impl LazyConfig {
    /// Opens the file at `path`, in the format its extension names; reads and parses nothing yet.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownFormat`], [`Error::FormatNotEnabled`] or [`Error::ConfigIo`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let format = Format::from_path(path).ok_or_else(|| Error::UnknownFormat {
            path: path.to_owned(),
        })?;
        Self::open_as(path, format)
    }

    /// Opens the file at `path` as `format`; reads and parses nothing yet.
    ///
    /// # Errors
    ///
    /// [`Error::FormatNotEnabled`] when the crate is built without the format's feature;
    /// [`Error::ConfigIo`] when the file cannot be opened or is not a regular file.
    pub fn open_as(path: impl AsRef<Path>, format: Format) -> Result<Self, Error> {
        let path = path.as_ref().to_owned();
        if !format.is_enabled() {
            return Err(Error::FormatNotEnabled { path, format });
        }
        let io = |source| Error::ConfigIo {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        if !file.metadata().map_err(io)?.is_file() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        Ok(Self {
            current: Arc::new(ArcSwap::from_pointee(Snapshot::opened(file))),
            path,
            format,
            reloads: AtomicU64::new(0),
            metrics: None,
        })
    }

    /// A builder, to choose the format or report into a metrics registry.
    pub fn builder(path: impl AsRef<Path>) -> ConfigBuilder {
        ConfigBuilder::new(path.as_ref().to_owned())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Successful reloads that changed the content.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Sections (per type) parsed so far from the current content.
    pub fn parsed_sections(&self) -> usize {
        self.current.load().sections.read().len()
    }

    /// The top-level section names, sorted. Scans the file on the first call, without parsing
    /// sections; empty when the layout is too unusual to scan (sections still parse).
    ///
    /// # Errors
    ///
    /// [`Error::ConfigIo`] when the content cannot be read.
    pub fn section_names(&self) -> Result<Vec<String>, Error> {
        let snapshot = self.current.load();
        let text = snapshot.text(&self.path)?;
        Ok(match index(self.format, &snapshot, text) {
            Index::Regions { sections, .. } => {
                let mut names: Vec<String> = sections
                    .iter()
                    .map(|span| text[span.name.clone()].to_owned())
                    .collect();
                names.sort_unstable();
                names.dedup();
                names
            }
            Index::Values(values) => sorted_keys(values.keys()),
            Index::WholeDocument => Vec::new(),
        })
    }

    /// The section `name` as a `T`, parsed on the first call (per type) and cached.
    ///
    /// # Errors
    ///
    /// [`Error::MissingSection`] or [`Error::ConfigParse`] (naming file, section, field, line).
    pub fn section<T>(&self, name: &str) -> Result<Arc<T>, Error>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let snapshot = self.current.load();
        let key = (name.to_owned(), TypeId::of::<T>());
        if let Some(cached) = snapshot.sections.read().get(&key) {
            return Ok(downcast(&cached.value));
        }
        let started = Instant::now();
        let value = parse_any::<T>(self, &snapshot, name);
        if let Some(metrics) = &self.metrics {
            metrics.parsed(started, value.is_ok());
        }
        let value = value?;
        let mut sections = snapshot.sections.write();
        let cached = sections.entry(key).or_insert(Cached {
            value,
            reparse: parse_any::<T>,
        });
        Ok(downcast(&cached.value))
    }

    /// Parses the whole current content (every section, as untyped data), which
    /// [`section`](LazyConfig::section) alone never does: a syntax error in a section nobody reads
    /// shows up here.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigParse`] for the first syntax error.
    pub fn validate(&self) -> Result<(), Error> {
        let snapshot = self.current.load();
        validate(self, snapshot.text(&self.path)?)
    }

    /// Reads the file again. If its content changed and is valid, and every section already read
    /// parses again (with the type it was read as), the new content replaces the old; readers
    /// holding old sections keep them. Otherwise nothing changes.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigIo`] or [`Error::ConfigParse`]: why the new content was refused. The old
    /// values stay in use.
    pub fn reload(&self) -> Result<Reload, Error> {
        let result = self.reload_inner();
        if let Some(metrics) = &self.metrics {
            metrics.reloaded(&result);
        }
        result
    }

    fn reload_inner(&self) -> Result<Reload, Error> {
        let text = read(&self.path)?;
        let old = self.current.load_full();
        if old.text(&self.path).is_ok_and(|old| old == text) {
            return Ok(Reload::Unchanged);
        }
        validate(self, &text)?;
        let fresh = Snapshot::with_text(text);
        let reparsed: Vec<((String, TypeId), Cached)> = {
            let sections = old.sections.read();
            let mut reparsed = Vec::with_capacity(sections.len());
            for (key, cached) in sections.iter() {
                let value = (cached.reparse)(self, &fresh, &key.0)?;
                reparsed.push((
                    key.clone(),
                    Cached {
                        value,
                        reparse: cached.reparse,
                    },
                ));
            }
            reparsed
        };
        let count = reparsed.len();
        fresh.sections.write().extend(reparsed);
        self.current.store(Arc::new(fresh));
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(Reload::Applied { reparsed: count })
    }
}

impl fmt::Debug for LazyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyConfig")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("parsed_sections", &self.parsed_sections())
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::ConfigIo {
        path: path.to_owned(),
        source,
    })
}

fn sorted_keys<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut names: Vec<String> = keys.cloned().collect();
    names.sort_unstable();
    names
}

fn downcast<T: Send + Sync + 'static>(value: &AnySection) -> Arc<T> {
    Arc::clone(value)
        .downcast::<T>()
        .unwrap_or_else(|_| unreachable!("sections are cached under their TypeId"))
}

fn parse_any<T>(config: &LazyConfig, snapshot: &Snapshot, name: &str) -> Result<AnySection, Error>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let value: T = parse_section(config, snapshot, name)?;
    Ok(Arc::new(value))
}

fn index<'a>(format: Format, snapshot: &'a Snapshot, text: &str) -> &'a Index {
    snapshot.index.get_or_init(|| {
        let index = match format {
            Format::Toml => {
                scan_toml(text).map(|(root, sections)| Index::Regions { root, sections })
            }
            Format::Yaml => scan_yaml(text).map(|sections| Index::Regions {
                root: 0..0,
                sections,
            }),
            Format::Json => scan_json(text).map(Index::Values),
        };
        index.unwrap_or(Index::WholeDocument)
    })
}

/// Checks that the whole text parses (used by reload, where a full parse is worth its cost).
fn validate(config: &LazyConfig, text: &str) -> Result<(), Error> {
    let result = match config.format {
        #[cfg(feature = "toml")]
        Format::Toml => toml::from_str::<IgnoredAny>(text)
            .map(|_| ())
            .map_err(|e| toml_error(&e, None)),
        Format::Json => serde_json::from_str::<IgnoredAny>(text)
            .map(|_| ())
            .map_err(|e| json_error(&e, None)),
        #[cfg(feature = "yaml")]
        Format::Yaml => serde_norway::from_str::<IgnoredAny>(text)
            .map(|_| ())
            .map_err(|e| yaml_error(&e, None)),
        #[cfg(not(all(feature = "toml", feature = "yaml")))]
        disabled => Err(disabled_error(disabled)),
    };
    result.map_err(|raw| raw.into_error(config, "", text, &Chunks::identity()))
}

fn parse_section<T: DeserializeOwned>(
    config: &LazyConfig,
    snapshot: &Snapshot,
    name: &str,
) -> Result<T, Error> {
    let text = snapshot.text(&config.path)?;
    let format = config.format;
    let missing = || Error::MissingSection {
        path: config.path.clone(),
        section: name.to_owned(),
    };
    match index(format, snapshot, text) {
        Index::Regions { root, sections } => {
            // The section's own text: the root keys plus every region of the section.
            let regions = sections
                .iter()
                .filter(|span| &text[span.name.clone()] == name)
                .map(|span| &span.region);
            let mut part = String::new();
            let mut chunks = Vec::new();
            for range in std::iter::once(root).chain(regions) {
                chunks.push((part.len(), range.start));
                part.push_str(&text[range.clone()]);
                if !part.ends_with('\n') {
                    part.push('\n');
                }
            }
            match pick::<T>(format, &part, name) {
                Ok(Some(value)) => Ok(value),
                Ok(None) => Err(missing()),
                // The fast path failed: the whole document gives the authoritative answer.
                Err(_) => whole_document(config, text, name),
            }
        }
        Index::Values(values) => {
            let Some(range) = values.get(name) else {
                return Err(missing());
            };
            let mut track = serde_path_to_error::Track::new();
            let mut de = serde_json::Deserializer::from_str(&text[range.clone()]);
            let result =
                T::deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
            result.map_err(|e| {
                let path = track.path().to_string();
                let mut raw = json_error(&e, Some(format!("{name}.{path}")));
                if let At::Line(line) = raw.at {
                    raw.at = At::Line(line + line_of(text, range.start) - 1);
                }
                raw.into_error(config, name, text, &Chunks::identity())
            })
        }
        Index::WholeDocument => whole_document(config, text, name),
    }
}

fn whole_document<T: DeserializeOwned>(
    config: &LazyConfig,
    text: &str,
    name: &str,
) -> Result<T, Error> {
    match pick::<T>(config.format, text, name) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(Error::MissingSection {
            path: config.path.clone(),
            section: name.to_owned(),
        }),
        Err(raw) => {
            // An error before the section was reached is about the file, not the section.
            let section = if raw
                .path
                .as_deref()
                .is_some_and(|p| p.split('.').next() == Some(name))
            {
                name
            } else {
                ""
            };
            Err(raw.into_error(config, section, text, &Chunks::identity()))
        }
    }
}
