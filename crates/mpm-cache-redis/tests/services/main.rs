//! Tests of `mpm-cache-redis` against the real Redis server (`MPM_REDIS_URL`). They run on
//! `mpm-testkit`'s harness: without a server they are reported ignored with the reason, or
//! fail when `CI` or `MPM_REQUIRE_SERVICES` is set. Each test works in a namespace of its own.
//!
//! The binary is also the peer of the separate-process test: started with `PEER_ENV` set,
//! it runs [`bus::peer`] instead of the tests.

use std::process::ExitCode;

use mpm_testkit::Service;

mod bus;
mod faults;
mod instance;
mod metrics;
mod races;
mod tier;

macro_rules! tests {
    ($($service:ident: $m:ident::$f:ident),* $(,)?) => {
        [$(tests!(@one $service, $m, $f)),*]
    };
    (@one None, $m:ident, $f:ident) => {
        mpm_testkit::test(concat!(stringify!($m), "::", stringify!($f)), $m::$f)
    };
    (@one $service:ident, $m:ident, $f:ident) => {
        tests!(@one None, $m, $f).needs(Service::$service)
    };
}

fn main() -> ExitCode {
    if let Ok(namespace) = std::env::var(bus::PEER_ENV) {
        return bus::peer(&namespace);
    }
    mpm_testkit::run(tests![
        Redis: tier::entries_round_trip_with_ttl_tags_and_batches,
        Redis: tier::removals_by_prefix_tag_and_pattern_stay_in_the_namespace,
        Redis: tier::damaged_and_foreign_values_are_counted_misses,
        Redis: tier::warm_keys_come_from_the_shared_read_counts,
        None: tier::an_unreachable_server_fails_within_the_timeout_then_fast,
        None: tier::bad_configuration_is_refused_at_build,
        Redis: bus::three_instances_see_every_kind_of_invalidation_within_the_bound,
        Redis: bus::separate_processes_see_an_invalidation_within_the_bound,
        Redis: bus::malformed_messages_are_counted_and_a_panicking_cache_is_survived,
        Redis: faults::killed_subscriptions_clear_local_entries_and_recover,
        Redis: faults::clients_killed_under_load_serve_nothing_stale_beyond_the_bound,
        Redis: faults::a_restarted_server_is_used_again_without_help,
        Redis: faults::a_write_after_resubscribing_is_not_undone,
        Redis: races::a_late_message_removes_only_this_instances_racing_writes,
        Redis: metrics::the_table_matches_the_exposition,
    ])
}
