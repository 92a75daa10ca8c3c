//! The circuit breaker alone and around a pool's creation.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mpm_pool::{BreakerError, BreakerState, CircuitBreaker, Error, Pool};

use crate::test_manager::TestManager;

fn breaker(threshold: u32) -> CircuitBreaker {
    CircuitBreaker::new(NonZeroU32::new(threshold).unwrap(), Duration::from_secs(30))
}

async fn fail(b: &CircuitBreaker) -> Result<(), BreakerError<&'static str>> {
    b.call(async { Err("down") }).await
}

async fn succeed(b: &CircuitBreaker) -> Result<(), BreakerError<&'static str>> {
    b.call(async { Ok(()) }).await
}

#[tokio::test(start_paused = true)]
async fn opens_after_threshold_half_opens_after_cool_down_and_closes_on_success() {
    let b = breaker(3);
    for _ in 0..2 {
        assert!(matches!(fail(&b).await, Err(BreakerError::Inner("down"))));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(fail(&b).await.is_err());
    assert_eq!(b.state(), BreakerState::Open);
    assert!(matches!(succeed(&b).await, Err(BreakerError::Open)));
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(succeed(&b).await.is_ok());
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_opens_again_and_a_success_resets_the_count() {
    let b = breaker(2);
    assert!(fail(&b).await.is_err());
    assert!(succeed(&b).await.is_ok());
    assert!(fail(&b).await.is_err());
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "the success reset the count"
    );
    assert!(fail(&b).await.is_err());
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(fail(&b).await.is_err());
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_one_trial_through_and_a_cancelled_trial_frees_it() {
    let b = breaker(1);
    assert!(fail(&b).await.is_err());
    tokio::time::sleep(Duration::from_secs(30)).await;
    let trial = b.call(std::future::pending::<Result<(), &str>>());
    let cancelled = tokio::time::timeout(Duration::from_millis(10), async {
        tokio::join!(trial, async {
            assert!(matches!(succeed(&b).await, Err(BreakerError::Open)));
        })
    })
    .await;
    assert!(cancelled.is_err());
    assert!(
        succeed(&b).await.is_ok(),
        "the cancelled trial freed its place"
    );
}

#[tokio::test]
async fn the_state_gauge_follows_the_breaker() {
    let registry = mpm_metrics::Registry::default();
    let b = CircuitBreaker::builder()
        .threshold(NonZeroU32::new(1).unwrap())
        .cool_down(Duration::from_secs(30))
        .metrics(&registry, "db")
        .build()
        .unwrap();
    let state = |r: &mpm_metrics::Registry| {
        r.snapshot()
            .get("mpm_pool_breaker_state", &[("name", "db")])
            .unwrap()
            .as_f64()
    };
    assert_eq!(state(&registry), 0.0);
    assert!(fail(&b).await.is_err());
    let v = state(&registry);
    assert_eq!(v, 1.0);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_holds_acquires_until_their_deadline_and_shows_in_the_status() {
    let m = TestManager::new();
    m.fail_create.store(true, Ordering::SeqCst);
    let pool = Pool::builder(Arc::clone(&m))
        .maintenance_interval(None)
        .circuit_breaker(breaker(2))
        .acquire_timeout(Some(Duration::from_secs(5)))
        .build()
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = pool.get().await.unwrap_err();
    // Two failures open the breaker; the acquire then waits out its deadline instead of
    // failing at once, and says when the next probe goes out.
    assert_eq!(started.elapsed(), Duration::from_secs(5), "{err}");
    match err {
        Error::CircuitOpen {
            state: BreakerState::Open,
            probe_in: Some(d),
        } => assert!(
            d > Duration::from_secs(24) && d < Duration::from_secs(26),
            "{d:?}"
        ),
        e => panic!("{e}"),
    }
    assert_eq!(m.create_attempts.load(Ordering::SeqCst), 2);
    assert_eq!(pool.status().breaker, Some(BreakerState::Open));
    m.fail_create.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(pool.get().await.is_ok());
    assert_eq!(pool.status().breaker, Some(BreakerState::Closed));
}

#[tokio::test(start_paused = true)]
async fn an_acquire_waits_for_the_probe_and_gets_the_object_it_makes() {
    let m = TestManager::new();
    m.fail_create.store(true, Ordering::SeqCst);
    let pool = Pool::builder(Arc::clone(&m))
        .maintenance_interval(None)
        .circuit_breaker(CircuitBreaker::new(
            NonZeroU32::new(1).unwrap(),
            Duration::from_secs(1),
        ))
        .acquire_timeout(Some(Duration::from_millis(100)))
        .build()
        .await
        .unwrap();
    assert!(pool.get().await.is_err());
    m.fail_create.store(false, Ordering::SeqCst);
    // Opened about now for 1 s: an acquire with a longer deadline is served by the probe,
    // which goes out when the cool-down ends.
    let started = tokio::time::Instant::now();
    let got = pool.get_timeout(Some(Duration::from_secs(3))).await;
    assert!(got.is_ok());
    assert!(
        started.elapsed() <= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(pool.status().breaker, Some(BreakerState::Closed));
}

#[tokio::test(start_paused = true)]
async fn failed_probes_double_the_cool_down_from_a_short_default_and_a_success_resets_it() {
    let b = CircuitBreaker::new(NonZeroU32::new(1).unwrap(), mpm_pool::DEFAULT_COOL_DOWN);
    assert_eq!(mpm_pool::DEFAULT_COOL_DOWN, Duration::from_secs(1));
    let mut expected = Duration::from_secs(1);
    assert!(fail(&b).await.is_err());
    for _ in 0..8 {
        tokio::time::sleep(expected - Duration::from_millis(1)).await;
        assert_eq!(b.state(), BreakerState::Open, "{expected:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen, "{expected:?}");
        assert!(fail(&b).await.is_err());
        expected = (expected * 2).min(Duration::from_secs(32));
    }
    assert_eq!(expected, Duration::from_secs(32), "capped");
    tokio::time::sleep(expected).await;
    assert!(succeed(&b).await.is_ok());
    assert!(fail(&b).await.is_err());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "back to the first cool-down"
    );
}
