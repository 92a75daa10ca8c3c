//! Tests of a service built with `Mpm` against the real PostgreSQL, `promtool` and Prometheus.

fn main() -> std::process::ExitCode {
    mpm_testkit::run([])
}
