//! [`LazyField`]: a struct field computed on first access, the guide's `agents_cache` property.

use std::fmt;

use once_cell::sync::OnceCell;

use crate::generation::Generations;

/// A field of a struct whose value is computed by the struct itself on first access.
///
/// Where [`Lazy`](crate::Lazy) stores its init function, a `LazyField` takes it at the call, so
/// the function can borrow the rest of the struct (`|| self.discover()`). Concurrent first
/// accesses run one computation at a time; a failed or panicking computation is not cached.
/// [`reset`](LazyField::reset) through `&self` keeps the old value alive for its borrowers (as
/// [`Lazy::reset`](crate::Lazy::reset)); [`invalidate`](LazyField::invalidate) through `&mut self`
/// drops it at once.
///
/// ```
/// use mpm_lazy::LazyField;
///
/// #[derive(Default)]
/// struct AgentRegistry {
///     agents_dir: Vec<&'static str>,
///     agents_cache: LazyField<Vec<String>>,
/// }
///
/// impl AgentRegistry {
///     /// Lazily built index of the agents: only the first access scans.
///     fn agents(&self) -> &[String] {
///         self.agents_cache.get_or_init(|| self.discover_and_index())
///     }
///
///     fn discover_and_index(&self) -> Vec<String> {
///         self.agents_dir.iter().map(|f| f.trim_end_matches(".md").to_owned()).collect()
///     }
/// }
///
/// let mut registry = AgentRegistry { agents_dir: vec!["engineer.md", "qa.md"], ..Default::default() };
/// assert!(registry.agents_cache.get().is_none());
/// assert_eq!(registry.agents(), ["engineer", "qa"]);
/// registry.agents_dir.push("ops.md");
/// registry.agents_cache.invalidate();
/// assert_eq!(registry.agents().len(), 3);
/// ```
pub struct LazyField<T> {
    cells: Generations<OnceCell<T>>,
}

impl<T> LazyField<T> {
    /// An empty field.
    pub const fn new() -> Self {
        Self {
            cells: Generations::new(OnceCell::new()),
        }
    }

    /// A field that already holds `value`.
    pub fn with_value(value: T) -> Self {
        Self {
            cells: Generations::new(OnceCell::with_value(value)),
        }
    }

    /// The value, if computed; never computes.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.cells.current().get()
    }

    /// The value, computed by `compute` if this is the first access.
    #[inline]
    pub fn get_or_init(&self, compute: impl FnOnce() -> T) -> &T {
        self.cells.current().get_or_init(compute)
    }

    /// The value, computed by `compute` if needed; an error is returned and not cached.
    ///
    /// # Errors
    ///
    /// The error of `compute`.
    #[inline]
    pub fn get_or_try_init<E>(&self, compute: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        self.cells.current().get_or_try_init(compute)
    }

    /// Stores `value` if the field is empty; gives it back otherwise.
    ///
    /// # Errors
    ///
    /// `value` itself, when the field already holds one.
    pub fn set(&self, value: T) -> Result<(), T> {
        self.cells.current().set(value)
    }

    /// Forgets the value through `&self`; the next access computes it again. The old value
    /// stays alive until [`invalidate`](LazyField::invalidate) or drop, since it may be borrowed.
    /// Returns whether a value was computed.
    pub fn reset(&self) -> bool {
        let had_value = self.get().is_some();
        self.cells.advance(OnceCell::new());
        had_value
    }

    /// Drops the value (and any kept by earlier resets) and returns the current one.
    pub fn invalidate(&mut self) -> Option<T> {
        let value = self.cells.current_mut().take();
        self.cells.compact(OnceCell::new());
        value
    }
}

impl<T> Default for LazyField<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> Clone for LazyField<T> {
    /// A field holding a clone of the current value (or empty).
    fn clone(&self) -> Self {
        match self.get() {
            Some(value) => Self::with_value(value.clone()),
            None => Self::new(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for LazyField<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(value) => f.debug_tuple("LazyField").field(value).finish(),
            None => f.write_str("LazyField(<not computed>)"),
        }
    }
}
