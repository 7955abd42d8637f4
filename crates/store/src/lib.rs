#![forbid(unsafe_code)]
//! Durable state for sessiond.
//!
//! Services keep their working set in memory and persist every change as a batch of
//! [`Write`]s. A change is acknowledged only after [`Store::commit`] resolves, that is after
//! its transaction is durable. The embedded [`SqliteStore`] shares one fsync among all
//! batches that arrive while the previous commit is running (group commit). A PostgreSQL
//! implementation for multi-node deployments will implement the same trait.

mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use sqlite::SqliteStore;

/// One row change: `value: None` deletes the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub table: &'static str,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl Write {
    pub fn put(table: &'static str, key: impl Into<String>, value: Vec<u8>) -> Self {
        Write {
            table,
            key: key.into(),
            value: Some(value),
        }
    }

    pub fn delete(table: &'static str, key: impl Into<String>) -> Self {
        Write {
            table,
            key: key.into(),
            value: None,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Backend(String),
    #[error("the store is shut down")]
    Closed,
}

/// Durable table/key/value state. Writes of one batch are applied atomically; batches are
/// applied in the order they were submitted.
pub trait Store: Send + Sync + 'static {
    /// Every row of a table, ordered by key.
    fn load_table(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// One row, if present.
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Queues a batch for the next group commit. Submission order is commit order, so a
    /// caller that submits while holding its own state lock keeps memory and disk in step.
    fn commit(&self, writes: Vec<Write>) -> Commit;
}

/// Resolves once the batch is durable (or failed).
pub struct Commit(CommitInner);

enum CommitInner {
    Pending(tokio::sync::oneshot::Receiver<Result<(), StoreError>>),
    Ready(Option<Result<(), StoreError>>),
}

impl Commit {
    pub fn ready(result: Result<(), StoreError>) -> Self {
        Commit(CommitInner::Ready(Some(result)))
    }

    pub(crate) fn pending(rx: tokio::sync::oneshot::Receiver<Result<(), StoreError>>) -> Self {
        Commit(CommitInner::Pending(rx))
    }
}

impl Future for Commit {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            CommitInner::Ready(result) => {
                Poll::Ready(result.take().unwrap_or(Err(StoreError::Closed)))
            }
            CommitInner::Pending(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                Poll::Ready(Err(_)) => Poll::Ready(Err(StoreError::Closed)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
