//! `cargo xtask demo-report`: runs the release demo with `--json`, keeps its report as
//! `docs/demo.json`, and writes the table that run printed into the README, between the
//! demo block's marker lines. The block is rendered by the `mpm` binary itself (its hidden
//! `demo-table --readme` command), so the README shows exactly what the user sees; a test of
//! `mpm-demo` fails when the README's block and `docs/demo.json` disagree.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::manifest::root;
use crate::summary::write_atomic;

pub(crate) const USAGE: &str = "cargo xtask demo-report [--from FILE]   run `mpm demo --json` (release), keep it as docs/demo.json, write the README's demo table (--from: a report saved before instead of a run)";

/// The README's demo block starts with a line starting so, and ends with this line.
const BEGIN: &str = "<!-- demo: ";
const END: &str = "<!-- demo: end -->";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let root = root();
    let saved = root.join("docs/demo.json");
    let report = match args {
        [] => run_demo(&root)?,
        [flag, path] if flag == "--from" => {
            fs::read_to_string(path).with_context(|| format!("reading {path}"))?
        }
        _ => bail!("usage: {USAGE}"),
    };
    let value: serde_json::Value =
        serde_json::from_str(&report).context("the demo's report is not JSON")?;
    if !value["figures"].is_array() {
        bail!("the demo's report has no figures");
    }
    let text = format!("{}\n", report.trim_end());
    write_atomic(&saved, text.as_bytes())?;
    let block = mpm(&root)
        .args(["demo-table", "--readme"])
        .arg(&saved)
        .stderr(Stdio::inherit())
        .output()
        .context("running `mpm demo-table`")?;
    if !block.status.success() {
        bail!("`mpm demo-table --readme {}` failed", saved.display());
    }
    let block = String::from_utf8(block.stdout).context("the demo's table is not UTF-8")?;
    let readme = root.join("README.md");
    let old = fs::read_to_string(&readme).context("reading README.md")?;
    write_atomic(&readme, splice(&old, block.trim_end())?.as_bytes())?;
    println!("wrote docs/demo.json and README.md's demo table");
    Ok(())
}

/// `cargo run --release -p mpm-cli --` in the workspace.
fn mpm(root: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(root)
        .args(["run", "--release", "--quiet", "-p", "mpm-cli", "--"]);
    c
}

/// Runs the demo; its JSON report (printed whether or not every budget passed).
fn run_demo(root: &Path) -> Result<String> {
    eprintln!("running `cargo run --release -p mpm-cli -- demo --json`");
    let out = mpm(root)
        .args(["demo", "--json"])
        .stderr(Stdio::inherit())
        .output()
        .context("running the demo")?;
    let text = String::from_utf8(out.stdout).context("the demo's output is not UTF-8")?;
    if text.trim().is_empty() {
        bail!("the demo printed no report ({})", out.status);
    }
    Ok(text)
}

/// `readme` with its demo block replaced by `block` (which carries its own marker lines).
fn splice(readme: &str, block: &str) -> Result<String> {
    let (Some(a), Some(b)) = (readme.find(BEGIN), readme.find(END)) else {
        bail!("README.md has no demo block (a line starting {BEGIN:?}, and {END:?})");
    };
    if b < a {
        bail!("README.md: the demo block's end comes before its start");
    }
    if !block.starts_with(BEGIN) || !block.ends_with(END) {
        bail!("the demo's README block does not carry its marker lines");
    }
    Ok(format!(
        "{}{block}{}",
        &readme[..a],
        &readme[b + END.len()..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_replaced_and_the_rest_kept() {
        let readme = format!("intro\n{BEGIN}old -->\nold table\n{END}\noutro\n");
        let block = format!("{BEGIN}new -->\nnew table\n{END}");
        let new = splice(&readme, &block).unwrap();
        assert_eq!(new, format!("intro\n{block}\noutro\n"));
        assert!(splice("no block", &block).is_err());
        assert!(splice(&readme, "no markers").is_err());
    }
}
