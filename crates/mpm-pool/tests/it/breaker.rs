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
    let b = CircuitBreaker::with_metrics(
        NonZeroU32::new(1).unwrap(),
        Duration::from_secs(30),
        &registry,
        "db",
    )
    .unwrap();
    assert!(fail(&b).await.is_err());
    let v = registry
        .snapshot()
        .get("circuit_breaker_state", &[("breaker", "db")])
        .unwrap()
        .as_f64();
    assert_eq!(v, 1.0);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_acquires_fast_and_shows_in_the_status() {
    let m = TestManager::new();
    m.fail_create.store(true, Ordering::SeqCst);
    let pool = Pool::builder(Arc::clone(&m))
        .maintenance_interval(None)
        .circuit_breaker(breaker(2))
        .acquire_timeout(Some(Duration::from_secs(5)))
        .build()
        .await
        .unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, Error::CircuitOpen), "{err}");
    assert_eq!(m.create_attempts.load(Ordering::SeqCst), 2);
    assert_eq!(pool.status().breaker, Some(BreakerState::Open));
    m.fail_create.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(pool.get().await.is_ok());
    assert_eq!(pool.status().breaker, Some(BreakerState::Closed));
}
