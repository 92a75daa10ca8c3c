//! The background writer of a `DiskTier`: a thread that commits the write-behind buffer in
//! batches (see `buffer.rs`).
//!
//! It holds the buffer and only a weak reference to the tier, so it never keeps the tier (or
//! the process) alive: when the tier is dropped, it stops the buffer and joins the thread,
//! then commits what is left itself. A panic in a commit is caught: the batch goes back into
//! the buffer, the failure is kept for the next caller, and the thread carries on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use super::DiskInner;
use super::buffer::Buffer;

/// Starts the writer for `buffer` of the tier `tier`; `None` if no thread could be started.
pub(super) fn spawn(buffer: Arc<Buffer>, tier: Weak<DiskInner>) -> Option<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("mpm-cache-disk-writer".to_owned())
        .spawn(move || run(&buffer, &tier))
        .ok()
}

fn run(buffer: &Buffer, tier: &Weak<DiskInner>) {
    while buffer.wait_for_batch() {
        let Some(inner) = tier.upgrade() else {
            return;
        };
        // A panic has put the batch back (see `Batching`); carry on.
        let _ = catch_unwind(AssertUnwindSafe(|| inner.commit_background()));
        drop(inner);
    }
}
