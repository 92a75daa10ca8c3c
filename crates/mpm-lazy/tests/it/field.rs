//! `LazyField`, the lazily computed struct field.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};

use mpm_lazy::LazyField;

struct Registry {
    scans: AtomicUsize,
    index: LazyField<Vec<u32>>,
}

impl Registry {
    fn index(&self) -> &[u32] {
        self.index.get_or_init(|| {
            self.scans.fetch_add(1, Ordering::SeqCst);
            vec![1, 2, 3]
        })
    }
}

#[test]
fn computed_once_by_the_struct_even_under_concurrent_first_access() {
    let registry = Registry {
        scans: AtomicUsize::new(0),
        index: LazyField::new(),
    };
    let start = Barrier::new(16);
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                start.wait();
                assert_eq!(registry.index(), [1, 2, 3]);
            });
        }
    });
    assert_eq!(registry.scans.load(Ordering::SeqCst), 1);
}

#[test]
fn failures_and_panics_are_not_cached() {
    let field: LazyField<u8> = LazyField::default();
    assert_eq!(field.get_or_try_init(|| Err("disk busy")), Err("disk busy"));
    let panicked = catch_unwind(AssertUnwindSafe(|| *field.get_or_init(|| panic!("boom"))));
    assert!(panicked.is_err());
    assert_eq!(field.get(), None);
    assert_eq!(field.get_or_try_init(|| Ok::<_, ()>(4)), Ok(&4));
    assert_eq!(field.set(5), Err(5));
}

#[test]
fn reset_invalidate_clone_and_debug() {
    let computed = Cell::new(0);
    let mut field = LazyField::new();
    let next = || {
        computed.set(computed.get() + 1);
        computed.get()
    };
    let first = *field.get_or_init(next);
    assert!(field.reset());
    assert_eq!(*field.get_or_init(next), 2);
    assert_eq!(first, 1);
    assert_eq!(field.invalidate(), Some(2));
    assert_eq!(format!("{field:?}"), "LazyField(<not computed>)");
    assert_eq!(*field.get_or_init(next), 3);
    let copy = field.clone();
    assert_eq!(format!("{copy:?}"), "LazyField(3)");
    assert_eq!(LazyField::with_value("x").get(), Some(&"x"));
}
