//! The locks of the keyed pool's state, named through a trait so that the same state code
//! runs on `parking_lot`'s locks in the pool and on the model checker's in the tests.

use std::ops::{Deref, DerefMut};

/// A mutual-exclusion lock over a `T`.
pub(crate) trait Lock<T> {
    /// What [`Lock::lock`] holds.
    type Guard<'a>: DerefMut<Target = T>
    where
        Self: 'a;
    /// A lock over `value`.
    fn new(value: T) -> Self;
    /// Waits for the lock.
    fn lock(&self) -> Self::Guard<'_>;
}

/// A readers-writer lock over a `T`.
pub(crate) trait ReadWrite<T> {
    /// What [`ReadWrite::read`] holds.
    type Read<'a>: Deref<Target = T>
    where
        Self: 'a;
    /// What [`ReadWrite::write`] holds.
    type Write<'a>: DerefMut<Target = T>
    where
        Self: 'a;
    /// A lock over `value`.
    fn new(value: T) -> Self;
    /// Waits for shared access.
    fn read(&self) -> Self::Read<'_>;
    /// Waits for exclusive access.
    fn write(&self) -> Self::Write<'_>;
}

/// A family of locks.
pub(crate) trait Locking: 'static {
    /// Its mutex.
    type Mutex<T>: Lock<T>;
    /// Its readers-writer lock.
    type RwLock<T>: ReadWrite<T>;
}

/// `parking_lot`'s locks: the pool's.
pub(crate) struct ParkingLot;

impl Locking for ParkingLot {
    type Mutex<T> = parking_lot::Mutex<T>;
    type RwLock<T> = parking_lot::RwLock<T>;
}

impl<T> Lock<T> for parking_lot::Mutex<T> {
    type Guard<'a>
        = parking_lot::MutexGuard<'a, T>
    where
        Self: 'a;
    fn new(value: T) -> Self {
        parking_lot::Mutex::new(value)
    }
    fn lock(&self) -> Self::Guard<'_> {
        parking_lot::Mutex::lock(self)
    }
}

impl<T> ReadWrite<T> for parking_lot::RwLock<T> {
    type Read<'a>
        = parking_lot::RwLockReadGuard<'a, T>
    where
        Self: 'a;
    type Write<'a>
        = parking_lot::RwLockWriteGuard<'a, T>
    where
        Self: 'a;
    fn new(value: T) -> Self {
        parking_lot::RwLock::new(value)
    }
    fn read(&self) -> Self::Read<'_> {
        parking_lot::RwLock::read(self)
    }
    fn write(&self) -> Self::Write<'_> {
        parking_lot::RwLock::write(self)
    }
}
