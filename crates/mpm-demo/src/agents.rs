//! Agent templates: a Markdown file with a YAML front matter block, parsed, validated and rendered.
//!
//! ```text
//! ---
//! name: engineer
//! description: Implements features and fixes.
//! version: 2.3.0
//! model: sonnet
//! tools: [Read, Write, Edit, Bash]
//! ---
//! # Engineer
//! ...instructions...
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The models an agent may name.
pub const MODELS: &[&str] = &["haiku", "sonnet", "opus"];

/// The tools an agent may be given.
pub const TOOLS: &[&str] = &[
    "Read",
    "Write",
    "Edit",
    "MultiEdit",
    "Bash",
    "Grep",
    "Glob",
    "LS",
    "WebSearch",
    "WebFetch",
];

/// An agent's definition, from its template's front matter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentMeta {
    /// The agent's name; must equal the file's stem.
    pub name: String,
    /// One sentence on what the agent does.
    pub description: String,
    /// The template's version.
    pub version: String,
    /// The model it runs on (one of [`MODELS`]).
    pub model: String,
    /// The tools it may use (each one of [`TOOLS`]).
    pub tools: Vec<String>,
    /// Sampling temperature, 0 to 1.
    #[serde(default)]
    pub temperature: f64,
    /// The most tokens it may answer with.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `low`, `medium`, `high` or `critical`.
    #[serde(default = "default_priority")]
    pub priority: String,
}

fn default_max_tokens() -> u32 {
    8192
}

fn default_priority() -> String {
    "medium".to_owned()
}

/// A parsed agent template: its definition and its instructions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// The front matter.
    pub meta: AgentMeta,
    /// The Markdown after the front matter.
    pub instructions: String,
}

impl Agent {
    /// Parses and validates the template at `path` whose text is `text`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let invalid = |why: String| Error::Template {
            path: path.to_path_buf(),
            why,
        };
        let rest = text
            .strip_prefix("---\n")
            .ok_or_else(|| invalid("does not open with a `---` front matter line".into()))?;
        let end = rest
            .find("\n---\n")
            .ok_or_else(|| invalid("the front matter has no closing `---` line".into()))?;
        let meta: AgentMeta = serde_norway::from_str(&rest[..end])
            .map_err(|e| invalid(format!("front matter: {e}")))?;
        let instructions = rest[end + 5..].to_owned();
        let agent = Self { meta, instructions };
        agent.validate(path)?;
        Ok(agent)
    }

    fn validate(&self, path: &Path) -> Result<(), Error> {
        let m = &self.meta;
        let mut problems = Vec::new();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if m.name != stem {
            problems.push(format!(
                "name {:?} differs from the file name {stem:?}",
                m.name
            ));
        }
        if m.name.is_empty()
            || !m
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            problems.push(format!(
                "name {:?} is not lowercase letters, digits and '-'",
                m.name
            ));
        }
        if !MODELS.contains(&m.model.as_str()) {
            problems.push(format!("model {:?} is not one of {MODELS:?}", m.model));
        }
        if m.tools.is_empty() {
            problems.push("no tools".to_owned());
        }
        for t in &m.tools {
            if !TOOLS.contains(&t.as_str()) {
                problems.push(format!("unknown tool {t:?}"));
            }
        }
        if !(0.0..=1.0).contains(&m.temperature) {
            problems.push(format!("temperature {} is outside 0 to 1", m.temperature));
        }
        if !matches!(m.priority.as_str(), "low" | "medium" | "high" | "critical") {
            problems.push(format!(
                "priority {:?} is not low, medium, high or critical",
                m.priority
            ));
        }
        if self.instructions.trim().is_empty() {
            problems.push("no instructions".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Template {
                path: path.to_path_buf(),
                why: problems.join("; "),
            })
        }
    }

    /// The agent file a deployment writes: the definition with the deployment's stamp, then
    /// the instructions.
    pub fn render(&self, deployment: &str) -> String {
        let m = &self.meta;
        let mut out = String::with_capacity(self.instructions.len() + 512);
        out.push_str("---\n");
        out.push_str(&format!("name: {}\n", m.name));
        out.push_str(&format!("description: {}\n", m.description));
        out.push_str(&format!("version: {}\n", m.version));
        out.push_str(&format!("model: {}\n", m.model));
        out.push_str(&format!("tools: [{}]\n", m.tools.join(", ")));
        out.push_str(&format!("temperature: {}\n", m.temperature));
        out.push_str(&format!("max_tokens: {}\n", m.max_tokens));
        out.push_str(&format!("tags: [{}]\n", m.tags.join(", ")));
        out.push_str(&format!("priority: {}\n", m.priority));
        out.push_str(&format!("deployment: {deployment}\n"));
        out.push_str("---\n");
        out.push_str(&self.instructions);
        out
    }
}

