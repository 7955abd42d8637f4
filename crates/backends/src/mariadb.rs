//! MariaDB/MySQL shard sessions (DCDB KillSession): the [`ShardSessions`] data plane over the
//! MySQL wire protocol (`mysql_async`, text protocol, optional TLS through rustls).
//!
//! One administrative connection per kill task: `SELECT CONNECTION_ID(), @@hostname, @@port`
//! identifies it (and the server), `information_schema.PROCESSLIST` lists threads, and
//! `KILL CONNECTION <n>` is built from an integer only. Every connect and every query is
//! bounded by a timeout; after a timeout or an I/O error the connection is dropped and not used
//! again. The ids of every connection sessiond holds to a server are kept in a registry, so a
//! task never kills sessiond's own connections (its own or another task's). Passwords are held
//! in [`Password`], whose `Debug` does not print them, and never appear in messages.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use mysql_async;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};
use sessiond_core::dcdb::{
    KillResult, NodeConnection, NodeKey, PlaneFuture, ShardSessions, Thread,
};

/// MySQL error numbers KILL can answer with.
const ER_NO_SUCH_THREAD: u16 = 1094;

/// A database password: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// TLS to the server (rustls; TLS 1.2 and 1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CA(s) that signed the server certificate; none: the public web roots.
    pub ca_file: Option<PathBuf>,
    /// Check that the certificate names `host` (default on).
    pub verify_hostname: bool,
}

/// How to reach one node's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Password,
    pub tls: Option<TlsOptions>,
}

impl NodeAddress {
    /// `user@host:port` for messages (never the password).
    pub fn label(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("'{}'@{host}:{}", self.user, self.port)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect, TLS and authentication, together.
    pub connect: Duration,
    /// Each query.
    pub query: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            query: Duration::from_secs(5),
        }
    }
}

/// Thread ids of sessiond's open connections, per server (`@@hostname:@@port`).
type Registry = Arc<Mutex<HashMap<String, HashSet<u64>>>>;

/// The data plane for every declared node, keyed by node id.
pub struct MariaDbShards {
    nodes: HashMap<String, NodeAddress>,
    timeouts: Timeouts,
    registry: Registry,
}

impl MariaDbShards {
    pub fn new(nodes: HashMap<String, NodeAddress>, timeouts: Timeouts) -> Self {
        MariaDbShards {
            nodes,
            timeouts,
            registry: Registry::default(),
        }
    }
}

fn opts(addr: &NodeAddress) -> OptsBuilder {
    let mut builder = OptsBuilder::default()
        .ip_or_hostname(addr.host.clone())
        .tcp_port(addr.port)
        .user(Some(addr.user.clone()))
        .pass(Some(addr.password.expose().to_string()))
        // Stay on the configured TCP address (never switch to a local socket).
        .prefer_socket(false)
        .stmt_cache_size(0)
        .tcp_nodelay(true);
    if let Some(tls) = &addr.tls {
        let mut ssl = SslOpts::default().with_danger_skip_domain_validation(!tls.verify_hostname);
        if let Some(ca) = &tls.ca_file {
            ssl = ssl.with_root_certs(vec![ca.clone().into()]);
        }
        builder = builder.ssl_opts(Some(ssl));
    }
    builder
}

