//! How a service with an in-memory working set stays in step with the store.

use parking_lot::Mutex;
use sessiond_store::{Store, StoreError, Write};

/// Applies `change` to `state` and queues the writes it produced while the lock is still held,
/// so the store receives changes in the order memory made them; then waits, without the lock,
/// until they are durable (concurrent callers share a group commit). `change` must validate
/// before it mutates: its error leaves the state untouched. If the commit fails, memory ran
/// ahead of the store: `rebuild` restores memory from what is durable, and the caller gets the
/// store's error.
pub(crate) async fn apply<S, R, E: From<StoreError>>(
    state: &Mutex<S>,
    store: &dyn Store,
    now: i64,
    change: impl FnOnce(&mut S, i64, &mut Vec<Write>) -> Result<R, E>,
    rebuild: impl FnOnce(&StoreError),
) -> Result<R, E> {
    let (result, commit) = {
        let mut state = state.lock();
        let mut writes = Vec::new();
        let result = change(&mut state, now, &mut writes)?;
        (result, store.commit(writes))
    };
    if let Err(err) = commit.await {
        rebuild(&err);
        return Err(err.into());
    }
    Ok(result)
}
