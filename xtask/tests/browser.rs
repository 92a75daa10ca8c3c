//! The report page in a real browser: `xtask report --check` renders the page of the committed
//! summary in headless chromium, asserts one chart per group and the verdict rows in the DOM it
//! builds, and saves a screenshot under the target folder. Without chromium the test shows as
//! ignored with the reason (and fails under `CI` or `MPM_REQUIRE_SERVICES`).

use std::path::Path;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    mpm_testkit::run([mpm_testkit::test("report_page_renders_in_chromium", || {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mpm-report-browser");
        let run = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("report")
            .arg("--check")
            .arg("--summary")
            .arg(root.join("benches/results/summary.json"))
            .arg("--out")
            .arg(&out)
            .output()
            .expect("xtask runs");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "xtask report --check failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            stdout.contains("browser check: chromium renders"),
            "{stdout}"
        );
        let shot = std::fs::metadata(out.join("screenshot.png")).expect("a screenshot");
        assert!(
            shot.len() > 10_000,
            "the screenshot is only {} bytes",
            shot.len()
        );
    })
    .needs_program("chromium")])
}