/// A message for an error of the driver; server errors keep their number.
fn describe(err: &mysql_async::Error) -> String {
    match err {
        mysql_async::Error::Server(e) => format!("{} (MySQL error {})", e.message, e.code),
        // The inner error already says "Input/output error: …".
        mysql_async::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}

impl ShardSessions for MariaDbShards {
    fn connect(&self, node: &NodeKey) -> PlaneFuture<'static, Box<dyn NodeConnection>> {
        let addr = self.nodes.get(&node.node_id).cloned();
        let node_id = node.node_id.clone();
        let timeouts = self.timeouts;
        let registry = self.registry.clone();
        Box::pin(async move {
            let addr = addr.ok_or_else(|| {
                format!("no connection settings are configured for node {node_id}")
            })?;
            let label = addr.label();
            let mut conn =
                match tokio::time::timeout(timeouts.connect, Conn::new(opts(&addr))).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(err)) => {
                        return Err(format!("cannot connect to {label}: {}", describe(&err)))
                    }
                    Err(_) => {
                        return Err(format!(
                            "cannot connect to {label}: no answer within {} ms (connect timeout)",
                            timeouts.connect.as_millis()
                        ))
                    }
                };
            let who = tokio::time::timeout(
                timeouts.query,
                conn.query_first::<(u64, Option<Vec<u8>>, Option<u64>), _>(
                    "SELECT CONNECTION_ID(), @@hostname, @@port",
                ),
            )
            .await;
            let (id, hostname, port) = match who {
                Ok(Ok(Some(row))) => row,
                Ok(Ok(None)) => {
                    return Err(format!("{label}: SELECT CONNECTION_ID() returned no row"))
                }
                Ok(Err(err)) => return Err(format!("{label}: {}", describe(&err))),
                Err(_) => {
                    return Err(format!(
                        "{label}: no answer within {} ms (query timeout)",
                        timeouts.query.as_millis()
                    ))
                }
            };
            let server = format!(
                "{}:{}",
                String::from_utf8_lossy(&hostname.unwrap_or_default()),
                port.unwrap_or(0)
            );
            if let Ok(mut r) = registry.lock() {
                r.entry(server.clone()).or_default().insert(id);
            }
            Ok(Box::new(MariaDbConnection {
                conn: Some(conn),
                id,
                server,
                label,
                registry,
                timeouts,
            }) as Box<dyn NodeConnection>)
        })
    }
}

struct MariaDbConnection {
    /// None once the connection failed: it is never used again.
    conn: Option<Conn>,
    id: u64,
    server: String,
    label: String,
    registry: Registry,
    timeouts: Timeouts,
}

impl Drop for MariaDbConnection {
    fn drop(&mut self) {
        if let Ok(mut r) = self.registry.lock() {
            if let Some(ids) = r.get_mut(&self.server) {
                ids.remove(&self.id);
                if ids.is_empty() {
                    r.remove(&self.server);
                }
            }
        }
    }
}

impl MariaDbConnection {
    fn live(&mut self) -> Result<&mut Conn, String> {
        let label = &self.label;
        self.conn
            .as_mut()
            .ok_or_else(|| format!("{label}: the connection was lost earlier in this task"))
    }

    /// The outcome of one query run under the query timeout: a timeout or a broken connection
    /// poisons the connection (it is never used again) and becomes the error.
    fn settle<T>(
        &mut self,
        what: &str,
        outcome: Result<Result<T, mysql_async::Error>, tokio::time::error::Elapsed>,
    ) -> Result<Result<T, mysql_async::Error>, String> {
        match outcome {
            Ok(Err(err)) if err.is_fatal() => {
                self.conn = None;
                Err(format!("{}: {what}: {}", self.label, describe(&err)))
            }
            Ok(result) => Ok(result),
            Err(_) => {
                self.conn = None;
                Err(format!(
                    "{}: {what}: no answer within {} ms (query timeout)",
                    self.label,
                    self.timeouts.query.as_millis()
                ))
            }
        }
    }
}

