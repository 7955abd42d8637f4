//! The boundary to the data plane that talks to the shards' database servers. The service
//! decides which sessions may be killed; the data plane only lists threads and sends KILLs,
//! each call bounded by its own connect and query timeouts.

use std::future::Future;
use std::pin::Pin;

use super::model::NodeKey;

/// A data-plane call; the error is a message for people (it names the server, never a secret).
pub type PlaneFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// One row of the server's process list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub id: u64,
    pub user: String,
    pub command: String,
    pub state: String,
}

/// What one `KILL CONNECTION <id>` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillResult {
    /// The server accepted the kill (the thread ends asynchronously).
    Killed,
    /// No such thread (MySQL error 1094): the session is already gone.
    NoSuchThread,
    /// The server refused (e.g. 1095 "not owner"): the reason as the server gave it.
    Denied(String),
}

/// Opens administrative connections to the nodes of declared shards.
pub trait ShardSessions: Send + Sync + 'static {
    /// Connects to the node (bounded by the connect timeout).
    fn connect(&self, node: &NodeKey) -> PlaneFuture<'static, Box<dyn NodeConnection>>;
}

/// One open administrative connection to a node's server.
pub trait NodeConnection: Send {
    /// Thread ids that belong to sessiond itself on this server: this connection and every
    /// other connection sessiond holds open to the same server right now.
    fn own_ids(&self) -> Vec<u64>;

    /// The rows of the process list whose id is in `ids` (ids not listed are not running, or
    /// not visible to sessiond's user).
    fn threads<'a>(&'a mut self, ids: &'a [u64]) -> PlaneFuture<'a, Vec<Thread>>;

    /// `KILL CONNECTION <id>`.
    fn kill(&mut self, id: u64) -> PlaneFuture<'_, KillResult>;

    /// Closes the connection (bounded; errors are ignored).
    fn close(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// Why a thread must never be killed, if it must not: system and replication threads, the
/// event scheduler, daemons, and sessions of protected users (exact, case-sensitive names).
pub fn protection_reason(thread: &Thread, protected_users: &[String]) -> Option<String> {
    let user = thread.user.as_str();
    let command = thread.command.as_str();
    if user == "system user" {
        return Some("it is a system thread (user 'system user')".into());
    }
    if user == "event_scheduler" {
        return Some("it is the event scheduler".into());
    }
    match command {
        "Binlog Dump" | "Binlog Dump GTID" => {
            return Some(format!(
                "it is a replication thread serving a replica (command '{command}')"
            ))
        }
        "Daemon" => return Some("it is a daemon thread (command 'Daemon')".into()),
        c if c.starts_with("Slave_") || c.starts_with("Replica_") => {
            return Some(format!("it is a replication thread (command '{c}')"))
        }
        _ => {}
    }
    if protected_users.iter().any(|p| p == user) {
        return Some(format!("its user '{user}' is protected"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user: &str, command: &str) -> Thread {
        Thread {
            id: 7,
            user: user.into(),
            command: command.into(),
            state: String::new(),
        }
    }

    #[test]
    fn protected_threads() {
        let users = vec!["repl".to_string(), "Monitor".to_string()];
        for (user, command) in [
            ("system user", "Connect"),
            ("system user", "Slave_SQL"),
            ("event_scheduler", "Daemon"),
            ("repl", "Binlog Dump"),
            ("x", "Binlog Dump GTID"),
            ("x", "Daemon"),
            ("x", "Slave_IO"),
            ("x", "Slave_worker"),
            ("repl", "Sleep"),
            ("Monitor", "Query"),
        ] {
            assert!(
                protection_reason(&t(user, command), &users).is_some(),
                "{user}/{command}"
            );
        }
        for (user, command) in [
            ("app", "Sleep"),
            ("app", "Query"),
            ("monitor", "Sleep"),
            ("REPL", "Sleep"),
            ("", "Connect"),
            ("unauthenticated user", "Connect"),
        ] {
            assert!(
                protection_reason(&t(user, command), &users).is_none(),
                "{user}/{command}"
            );
        }
        assert_eq!(
            protection_reason(&t("repl", "Sleep"), &users).unwrap(),
            "its user 'repl' is protected"
        );
    }
}