/// The agent templates shipped with the demo (`agents/` in this crate), built into the binary so
/// the demo runs from anywhere: `(file name, text)`.
pub const TEMPLATES: [(&str, &str); 15] = [
    ("api-qa.md", include_str!("../agents/api-qa.md")),
    (
        "code-analyzer.md",
        include_str!("../agents/code-analyzer.md"),
    ),
    (
        "data-engineer.md",
        include_str!("../agents/data-engineer.md"),
    ),
    (
        "documentation.md",
        include_str!("../agents/documentation.md"),
    ),
    ("engineer.md", include_str!("../agents/engineer.md")),
    ("ops.md", include_str!("../agents/ops.md")),
    (
        "project-organizer.md",
        include_str!("../agents/project-organizer.md"),
    ),
    ("qa.md", include_str!("../agents/qa.md")),
    ("refactoring.md", include_str!("../agents/refactoring.md")),
    ("research.md", include_str!("../agents/research.md")),
    ("security.md", include_str!("../agents/security.md")),
    ("ticketing.md", include_str!("../agents/ticketing.md")),
    (
        "version-control.md",
        include_str!("../agents/version-control.md"),
    ),
    ("web-qa.md", include_str!("../agents/web-qa.md")),
    ("web-ui.md", include_str!("../agents/web-ui.md")),
];

/// The template files (`*.md`) in `dir`, sorted by name.
pub fn template_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The folder of the shipped templates in the source tree.
pub fn shipped_templates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("agents")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "---\nname: qa\ndescription: Tests.\nversion: 1.0.0\nmodel: sonnet\ntools: [Read, Bash]\n---\n# QA\nTest things.\n";

    #[track_caller]
    fn check_err(text: &str, expect: &str) {
        let e = Agent::parse(Path::new("agents/qa.md"), text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains(expect), "{shown}");
        assert!(shown.contains("agents/qa.md"), "{shown}");
    }

    #[test]
    fn a_good_template_parses_and_renders() {
        let a = Agent::parse(Path::new("agents/qa.md"), GOOD).unwrap();
        assert_eq!(a.meta.name, "qa");
        assert_eq!(a.meta.max_tokens, 8192);
        assert_eq!(a.instructions, "# QA\nTest things.\n");
        let r = a.render("d1");
        assert!(r.starts_with("---\nname: qa\n"));
        assert!(r.contains("deployment: d1\n---\n# QA\n"));
    }

    #[test]
    fn bad_templates_say_what_and_where() {
        check_err("name: qa\n", "front matter line");
        check_err("---\nname: qa\n", "no closing");
        check_err(
            &GOOD.replace("model: sonnet", "model: gpt"),
            "model \"gpt\"",
        );
        check_err(
            &GOOD.replace("[Read, Bash]", "[Read, Hammer]"),
            "unknown tool",
        );
        check_err(
            &GOOD.replace("name: qa", "name: ops"),
            "differs from the file name",
        );
        check_err(
            &GOOD.replace("version: 1.0.0\n", "version: 1.0.0\ncolour: red\n"),
            "colour",
        );
        check_err(
            &GOOD.replace("# QA\nTest things.\n", "\n"),
            "no instructions",
        );
        check_err(
            &GOOD.replace("tools: [Read, Bash]", "tools: {a: 1}"),
            "front matter",
        );
    }

    #[test]
    fn every_shipped_template_is_valid() {
        let mut n = 0;
        for entry in std::fs::read_dir(shipped_templates()).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            Agent::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
        assert_eq!(n, TEMPLATES.len());
    }

    #[test]
    fn the_built_in_templates_are_the_files() {
        for (name, text) in TEMPLATES {
            let on_disk = std::fs::read_to_string(shipped_templates().join(name)).unwrap();
            assert_eq!(on_disk, text, "{name}");
        }
    }
}
