//! Tests of `mpm-pool` against the real PostgreSQL and Redis servers (`MPM_POSTGRES_URL`,
//! `MPM_REDIS_URL`). They run on `mpm-testkit`'s harness: a test whose server is missing is
//! reported ignored with the reason, or fails when `CI` or `MPM_REQUIRE_SERVICES` is set.

use std::future::Future;
use std::process::ExitCode;

use mpm_testkit::{Service, Test};

mod postgres;
mod redis;

/// A test that runs `body` on its own two-worker Tokio runtime.
fn on_tokio<F: Future<Output = ()> + 'static>(name: &str, body: fn() -> F) -> Test {
    mpm_testkit::test(name, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a Tokio runtime")
            .block_on(body());
    })
}

/// `tests![Service: module::function, ...]`: each function as a test named by its path
/// (`None`: it needs no server).
macro_rules! tests {
    ($($service:ident: $m:ident::$f:ident),* $(,)?) => {
        [$(tests!(@one $service, $m, $f)),*]
    };
    (@one None, $m:ident, $f:ident) => {
        on_tokio(concat!(stringify!($m), "::", stringify!($f)), $m::$f)
    };
    (@one $service:ident, $m:ident, $f:ident) => {
        tests!(@one None, $m, $f).needs(Service::$service)
    };
}

fn main() -> ExitCode {
    mpm_testkit::run(tests![
        Postgres: postgres::connections_killed_while_idle_are_replaced_without_errors,
        Postgres: postgres::clean_recycling_resets_session_state,
        Postgres: postgres::validation_runs_select_1_after_the_window,
        None: postgres::a_bad_url_is_a_typed_error,
        Postgres: postgres::maintenance_alone_replaces_connections_killed_while_idle,
        Postgres: postgres::deadlines_hold_and_maintenance_restarts_after_its_runtime_is_gone,
        Postgres: postgres::a_panicking_manager_method_costs_one_object_and_an_error,
        Postgres: postgres::maintenance_survives_a_panicking_manager,
        Postgres: postgres::the_breaker_neither_spins_nor_delays_recovery_after_an_outage,
        Redis: redis::connections_killed_while_idle_are_replaced_without_errors,
        Redis: redis::ping_validates_a_live_connection,
        Redis: redis::connections_killed_in_use_fail_once_each_and_are_replaced,
    ])
}

/// A capacity for tests: `n` must not be zero.
pub(crate) fn nz(n: usize) -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(n).expect("a capacity above zero")
}