type ProcessRow = (u64, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

fn text(v: Option<Vec<u8>>) -> String {
    String::from_utf8_lossy(&v.unwrap_or_default()).into_owned()
}

impl NodeConnection for MariaDbConnection {
    fn own_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .registry
            .lock()
            .ok()
            .and_then(|r| r.get(&self.server).map(|s| s.iter().copied().collect()))
            .unwrap_or_default();
        if !ids.contains(&self.id) {
            ids.push(self.id);
        }
        ids
    }

    fn threads<'a>(&'a mut self, ids: &'a [u64]) -> PlaneFuture<'a, Vec<Thread>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            // Built from integers only.
            let list: Vec<String> = ids.iter().map(u64::to_string).collect();
            let sql = format!(
                "SELECT ID, USER, COMMAND, STATE FROM information_schema.PROCESSLIST WHERE ID IN ({})",
                list.join(",")
            );
            let limit = self.timeouts.query;
            let outcome =
                tokio::time::timeout(limit, self.live()?.query::<ProcessRow, _>(sql)).await;
            let rows = self
                .settle("reading the process list", outcome)?
                .map_err(|e| {
                    format!("{}: reading the process list: {}", self.label, describe(&e))
                })?;
            Ok(rows
                .into_iter()
                .map(|(id, user, command, state)| Thread {
                    id,
                    user: text(user),
                    command: text(command),
                    state: text(state),
                })
                .collect())
        })
    }

    fn kill(&mut self, id: u64) -> PlaneFuture<'_, KillResult> {
        Box::pin(async move {
            let sql = format!("KILL CONNECTION {id}");
            let limit = self.timeouts.query;
            let outcome = tokio::time::timeout(limit, self.live()?.query_drop(sql)).await;
            match self.settle("KILL", outcome)? {
                Ok(()) => Ok(KillResult::Killed),
                Err(mysql_async::Error::Server(e)) if e.code == ER_NO_SUCH_THREAD => {
                    Ok(KillResult::NoSuchThread)
                }
                Err(mysql_async::Error::Server(e)) => Ok(KillResult::Denied(format!(
                    "{} (MySQL error {}); sessiond's user needs the PROCESS and CONNECTION ADMIN (or SUPER) privileges",
                    e.message, e.code
                ))),
                Err(other) => Err(format!("{}: KILL: {}", self.label, describe(&other))),
            }
        })
    }

    fn close(mut self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let conn = self.conn.take();
        let limit = self.timeouts.query;
        // Dropping `self` here takes the id out of the registry.
        drop(self);
        Box::pin(async move {
            if let Some(conn) = conn {
                let _ = tokio::time::timeout(limit, conn.disconnect()).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_do_not_print() {
        let addr = NodeAddress {
            host: "db1".into(),
            port: 3306,
            user: "sessiond".into(),
            password: Password::new("hunter2"),
            tls: None,
        };
        let shown = format!("{addr:?} {}", addr.label());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(addr.label(), "'sessiond'@db1:3306");
        let v6 = NodeAddress {
            host: "::1".into(),
            ..addr
        };
        assert_eq!(v6.label(), "'sessiond'@[::1]:3306");
    }

    #[tokio::test]
    async fn unknown_nodes_and_refused_connections_fail_with_a_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener); // nothing listens there now
        let mut nodes = HashMap::new();
        nodes.insert(
            "n1".to_string(),
            NodeAddress {
                host: "127.0.0.1".into(),
                port,
                user: "u".into(),
                password: Password::new("secret-pw"),
                tls: None,
            },
        );
        let plane = MariaDbShards::new(
            nodes,
            Timeouts {
                connect: Duration::from_millis(500),
                query: Duration::from_millis(500),
            },
        );
        let key = |n: &str| NodeKey {
            instance_id: "tdsqlshard-aaaaaaaa".into(),
            shard_instance_id: "shard-aaaaaaaa".into(),
            node_id: n.into(),
        };
        let err = plane.connect(&key("nope")).await.err().unwrap();
        assert!(err.contains("no connection settings"), "{err}");
        let err = plane.connect(&key("n1")).await.err().unwrap();
        assert!(err.contains(&format!("'u'@127.0.0.1:{port}")), "{err}");
        assert!(!err.contains("secret-pw"));
    }

    #[tokio::test]
    async fn a_silent_server_hits_the_connect_timeout() {
        // Accepts TCP but never says anything (no MySQL greeting).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let mut nodes = HashMap::new();
        nodes.insert(
            "n1".to_string(),
            NodeAddress {
                host: "127.0.0.1".into(),
                port,
                user: "u".into(),
                password: Password::new("p"),
                tls: None,
            },
        );
        let plane = MariaDbShards::new(
            nodes,
            Timeouts {
                connect: Duration::from_millis(300),
                query: Duration::from_millis(300),
            },
        );
        let started = std::time::Instant::now();
        let err = plane
            .connect(&NodeKey {
                instance_id: String::new(),
                shard_instance_id: String::new(),
                node_id: "n1".into(),
            })
            .await
            .err()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            err.contains("no answer within 300 ms (connect timeout)"),
            "{err}"
        );
        hold.abort();
    }
}
