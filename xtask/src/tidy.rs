//! Repository rules, checked by `cargo test --workspace`.
//!
//! - Every member inherits the workspace lints (`[lints] workspace = true`).
//! - Every dependency of every member is `{ workspace = true }`: versions are written once, in
//!   the root `[workspace.dependencies]`.
//! - Floor-1 crates never depend on each other (see `docs/ARCHITECTURE.md`); any crate may
//!   use the unpublished `mpm-testkit` as a dev-dependency.
//! - Every crate opens with crate-level docs (`//!`).

#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// The crates on floor 1: each may depend on `mpm-metrics`, never on one another.
const FLOOR_1: &[&str] = &[
    "mpm-lazy",
    "mpm-cache",
    "mpm-pool",
    "mpm-memory-opt",
    "mpm-batch",
];
/// The only crate on floor 0.
const FLOOR_0: &str = "mpm-metrics";
/// Unpublished test support: any crate may use it as a dev-dependency.
const TESTKIT: &str = "mpm-testkit";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_path_buf()
}

fn read_toml(path: &Path) -> Table {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every member's folder, from the root manifest's `members` (a trailing `/*` is expanded).
fn members() -> Vec<PathBuf> {
    let root = root();
    let manifest = read_toml(&root.join("Cargo.toml"));
    let members = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace.members is an array");
    let mut out = Vec::new();
    for m in members {
        let m = m.as_str().expect("a member is a string");
        if let Some(dir) = m.strip_suffix("/*") {
            let mut found: Vec<PathBuf> = fs::read_dir(root.join(dir))
                .expect("a member folder")
                .map(|e| e.expect("a folder entry").path())
                .filter(|p| p.join("Cargo.toml").is_file())
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(root.join(m));
        }
    }
    out
}

/// Every dependency table of a manifest (including target-specific ones), with its name.
fn dependency_tables(manifest: &Table) -> Vec<(String, &Table)> {
    const KINDS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut out = Vec::new();
    for kind in KINDS {
        if let Some(Value::Table(t)) = manifest.get(kind) {
            out.push((kind.to_owned(), t));
        }
    }
    if let Some(Value::Table(targets)) = manifest.get("target") {
        for (target, spec) in targets {
            for kind in KINDS {
                if let Some(Value::Table(t)) = spec.get(kind) {
                    out.push((format!("target.{target}.{kind}"), t));
                }
            }
        }
    }
    out
}

fn package_name(manifest: &Table) -> String {
    manifest["package"]["name"]
        .as_str()
        .expect("package.name")
        .to_owned()
}

fn check_all(check: impl Fn(&Path, &Table, &mut Vec<String>)) {
    let mut problems = Vec::new();
    for dir in members() {
        let manifest = read_toml(&dir.join("Cargo.toml"));
        check(&dir, &manifest, &mut problems);
    }
    assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
}

#[test]
fn every_member_inherits_workspace_lints() {
    check_all(|dir, manifest, problems| {
        let inherits = manifest
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(Value::as_bool)
            == Some(true);
        if !inherits {
            problems.push(format!(
                "{}: add `[lints] workspace = true`",
                dir.join("Cargo.toml").display()
            ));
        }
    });
}

/// The dependencies of a manifest that do not inherit their version from the workspace, as
/// `(table, name)`.
fn undeclared_versions(manifest: &Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (kind, table) in dependency_tables(manifest) {
        for (name, spec) in table {
            let inherited = spec.get("workspace").and_then(Value::as_bool) == Some(true);
            let local = spec.get("version").is_some() || spec.get("path").is_some();
            if !inherited || local {
                out.push((kind.clone(), name.clone()));
            }
        }
    }
    out
}

#[test]
fn dependency_versions_are_written_once_in_the_workspace() {
    check_all(|dir, manifest, problems| {
        for (kind, name) in undeclared_versions(manifest) {
            problems.push(format!(
                "{}: [{kind}] {name}: write `{name}.workspace = true` and declare the version in the root [workspace.dependencies]",
                dir.join("Cargo.toml").display()
            ));
        }
    });
}

#[test]
fn floor_1_crates_do_not_depend_on_each_other() {
    check_all(|_dir, manifest, problems| {
        let name = package_name(manifest);
        if name == FLOOR_0 || FLOOR_1.contains(&name.as_str()) {
            for (kind, table) in dependency_tables(manifest) {
                for dep in table.keys() {
                    if dep == TESTKIT && kind.ends_with("dev-dependencies") {
                        continue;
                    }
                    let below = if name == FLOOR_0 {
                        dep == FLOOR_0
                    } else {
                        dep == FLOOR_0 || dep == &name
                    };
                    if dep.starts_with("mpm-") && !below {
                        problems.push(format!(
                            "{name} [{kind}] depends on {dep}: a floor-{} crate may depend only on the floors below it",
                            if name == FLOOR_0 { 0 } else { 1 }
                        ));
                    }
                }
            }
        }
    });
}

#[test]
fn every_crate_has_crate_level_docs() {
    check_all(|dir, _manifest, problems| {
        for root_file in ["src/lib.rs", "src/main.rs"] {
            let path = dir.join(root_file);
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                problems.push(format!(
                    "{}: open with crate-level docs (`//!`): what the crate is for and an example",
                    path.display()
                ));
            }
        }
    });
}

#[test]
fn the_root_manifest_is_only_a_workspace() {
    let manifest = read_toml(&root().join("Cargo.toml"));
    assert!(
        manifest.get("package").is_none(),
        "the root Cargo.toml must not be a package"
    );
    for key in ["package", "dependencies", "lints"] {
        assert!(
            manifest["workspace"].get(key).is_some(),
            "the root Cargo.toml needs [workspace.{key}]"
        );
    }
}

#[test]
fn the_version_rule_catches_what_it_should() {
    let manifest: Table = r#"
        [dependencies]
        serde = "1"
        foo = { version = "1", workspace = true }
        ok = { workspace = true, features = ["x"] }
        [target.'cfg(unix)'.dev-dependencies]
        bar = { path = "../bar" }
    "#
    .parse()
    .unwrap();
    let flagged: Vec<String> = undeclared_versions(&manifest)
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    assert_eq!(flagged, ["foo", "serde", "bar"]);
}
