//! An agent service built with `Mpm`, against the real PostgreSQL, `promtool` and
//! Prometheus: a `TieredCache` of agent profiles over a disk L2, loaded through a PostgreSQL
//! pool, a lazy configuration, and every other kind of component, all in one registry. A
//! test whose server or program is missing is reported ignored with the reason, or fails
//! when `CI` or `MPM_REQUIRE_SERVICES` is set.

use std::process::ExitCode;

use mpm_testkit::Service;

mod app;
mod exposition;
mod redis;

fn main() -> ExitCode {
    mpm_testkit::run([
        mpm_testkit::test(
            "exposition::figures_are_exact_and_fresh",
            exposition::figures_are_exact_and_fresh,
        )
        .needs(Service::Postgres),
        mpm_testkit::test(
            "exposition::promtool_accepts_the_whole_service",
            exposition::promtool_accepts_the_whole_service,
        )
        .needs(Service::Postgres)
        .needs_program("promtool"),
        mpm_testkit::test(
            "exposition::prometheus_scrapes_serve_metrics",
            exposition::prometheus_scrapes_serve_metrics,
        )
        .needs(Service::Postgres)
        .needs_program("prometheus"),
        mpm_testkit::test(
            "redis::tier_and_bus_report_under_their_names",
            redis::tier_and_bus_report_under_their_names,
        )
        .needs(Service::Redis),
    ])
}
