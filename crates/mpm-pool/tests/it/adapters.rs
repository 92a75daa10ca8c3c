//! deadpool and bb8 managers used through the adapters.

use crate::nz;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mpm_pool::Pool;
use mpm_pool::adapters::{AdapterError, FromBb8, FromDeadpool};

#[derive(Default)]
struct Deadpooled {
    created: AtomicUsize,
    recycled: AtomicUsize,
    detached: AtomicUsize,
    refuse: AtomicBool,
}

impl deadpool::managed::Manager for Deadpooled {
    type Type = usize;
    type Error = std::io::Error;

    async fn create(&self) -> Result<usize, std::io::Error> {
        Ok(self.created.fetch_add(1, Ordering::SeqCst))
    }

    async fn recycle(
        &self,
        _: &mut usize,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<std::io::Error> {
        self.recycled.fetch_add(1, Ordering::SeqCst);
        if self.refuse.load(Ordering::SeqCst) {
            return Err(deadpool::managed::RecycleError::message("worn out"));
        }
        Ok(())
    }

    fn detach(&self, _: &mut usize) {
        self.detached.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_deadpool_manager_creates_recycles_and_detaches() {
    let pool = Pool::builder(FromDeadpool(Deadpooled::default()))
        .max_size(nz(2))
        .maintenance_interval(None)
        .build()
        .await
        .unwrap();
    let first = *pool.get().await.unwrap();
    assert_eq!(*pool.get().await.unwrap(), first, "reused after recycle");
    let m = &pool.manager().0;
    assert_eq!(m.recycled.load(Ordering::SeqCst), 1);
    m.refuse.store(true, Ordering::SeqCst);
    let o = pool.get().await.unwrap();
    assert_ne!(*o, first, "a refused recycle replaced the object");
    assert_eq!(m.detached.load(Ordering::SeqCst), 1);
}

#[test]
fn adapter_errors_say_what_failed() {
    let e: AdapterError<std::io::Error> = AdapterError::Message("worn out".into());
    assert_eq!(e.to_string(), "worn out");
}

#[derive(Default)]
struct Bb8ed {
    created: AtomicUsize,
    validated: AtomicUsize,
    broken: AtomicBool,
}

impl bb8::ManageConnection for Bb8ed {
    type Connection = usize;
    type Error = std::io::Error;

    async fn connect(&self) -> Result<usize, std::io::Error> {
        Ok(self.created.fetch_add(1, Ordering::SeqCst))
    }

    async fn is_valid(&self, _: &mut usize) -> Result<(), std::io::Error> {
        self.validated.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn has_broken(&self, _: &mut usize) -> bool {
        self.broken.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_bb8_manager_connects_validates_and_reports_broken_connections() {
    let pool = Pool::builder(FromBb8(Bb8ed::default()))
        .max_size(nz(1))
        .skip_validation_within(Duration::ZERO)
        .maintenance_interval(None)
        .build()
        .await
        .unwrap();
    let first = *pool.get().await.unwrap();
    assert_eq!(*pool.get().await.unwrap(), first);
    let m = &pool.manager().0;
    assert_eq!(m.validated.load(Ordering::SeqCst), 1);
    let o = pool.get().await.unwrap();
    m.broken.store(true, Ordering::SeqCst);
    drop(o);
    assert_eq!(pool.status().size, 0, "has_broken closed it on release");
}
