//! Tests that need external programs: `promtool` checks the exposition, and a real
//! `prometheus` server scrapes the HTTP endpoint. Without the programs they are reported as
//! ignored with the reason; with `CI` or `MPM_REQUIRE_SERVICES` set they fail instead.

mod prometheus;
mod promtool;

fn main() -> std::process::ExitCode {
    mpm_testkit::run([
        mpm_testkit::test(
            "promtool::accepts_an_exposition_with_every_kind",
            promtool::accepts_an_exposition_with_every_kind,
        )
        .needs_program("promtool"),
        mpm_testkit::test(
            "prometheus::scrapes_the_endpoint_and_answers_queries",
            prometheus::scrapes_the_endpoint_and_answers_queries,
        )
        .needs_program("prometheus"),
    ])
}
