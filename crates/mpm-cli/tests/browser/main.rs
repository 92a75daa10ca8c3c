//! `mpm demo --serve` in a real browser: headless Chromium opens the dashboard, live updates
//! arrive over the WebSocket, every chart exists and moves, the figures table is filled, and a
//! screenshot is saved under `target/`.
//!
//! Skipped (shown as ignored with the reason) without `chromium` on `PATH`, unless `CI` or
//! `MPM_REQUIRE_SERVICES` is set.

mod cdp;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn main() -> ExitCode {
    mpm_testkit::run([mpm_testkit::test(
        "dashboard::charts_update_live_in_chromium",
        charts_update_live_in_chromium,
    )
    .needs_program("chromium")])
}

fn charts_update_live_in_chromium() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_demo, url) = serve();
        let chromium = mpm_testkit::program("chromium").unwrap();
        let mut browser = cdp::Browser::open(&chromium, &url).await;

        // Live updates arrive.
        let first = wait_for_updates(&mut browser, 2).await;
        let charts_before = charts(&mut browser).await;
        let later = wait_for_updates(&mut browser, first + 3).await;
        let charts_after = charts(&mut browser).await;
        assert!(later > first);

        // Every chart exists, and its values changed between the two readings.
        let names: Vec<&str> = charts_after
            .iter()
            .map(|c| c["chart"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["hit_rate", "load_latency", "pool", "events"]);
        for (before, after) in charts_before.iter().zip(&charts_after) {
            assert!(
                after["points"].as_u64() > before["points"].as_u64(),
                "{before} -> {after}"
            );
        }
        assert!(
            charts_before
                .iter()
                .zip(&charts_after)
                .any(|(b, a)| b["last"] != a["last"]),
            "no chart's values changed: {charts_before:?} -> {charts_after:?}"
        );
        // The figures table is filled.
        let rows = browser
            .eval("document.querySelectorAll('#figures tbody tr').length")
            .await;
        assert!(rows.as_u64().unwrap() > 0, "no figure rows");

        let png = browser.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
        std::fs::write(&path, png).unwrap();
        eprintln!("dashboard screenshot: {}", path.display());
    });
}

/// Waits until the page has received at least `n` live updates; returns how many it has.
async fn wait_for_updates(browser: &mut cdp::Browser, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let updates = browser
            .eval("Number(document.body.dataset.updates || 0)")
            .await
            .as_u64()
            .unwrap_or(0);
        if updates >= n {
            return updates;
        }
        assert!(Instant::now() < deadline, "only {updates} updates arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each chart's name, number of points and last values.
async fn charts(browser: &mut cdp::Browser) -> Vec<Value> {
    let v = browser
        .eval(
            "JSON.stringify([...document.querySelectorAll('canvas.chart')].map(c => \
             ({chart: c.dataset.chart, points: Number(c.dataset.points || 0), last: c.dataset.last || ''})))",
        )
        .await;
    serde_json::from_str(v.as_str().unwrap()).unwrap()
}

/// The demo process; killed when dropped.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `mpm demo --scale small --serve 127.0.0.1:0` and returns it with the dashboard's URL,
/// read from the line the demo prints once it serves.
fn serve() -> (Demo, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpm"))
        .args(["demo", "--scale", "small", "--serve", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let demo = Demo(child);
    let mut lines = BufReader::new(stdout).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.strip_prefix("dashboard: ")?;
            Some(rest.split_whitespace().next()?.to_owned())
        })
        .expect("the demo prints the dashboard's address");
    // Keep reading so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (demo, url)
}
