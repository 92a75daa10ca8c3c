//! [`BatchProcessor`]: the guide's `BatchProcessor(batch_size, max_concurrency)`.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::bounded::run_bounded;
use crate::error::JobError;

/// Splits items into batches of `batch_size`, runs at most `max_concurrency` batches at once
/// through [`run_bounded`], and returns one result per item, in input order.
///
/// A batch job receives its items as an `Arc<[T]>` and returns one result per item. When it
/// fails, panics or returns the wrong number of results, every item of that batch gets the
/// same [`FailedBatch`], which holds the items and the reason; the other batches are not
/// touched.
///
/// ```
/// use std::num::NonZeroUsize;
/// use mpm_batch::BatchProcessor;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let processor = BatchProcessor::builder()
///     .batch_size(NonZeroUsize::new(2).unwrap())
///     .max_concurrency(NonZeroUsize::new(3).unwrap())
///     .build();
/// let results = processor
///     .run(vec![1, 2, 3, 4, 5], |batch| async move {
///         if batch.contains(&4) { Err("four") } else { Ok(batch.iter().map(|n| n * n).collect()) }
///     })
///     .await;
/// assert_eq!(results[0].as_ref().ok(), Some(&1));
/// let failed = results[3].as_ref().unwrap_err();
/// assert_eq!(&failed.items[..], &[3, 4]);
/// assert_eq!(results[4].as_ref().ok(), Some(&25));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProcessor {
    batch_size: NonZeroUsize,
    max_concurrency: NonZeroUsize,
}

impl Default for BatchProcessor {
    /// The guide's `batch_size=10, max_concurrency=5`.
    fn default() -> Self {
        BatchProcessorBuilder::default().build()
    }
}

/// A batch that produced no results, as every one of its items reports it.
#[derive(Debug)]
#[non_exhaustive]
pub struct FailedBatch<T, E> {
    /// The batch's number, counting from zero.
    pub batch: usize,
    /// The input index of the batch's first item.
    pub first_item: usize,
    /// The items the batch held.
    pub items: Arc<[T]>,
    /// Why it failed.
    pub error: JobError<E>,
}

/// The result for one item of a [`BatchProcessor`] run.
pub type ItemResult<T, R, E> = Result<R, Arc<FailedBatch<T, E>>>;

impl BatchProcessor {
    /// A builder starting from the guide's `batch_size=10, max_concurrency=5`.
    pub fn builder() -> BatchProcessorBuilder {
        BatchProcessorBuilder::default()
    }

    /// Items per batch (the last batch may hold fewer).
    pub fn batch_size(&self) -> NonZeroUsize {
        self.batch_size
    }

    /// Batches that run at once.
    pub fn max_concurrency(&self) -> NonZeroUsize {
        self.max_concurrency
    }

    /// Runs `f` on each batch of `items` and returns one result per item, in input order.
    pub async fn run<T, R, E, F, Fut>(
        &self,
        items: impl IntoIterator<Item = T>,
        mut f: F,
    ) -> Vec<ItemResult<T, R, E>>
    where
        F: FnMut(Arc<[T]>) -> Fut,
        Fut: Future<Output = Result<Vec<R>, E>>,
    {
        let batches = split(items, self.batch_size.get());
        let outcomes = run_bounded(batches.iter().cloned(), self.max_concurrency, |batch| {
            f(batch)
        })
        .await;
        let mut results = Vec::with_capacity(batches.iter().map(|b| b.len()).sum());
        for (index, (items, outcome)) in batches.into_iter().zip(outcomes).enumerate() {
            let error = match outcome {
                Ok(values) if values.len() == items.len() => {
                    results.extend(values.into_iter().map(Ok));
                    continue;
                }
                Ok(values) => JobError::ResultCount {
                    expected: items.len(),
                    actual: values.len(),
                },
                Err(error) => error,
            };
            let failed = Arc::new(FailedBatch {
                batch: index,
                first_item: results.len(),
                items: Arc::clone(&items),
                error,
            });
            results.extend((0..items.len()).map(|_| Err(Arc::clone(&failed))));
        }
        results
    }
}

/// `items` in batches of `size`, in order.
fn split<T>(items: impl IntoIterator<Item = T>, size: usize) -> Vec<Arc<[T]>> {
    let mut batches = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        batches.push(items.by_ref().take(size).collect());
    }
    batches
}

/// Builds a [`BatchProcessor`]; sizes are `NonZeroUsize`, so every setting is valid.
#[derive(Debug, Clone, Copy)]
pub struct BatchProcessorBuilder {
    batch_size: NonZeroUsize,
    max_concurrency: NonZeroUsize,
}

impl Default for BatchProcessorBuilder {
    fn default() -> Self {
        BatchProcessorBuilder {
            batch_size: const { NonZeroUsize::new(10).unwrap() },
            max_concurrency: const { NonZeroUsize::new(5).unwrap() },
        }
    }
}

impl BatchProcessorBuilder {
    /// Items per batch (default 10).
    pub fn batch_size(mut self, size: NonZeroUsize) -> Self {
        self.batch_size = size;
        self
    }

    /// Batches that run at once (default 5).
    pub fn max_concurrency(mut self, limit: NonZeroUsize) -> Self {
        self.max_concurrency = limit;
        self
    }

    /// The processor.
    pub fn build(self) -> BatchProcessor {
        BatchProcessor {
            batch_size: self.batch_size,
            max_concurrency: self.max_concurrency,
        }
    }
}
