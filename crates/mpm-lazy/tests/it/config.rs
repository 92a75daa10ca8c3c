//! `LazyConfig`: sections parsed on demand, errors as text, reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use expect_test::{Expect, expect};
use mpm_lazy::{Error, LazyConfig, Reload};
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Dashboard {
    host: String,
    port: u16,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Memory {
    limit_kb: u32,
    #[serde(default)]
    agents: Vec<String>,
}

struct File {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn file(name: &str, text: &str) -> File {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the config");
    File { _dir: dir, path }
}

/// The error's text, with the temporary directory replaced by `<dir>`.
#[track_caller]
fn check_error<T: std::fmt::Debug>(path: &Path, result: Result<T, Error>, expected: Expect) {
    let dir = path.parent().unwrap().display().to_string();
    let text = result
        .expect_err("an error")
        .to_string()
        .replace(&dir, "<dir>");
    expected.assert_eq(&text);
}

const TOML: &str = r#"# mpm configuration
title = "agents"

[dashboard]
host = "127.0.0.1"
port = 8765

[memory]
limit_kb = 80
agents = [
  "engineer",
  "qa",
]

[memory.extra]
note = """
[not_a_section]
"""

[broken]
port = "eighty"
"#;

#[test]
fn sections_are_parsed_on_first_use_and_cached() {
    let f = file("mpm.toml", TOML);
    let config = LazyConfig::open(&f.path).unwrap();
    assert_eq!(config.parsed_sections(), 0);
    let dashboard = config.section::<Dashboard>("dashboard").unwrap();
    assert_eq!(
        *dashboard,
        Dashboard {
            host: "127.0.0.1".into(),
            port: 8765
        }
    );
    assert_eq!(config.parsed_sections(), 1);
    assert!(Arc::ptr_eq(
        &dashboard,
        &config.section::<Dashboard>("dashboard").unwrap()
    ));
    let memory = config.section::<Memory>("memory").unwrap();
    assert_eq!(memory.agents, ["engineer", "qa"]);
    // The same section may be read as another type too; each type is cached apart.
    let loose = config.section::<toml::Table>("memory").unwrap();
    assert_eq!(loose["extra"]["note"].as_str(), Some("[not_a_section]\n"));
    assert_eq!(config.parsed_sections(), 3);
    assert_eq!(
        config.section_names().unwrap(),
        ["broken", "dashboard", "memory"]
    );
}

#[test]
fn toml_errors_name_file_section_field_and_line() {
    let f = file("mpm.toml", TOML);
    let config = LazyConfig::open(&f.path).unwrap();
    check_error(
        &f.path,
        config.section::<Dashboard>("broken"),
        expect![[
            r#"<dir>/mpm.toml:21: section `broken`, field `port`: invalid type: string "eighty", expected u16"#
        ]],
    );
    check_error(
        &f.path,
        config.section::<Dashboard>("memory"),
        expect![
            "<dir>/mpm.toml:9: section `memory`, field `limit_kb`: unknown field `limit_kb`, expected `host` or `port`"
        ],
    );
    check_error(
        &f.path,
        config.section::<Dashboard>("dashbaord"),
        expect!["configuration file <dir>/mpm.toml has no section `dashbaord`"],
    );
    // A syntax error elsewhere does not stop a good section; `validate` finds it.
    let f = file(
        "bad.toml",
        "[good]\nlimit_kb = 1\n\n[bad]\nlimit_kb = = 2\n",
    );
    let config = LazyConfig::open(&f.path).unwrap();
    assert_eq!(config.section::<Memory>("good").unwrap().limit_kb, 1);
    check_error(
        &f.path,
        config.section::<Memory>("bad"),
        expect!["<dir>/bad.toml:5: invalid string\nexpected `\"`, `'`"],
    );
    check_error(
        &f.path,
        config.validate(),
        expect!["<dir>/bad.toml:5: invalid string\nexpected `\"`, `'`"],
    );
}

#[test]
fn json_sections_and_errors() {
    let text = r#"{
  "dashboard": {"host": "localhost", "port": 80},
  "memory": {
    "limit_kb": 80,
    "agents": ["engineer", 7]
  }
}"#;
    let f = file("mpm.json", text);
    let config = LazyConfig::open(&f.path).unwrap();
    assert_eq!(config.section::<Dashboard>("dashboard").unwrap().port, 80);
    check_error(
        &f.path,
        config.section::<Memory>("memory"),
        expect![
            "<dir>/mpm.json:5: section `memory`, field `agents[1]`: invalid type: integer `7`, expected a string"
        ],
    );
    check_error(
        &f.path,
        config.section::<Memory>("cache"),
        expect!["configuration file <dir>/mpm.json has no section `cache`"],
    );
    let f = file("broken.json", "{\n  \"dashboard\": {\"port\": 80,}\n}\n");
    let config = LazyConfig::open(&f.path).unwrap();
    check_error(
        &f.path,
        config.section::<Dashboard>("dashboard"),
        expect!["<dir>/broken.json:2: section `dashboard`: trailing comma"],
    );
}

#[test]
fn yaml_sections_anchors_and_errors() {
    let text = "\
# agents
defaults: &defaults
  host: localhost
  port: 8080

dashboard:
  <<: *defaults

memory:
  limit_kb: eighty
";
    let f = file("mpm.yaml", text);
    let config = LazyConfig::open(&f.path).unwrap();
    let defaults = config.section::<Dashboard>("defaults").unwrap();
    assert_eq!(defaults.port, 8080);
    // The anchor lives in another section: the whole document resolves it.
    let dashboard = config.section::<serde_norway::Value>("dashboard").unwrap();
    assert_eq!(dashboard["<<"]["port"].as_u64(), Some(8080));
    check_error(
        &f.path,
        config.section::<Memory>("memory"),
        expect![[
            r#"<dir>/mpm.yaml:10: section `memory`, field `limit_kb`: invalid type: string "eighty", expected u32"#
        ]],
    );
}

#[test]
fn unknown_extension_and_missing_file() {
    let f = file("mpm.ini", "[a]\n");
    check_error(
        &f.path,
        LazyConfig::open(&f.path),
        expect![
            "configuration file <dir>/mpm.ini has no supported extension (toml, json, yaml, yml)"
        ],
    );
    let missing = f.path.with_file_name("none.toml");
    let error = LazyConfig::open(&missing).unwrap_err();
    assert!(matches!(error, Error::ConfigIo { .. }), "{error}");
}

#[test]
fn reload_applies_valid_changes_and_keeps_old_values_on_a_broken_file() {
    let f = file("mpm.toml", "[dashboard]\nhost = \"a\"\nport = 1\n");
    let config = LazyConfig::open(&f.path).unwrap();
    let first = config.section::<Dashboard>("dashboard").unwrap();
    assert_eq!(config.reload().unwrap(), Reload::Unchanged);

    std::fs::write(&f.path, "[dashboard]\nhost = \"b\"\nport = 2\n").unwrap();
    assert_eq!(config.reload().unwrap(), Reload::Applied { reparsed: 1 });
    assert_eq!(config.section::<Dashboard>("dashboard").unwrap().port, 2);
    assert_eq!(first.port, 1, "a reader keeps the value it had");

    // A syntax error anywhere: refused, old values kept.
    std::fs::write(&f.path, "[dashboard]\nhost = \"c\"\nport = 3\n[other\n").unwrap();
    check_error(
        &f.path,
        config.reload(),
        expect!["<dir>/mpm.toml:4: invalid table header\nexpected `.`, `]`"],
    );
    assert_eq!(config.section::<Dashboard>("dashboard").unwrap().port, 2);

    // Valid TOML, but a section in use no longer fits its type: refused too.
    std::fs::write(&f.path, "[dashboard]\nhost = \"d\"\nport = 70000\n").unwrap();
    check_error(
        &f.path,
        config.reload(),
        expect![
            "<dir>/mpm.toml:3: section `dashboard`, field `port`: invalid value: integer `70000`, expected u16"
        ],
    );
    assert_eq!(config.section::<Dashboard>("dashboard").unwrap().port, 2);
    assert_eq!(config.reloads(), 1);

    std::fs::remove_file(&f.path).unwrap();
    assert!(matches!(config.reload(), Err(Error::ConfigIo { .. })));
    assert_eq!(config.section::<Dashboard>("dashboard").unwrap().host, "b");
}

#[test]
fn a_thousand_sections_parse_only_the_one_read() {
    let mut text = String::new();
    for i in 0..1_000 {
        text.push_str(&format!(
            "[agent_{i}]\nhost = \"h{i}\"\nport = {}\n\n",
            i % 60_000
        ));
    }
    let f = file("many.toml", &text);
    let config = LazyConfig::open(&f.path).unwrap();
    assert_eq!(
        config.section::<Dashboard>("agent_999").unwrap().host,
        "h999"
    );
    assert_eq!(config.parsed_sections(), 1);
    assert_eq!(config.section_names().unwrap().len(), 1_000);
}

#[test]
fn the_content_comes_from_the_file_as_opened() {
    let f = file("mpm.toml", "[dashboard]\nhost = \"old\"\nport = 1\n");
    let config = LazyConfig::open(&f.path).unwrap();
    // Replace the file atomically (write a temp file, rename over) before the first read.
    let temp = f.path.with_extension("toml.tmp");
    std::fs::write(&temp, "[dashboard]\nhost = \"new\"\nport = 2\n").unwrap();
    std::fs::rename(&temp, &f.path).unwrap();
    assert_eq!(
        config.section::<Dashboard>("dashboard").unwrap().host,
        "old"
    );
    assert_eq!(config.reload().unwrap(), Reload::Applied { reparsed: 1 });
    assert_eq!(
        config.section::<Dashboard>("dashboard").unwrap().host,
        "new"
    );
    let dir = f.path.parent().unwrap();
    let error = LazyConfig::open(dir.join("a.toml")).unwrap_err();
    assert!(matches!(error, Error::ConfigIo { .. }));
    std::fs::create_dir(dir.join("d.toml")).unwrap();
    check_error(
        &f.path,
        LazyConfig::open(dir.join("d.toml")),
        expect!["cannot read configuration file <dir>/d.toml: not a regular file"],
    );
}

#[test]
fn layouts_the_scan_cannot_split_parse_the_whole_document() {
    // Compact sequences at column 0 and a flow mapping: no line-based split, same results.
    let f = file(
        "seq.yaml",
        "memory:\n  limit_kb: 5\n  agents:\n  - qa\nlist:\n- 1\n- 2\n",
    );
    let config = LazyConfig::open(&f.path).unwrap();
    assert_eq!(config.section::<Memory>("memory").unwrap().agents, ["qa"]);
    assert_eq!(*config.section::<Vec<u8>>("list").unwrap(), [1, 2]);
    assert!(config.section_names().unwrap().is_empty());
    let f = file("flow.yaml", "{memory: {limit_kb: 6}}\n");
    let config = LazyConfig::open(&f.path).unwrap();
    assert_eq!(config.section::<Memory>("memory").unwrap().limit_kb, 6);
    let f = file("list.json", "[1, 2]");
    let config = LazyConfig::open(&f.path).unwrap();
    check_error(
        &f.path,
        config.section::<Memory>("memory"),
        expect!["<dir>/list.json:1: invalid type: sequence, expected a table of sections"],
    );
}
