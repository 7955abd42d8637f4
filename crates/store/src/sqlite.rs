//! Embedded SQLite store: WAL journal, `synchronous=FULL`, one writer thread doing group commit
//! and one checkpointer thread, so that copying the WAL back into the database never holds up
//! a commit.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::{Commit, Store, StoreError, Write};

type Pending = (
    Vec<Write>,
    tokio::sync::oneshot::Sender<Result<(), StoreError>>,
);

pub struct SqliteStore {
    /// Reads go through their own connection so they never wait behind a commit.
    reader: Mutex<Connection>,
    writer: Mutex<Option<mpsc::Sender<Pending>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// How often the checkpointer copies committed WAL frames into the database.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

fn backend(err: rusqlite::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend)?;
    // FULL makes every commit durable in WAL mode (NORMAL could lose the last commits on power loss).
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         PRAGMA busy_timeout=5000;
         PRAGMA cache_size=-32768;
         PRAGMA mmap_size=1073741824;
         CREATE TABLE IF NOT EXISTS kv (
             tbl TEXT NOT NULL,
             key TEXT NOT NULL,
             value BLOB NOT NULL,
             PRIMARY KEY (tbl, key)
         ) WITHOUT ROWID;",
    )
    .map_err(backend)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let writer_conn = open(path)?;
        // The checkpointer does this work instead of whichever commit crosses the threshold.
        writer_conn
            .execute_batch("PRAGMA wal_autocheckpoint=0;")
            .map_err(backend)?;
        let checkpoint_conn = open(path)?;
        let reader = open(path)?;
        let (tx, rx) = mpsc::channel::<Pending>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let spawn_err = |e: std::io::Error| StoreError::Backend(e.to_string());
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                writer_loop(writer_conn, rx);
                drop(stop_tx);
            })
            .map_err(spawn_err)?;
        let checkpointer = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, stop_rx))
            .map_err(spawn_err)?;
        Ok(SqliteStore {
            reader: Mutex::new(reader),
            writer: Mutex::new(Some(tx)),
            threads: Mutex::new(vec![writer, checkpointer]),
        })
    }

    /// Stops accepting writes, finishes the queued ones and waits for the writer thread.
    pub fn close(&self) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Takes every batch that is waiting, writes them in one transaction, answers them all.
fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Pending>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let result = write_group(&mut conn, &group);
        if let Err(err) = &result {
            tracing::error!(error = %err, batches = group.len(), "store commit failed");
        }
        for (_, reply) in group {
            let _ = reply.send(result.clone());
        }
    }
}

/// Checkpoints passively (never blocking the writer) until the writer stops, then once fully.
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
        if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %err, "store checkpoint failed");
        }
    }
    if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %err, "final store checkpoint failed");
    }
}

fn write_group(conn: &mut Connection, group: &[Pending]) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    {
        let mut put = tx
            .prepare_cached("INSERT OR REPLACE INTO kv (tbl, key, value) VALUES (?1, ?2, ?3)")
            .map_err(backend)?;
        let mut delete = tx
            .prepare_cached("DELETE FROM kv WHERE tbl = ?1 AND key = ?2")
            .map_err(backend)?;
        for (writes, _) in group {
            for write in writes {
                match &write.value {
                    Some(value) => put.execute(params![write.table, write.key, value]),
                    None => delete.execute(params![write.table, write.key]),
                }
                .map_err(backend)?;
            }
        }
    }
    tx.commit().map_err(backend)
}

impl Store for SqliteStore {
    fn load_table(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let conn = self.reader.lock().map_err(|_| StoreError::Closed)?;
        let mut stmt = conn
            .prepare_cached("SELECT key, value FROM kv WHERE tbl = ?1 ORDER BY key")
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![table], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.reader.lock().map_err(|_| StoreError::Closed)?;
        conn.query_row(
            "SELECT value FROM kv WHERE tbl = ?1 AND key = ?2",
            params![table, key],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)
    }

    fn commit(&self, writes: Vec<Write>) -> Commit {
        if writes.is_empty() {
            return Commit::ready(Ok(()));
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        let sent = match self.writer.lock() {
            Ok(writer) => writer.as_ref().map(|w| w.send((writes, reply)).is_ok()),
            Err(_) => None,
        };
        match sent {
            Some(true) => Commit::pending(rx),
            _ => Commit::ready(Err(StoreError::Closed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_survive_reopen_and_deletes_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store
                .commit(vec![
                    Write::put("t", "a", b"1".to_vec()),
                    Write::put("t", "b", b"2".to_vec()),
                    Write::put("u", "a", b"3".to_vec()),
                ])
                .await
                .unwrap();
            store.commit(vec![Write::delete("t", "a")]).await.unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.load_table("t").unwrap(),
            vec![("b".to_string(), b"2".to_vec())]
        );
        assert_eq!(store.get("u", "a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(store.get("u", "missing").unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_batches_all_commit_in_submission_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let mut commits = Vec::new();
        for i in 0..200u32 {
            commits.push(store.commit(vec![Write::put("t", "same", i.to_string().into_bytes())]));
        }
        for commit in commits {
            commit.await.unwrap();
        }
        assert_eq!(store.get("t", "same").unwrap(), Some(b"199".to_vec()));
    }

    #[tokio::test]
    async fn commit_after_close_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        store.close();
        let err = store
            .commit(vec![Write::put("t", "k", vec![1])])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Closed));
    }
}
