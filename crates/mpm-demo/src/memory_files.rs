//! The agent memory files shipped with the demo, and how they were made.
//!
//! An agent that runs for months writes the same learnings again and again, in other case and
//! spacing, with a "Note:" in front or a word more, until its memory file is mostly repetition.
//! [`generate`] writes such a file from a fixed seed: learnings made of a subject and a piece of
//! advice (so two learnings share at most one half), each repeated a number of times with the
//! small variations agents make. The files in `memories/` are its output (a test checks that
//! they still are), the largest shaped like the performance guide's 156,800-byte example.

/// The sections claude-mpm writes, in its order.
const SECTIONS: [&str; 8] = [
    "Project Architecture",
    "Coding Patterns Learned",
    "Implementation Guidelines",
    "Common Mistakes to Avoid",
    "Integration Points",
    "Performance Considerations",
    "Current Technical Context",
    "Recent Learnings",
];

const SUBJECTS: [&str; 48] = [
    "the agent registry in services/registry.py",
    "database migrations under db/migrations",
    "the SocketIO event handlers",
    "the deployment pipeline script",
    "memory files in .claude-mpm/memories",
    "the hook service's pre-tool hooks",
    "cached agent profiles",
    "the ticket API client",
    "configuration loaded from .claude-mpm/config.yaml",
    "the async task runner",
    "the CLI's argument parser",
    "the response logger",
    "template rendering in agent_deployment.py",
    "the health monitor thread",
    "JSON schema validation of agents",
    "the project indexer",
    "the session manager's resume logic",
    "the websocket dashboard server",
    "unit tests under tests/services",
    "the framework loader",
    "environment variables for API keys",
    "the retry decorator in utils/retry.py",
    "the Redis-backed rate limiter",
    "log rotation for the monitor",
    "the PostgreSQL connection pool",
    "the version bump script",
    "the MCP gateway's tool registry",
    "subprocess calls to git",
    "the frontmatter parser for agent files",
    "background cache warming at start-up",
    "the event bus's topic names",
    "file watchers on the agents directory",
    "the Docker build for the dashboard",
    "pagination in the ticket listing",
    "timezone handling in timestamps",
    "the circuit breaker around the model API",
    "feature flags in settings.toml",
    "import cycles between core and services",
    "the optimizer's similarity threshold",
    "the agent capability matrix",
    "error messages shown to users",
    "the pre-commit hooks",
    "load tests of the event broadcaster",
    "serialization of agent state",
    "the plugin discovery entry points",
    "temporary directories in tests",
    "the release checklist",
    "the metrics exporter",
];

const ADVICE: [&str; 48] = [
    "must be read before any change to its callers",
    "should be covered by an integration test, not only mocks",
    "breaks silently when the schema version is not bumped",
    "needs a timeout on every network call it makes",
    "is loaded lazily, so the first request pays for it",
    "keeps state per process and is not shared between workers",
    "has to be invalidated when the template file changes on disk",
    "logs at debug level only; raise it when investigating",
    "takes a lock that callers must never hold across an await",
    "is the slowest step of start-up, about a third of it",
    "expects paths relative to the project root",
    "returns errors as values; never catch the broad exception around it",
    "writes atomically through a temporary file and a rename",
    "is retried three times with backoff before giving up",
    "was rewritten in the last release and its docs lag behind",
    "counts towards the 80 KB memory limit, so keep entries short",
    "must stay backwards compatible with the v3 file layout",
    "is safe to call from several threads at once",
    "leaks file handles when an exception escapes its context manager",
    "depends on the order of sections in the file",
    "is configured by environment first, then the config file",
    "should use pathlib instead of os.path string joins",
    "is monitored by a health check every thirty seconds",
    "caches results for five minutes unless told otherwise",
    "must never run on the event loop thread",
    "uses UTC everywhere; convert only for display",
    "is the only place allowed to spawn subprocesses",
    "reads the whole file into memory, which is fine below a megabyte",
    "was the cause of last week's flaky test on CI",
    "needs the feature flag on in staging before production",
    "emits one event per state change, never batched",
    "keeps a bounded queue and drops the oldest entries when full",
    "is covered by property tests with random inputs",
    "requires the admin scope on the API token",
    "fails fast when the database is unreachable at start-up",
    "should be profiled before anyone optimizes it again",
    "shares its connection pool with the background jobs",
    "must validate input size before parsing",
    "prints progress only when attached to a terminal",
    "was measured at under a millisecond per call",
    "stores secrets only through the keyring, never in plain files",
    "has a dry-run mode that writes nothing",
    "sorts entries by priority, then by their original order",
    "rejects unknown fields so typos surface early",
    "is documented in docs/architecture.md with a diagram",
    "is deprecated; new code uses the service container instead",
    "needs its fixtures regenerated after a model change",
    "holds the single source of truth for agent names",
];

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct MemorySpec {
    /// The agent the file belongs to.
    pub agent: &'static str,
    /// The file's size in bytes (reached by the last whole line that fits).
    pub target_bytes: usize,
    /// How many times, on average, each learning is written.
    pub repeats: usize,
    /// The seed.
    pub seed: u64,
}

