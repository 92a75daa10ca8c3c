//! The crate's one error type.

use std::path::PathBuf;

/// A boxed error from a service factory.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What failed in a [`LazyRegistry`](crate::LazyRegistry) or a [`LazyConfig`](crate::LazyConfig).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No service of this name is registered.
    #[error("no service named `{service}` is registered")]
    UnknownService {
        /// The name asked for.
        service: String,
    },
    /// Two registrations used one name.
    #[error("service `{service}` is registered twice")]
    DuplicateService {
        /// The name registered twice.
        service: String,
    },
    /// The service exists but holds another type.
    #[error("service `{service}` holds a `{actual}`, not a `{expected}`")]
    TypeMismatch {
        /// The service.
        service: String,
        /// The type asked for.
        expected: &'static str,
        /// The type registered.
        actual: &'static str,
    },
    /// Services depend on each other in a circle; `cycle` starts and ends with the same name.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The services of the cycle, in dependency order, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A synchronous lookup reached a service whose only factories are async.
    #[error("service `{service}` has an async factory; resolve it with `get_async`")]
    RequiresAsync {
        /// The service.
        service: String,
    },
    /// The one implementation of a service failed.
    #[error("service `{service}` failed to initialize: {source}")]
    Factory {
        /// The service.
        service: String,
        /// The implementation that failed.
        implementation: String,
        /// Its error.
        #[source]
        source: BoxError,
    },
    /// Every implementation in a service's fallback chain failed.
    #[error("service `{service}` failed to initialize: {}", fmt_failures(failures))]
    AllImplementationsFailed {
        /// The service.
        service: String,
        /// Each implementation tried, in order, with its error.
        failures: Vec<(String, BoxError)>,
    },
    /// The metrics registry refused the component's metrics at `build` (most often: another
    /// component of the same kind already holds that name in the registry).
    #[error("cannot register the metrics: {source}")]
    Metrics {
        /// The registry's error.
        #[from]
        source: mpm_metrics::Error,
    },
    /// A configuration file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    ConfigIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file's extension names no supported format.
    #[error("configuration file {} has no supported extension (toml, json, yaml, yml)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file's format is one this build does not read: the crate's `toml` or `yaml`
    /// feature is off.
    #[error("configuration file {} is {format:?}, a format this build does not read (enable the mpm-lazy feature of that name)", path.display())]
    FormatNotEnabled {
        /// The file.
        path: PathBuf,
        /// Its format.
        format: crate::Format,
    },
    /// The file has no such top-level section.
    #[error("configuration file {} has no section `{section}`", path.display())]
    MissingSection {
        /// The file.
        path: PathBuf,
        /// The section asked for.
        section: String,
    },
    /// A section (or the whole file) does not parse into the requested type.
    #[error("{}", fmt_parse(path, section, field.as_deref(), *line, message))]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// The section, or empty when the file as a whole is malformed.
        section: String,
        /// The path of the field inside the section (`server.port`), when known.
        field: Option<String>,
        /// The 1-based line in the file, when the format reports one.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
}

fn fmt_failures(failures: &[(String, BoxError)]) -> String {
    let mut out = String::from("every implementation failed");
    for (implementation, error) in failures {
        out.push_str(&format!("; `{implementation}`: {error}"));
    }
    out
}

fn fmt_parse(
    path: &std::path::Path,
    section: &str,
    field: Option<&str>,
    line: Option<usize>,
    message: &str,
) -> String {
    let mut out = format!("{}", path.display());
    if let Some(line) = line {
        out.push_str(&format!(":{line}"));
    }
    if !section.is_empty() {
        out.push_str(&format!(": section `{section}`"));
    }
    if let Some(field) = field {
        out.push_str(&format!(", field `{field}`"));
    }
    out.push_str(&format!(": {message}"));
    out
}