/// The files shipped in `memories/`: the guide-shaped engineer file and two smaller ones.
pub const SHIPPED: [MemorySpec; 3] = [
    MemorySpec {
        agent: "engineer",
        target_bytes: 156_800,
        repeats: 3,
        seed: 1,
    },
    MemorySpec {
        agent: "qa",
        target_bytes: 24_000,
        repeats: 3,
        seed: 2,
    },
    MemorySpec {
        agent: "research",
        target_bytes: 9_000,
        repeats: 2,
        seed: 3,
    },
];

/// The file name claude-mpm v4.0.20 and later gives an agent's memory.
pub fn file_name(agent: &str) -> String {
    format!("{agent}_memories.md")
}

fn vary(rng: &mut fastrand::Rng, s: &str) -> String {
    match rng.usize(..6) {
        0 | 1 => s.to_owned(),
        2 => {
            let mut c = s.chars();
            c.next().map_or_else(String::new, |f| {
                f.to_uppercase().collect::<String>() + c.as_str()
            })
        }
        3 => format!("{s}."),
        4 => s.replace(", ", ",  "),
        _ => format!("Note: {s}"),
    }
}

/// Writes a memory file to `spec`.
pub fn generate(spec: MemorySpec) -> String {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let title = format!(
        "# {}{} Agent Memory - agent-service\n\n<!-- MEMORY LIMITS: 80KB max | 10 sections max | 15 items per section -->\n<!-- Last Updated: 2026-11-30 09:00:00 | Auto-updated by: {} -->\n",
        spec.agent[..1].to_uppercase(),
        &spec.agent[1..],
        spec.agent
    );
    let headings: usize = SECTIONS.iter().map(|s| s.len() + 5).sum();
    let budget = spec.target_bytes.saturating_sub(title.len() + headings);
    // Distinct learnings: each (subject, advice) pair at most once.
    let mut bodies: Vec<Vec<String>> = vec![Vec::new(); SECTIONS.len()];
    let mut used = std::collections::HashSet::new();
    let mut bytes = 0;
    'fill: loop {
        let (s, a) = loop {
            let pair = (rng.usize(..SUBJECTS.len()), rng.usize(..ADVICE.len()));
            if used.insert(pair) {
                break pair;
            }
            if used.len() == SUBJECTS.len() * ADVICE.len() {
                break 'fill;
            }
        };
        let learning = format!("{} {}", SUBJECTS[s], ADVICE[a]);
        let section = rng.usize(..SECTIONS.len());
        let times = rng.usize(1..2 * spec.repeats);
        for _ in 0..times {
            let line = format!("- {}", vary(&mut rng, &learning));
            if bytes + line.len() + 1 > budget {
                break 'fill;
            }
            bytes += line.len() + 1;
            let at = rng.usize(..=bodies[section].len());
            bodies[section].insert(at, line);
        }
    }
    let mut text = title;
    for (name, body) in SECTIONS.iter().zip(bodies) {
        text.push_str(&format!("\n## {name}\n"));
        for line in body {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text
}

/// The shipped memory files, built into the binary: `(file name, text)`.
pub const SHIPPED_TEXT: [(&str, &str); 3] = [
    (
        "engineer_memories.md",
        include_str!("../memories/engineer_memories.md"),
    ),
    ("qa_memories.md", include_str!("../memories/qa_memories.md")),
    (
        "research_memories.md",
        include_str!("../memories/research_memories.md"),
    ),
];

/// The file of [`SHIPPED_TEXT`] shaped like the guide's 156,800-byte example.
pub const GUIDE_SHAPED: &str = "engineer_memories.md";

/// The directory of the shipped memory files.
pub fn shipped_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("memories")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_near_its_size() {
        for spec in SHIPPED {
            let a = generate(spec);
            assert_eq!(a, generate(spec));
            assert!(a.len() <= spec.target_bytes, "{}", a.len());
            assert!(a.len() + 200 >= spec.target_bytes, "{}", a.len());
        }
    }

    #[test]
    fn the_shipped_files_are_the_generators_output() {
        let regenerate = std::env::var_os("MPM_DEMO_WRITE_MEMORIES").is_some();
        for spec in SHIPPED {
            let path = shipped_dir().join(file_name(spec.agent));
            let text = generate(spec);
            if regenerate {
                std::fs::create_dir_all(shipped_dir()).unwrap();
                std::fs::write(&path, &text).unwrap();
            }
            let shipped = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; regenerate with MPM_DEMO_WRITE_MEMORIES=1 cargo test -p mpm-demo",
                    path.display()
                )
            });
            assert!(
                shipped == text,
                "{} differs from the generator's output",
                path.display()
            );
        }
    }
}
