//! Redis client connections (DCS ListClients / HangUpClients): a small RESP2 client over a
//! direct TCP connection to one node, never a cluster client (which would fan `CLIENT KILL` out
//! to every node).
//!
//! Every call connects (bounded by the connect timeout), authenticates (`AUTH [user] password`),
//! names itself `sessiond`, learns its own client id, does its work in pipelined round trips
//! (each bounded by the command timeout) and closes. The ids of the connections sessiond holds
//! open are remembered per node, so listings mark them and kills skip them; a kill also sends
//! `SKIPME yes`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond_core::dcs::{
    ClientRecord, DataError, DataFuture, KillTarget, Node, NodeInfo, RedisNodes,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest reply accepted (a CLIENT LIST of 100,000 clients is about 30 MiB).
const MAX_REPLY: usize = 64 * 1024 * 1024;
/// Name sessiond's connections carry in CLIENT LIST.
pub const CLIENT_NAME: &str = "sessiond";

#[derive(Debug, Clone, Copy)]
pub struct RedisConfig {
    /// TCP connect plus the AUTH / CLIENT SETNAME / CLIENT ID handshake.
    pub connect_timeout: Duration,
    /// Each later round trip (one pipelined batch of commands).
    pub command_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
        }
    }
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// The Redis data plane of DCS.
#[derive(Clone, Default)]
pub struct RedisBackend {
    config: RedisConfig,
    /// node address -> ids of the connections sessiond holds open to it.
    own: Arc<Mutex<HashMap<String, HashSet<u64>>>>,
}

impl RedisBackend {
    pub fn new(config: RedisConfig) -> Self {
        RedisBackend {
            config,
            own: Arc::default(),
        }
    }

    fn own_ids(&self, address: &str) -> HashSet<u64> {
        self.own
            .lock()
            .map(|own| own.get(address).cloned().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl RedisNodes for RedisBackend {
    fn list_clients(&self, node: &Node) -> DataFuture<Vec<ClientRecord>> {
        let this = self.clone();
        let node = node.clone();
        Box::pin(async move {
            let mut conn = Connection::open(&this, &node).await?;
            let reply = conn.round_trip(&[&["CLIENT", "LIST"]]).await?;
            let text = bulk_text(one(reply)?, "CLIENT LIST")?;
            let own = this.own_ids(&node.address);
            let mut clients = parse_client_list(&text);
            for client in &mut clients {
                client.own = own.contains(&client.id);
            }
            Ok(clients)
        })
    }

    fn kill_clients(&self, node: &Node, targets: Vec<KillTarget>) -> DataFuture<Vec<bool>> {
        let this = self.clone();
        let node = node.clone();
        Box::pin(async move {
            if targets.is_empty() {
                return Ok(Vec::new());
            }
            let mut conn = Connection::open(&this, &node).await?;
            let own = this.own_ids(&node.address);
            let ids: Vec<String> = targets.iter().map(|t| t.id.to_string()).collect();
            let commands: Vec<Vec<&str>> = targets
                .iter()
                .zip(&ids)
                .filter(|(t, _)| !own.contains(&t.id))
                .map(|(t, id)| vec!["CLIENT", "KILL", "ID", id, "ADDR", &t.addr, "SKIPME", "yes"])
                .collect();
            let refs: Vec<&[&str]> = commands.iter().map(|c| c.as_slice()).collect();
            let replies = conn.round_trip(&refs).await?;
            let mut replies = replies.into_iter();
            let mut out = Vec::with_capacity(targets.len());
            for t in &targets {
                if own.contains(&t.id) {
                    out.push(false);
                    continue;
                }
                match replies.next() {
                    Some(Reply::Integer(n)) => out.push(n > 0),
                    Some(Reply::Error(e)) => return Err(classify(&e, "CLIENT KILL")),
                    other => {
                        return Err(DataError::Protocol(format!(
                            "unexpected reply to CLIENT KILL: {other:?}"
                        )))
                    }
                }
            }
            Ok(out)
        })
    }

    fn info(&self, node: &Node) -> DataFuture<NodeInfo> {
        let this = self.clone();
        let node = node.clone();
        Box::pin(async move {
            let mut conn = Connection::open(&this, &node).await?;
            let reply = conn.round_trip(&[&["INFO"]]).await?;
            let text = bulk_text(one(reply)?, "INFO")?;
            Ok(parse_info(&text))
        })
    }
}

fn one(mut replies: Vec<Reply>) -> Result<Reply, DataError> {
    replies
        .pop()
        .ok_or_else(|| DataError::Protocol("no reply".into()))
}

fn bulk_text(reply: Reply, command: &str) -> Result<String, DataError> {
    match reply {
        Reply::Bulk(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Reply::Simple(s) => Ok(s),
        Reply::Error(e) => Err(classify(&e, command)),
        other => Err(DataError::Protocol(format!(
            "unexpected reply to {command}: {other:?}"
        ))),
    }
}

/// Maps a Redis error reply to what an operator should do about it.
fn classify(error: &str, command: &str) -> DataError {
    let code = error.split_whitespace().next().unwrap_or("");
    let msg: String = error.chars().take(300).collect();
    match code {
        "NOAUTH" => DataError::AuthFailed(format!(
            "the node requires a password and none is configured for it ({msg})"
        )),
        "WRONGPASS" | "WRONGUSER" => DataError::AuthFailed(format!(
            "the node refused the configured user/password ({msg})"
        )),
        "NOPERM" => DataError::NoPermission(format!(
            "the configured Redis user may not run {command}; grant it +client and +info ({msg})"
        )),
        _ if error.contains("unknown command") || error.contains("unknown subcommand") => {
            DataError::Unsupported(format!("the node does not support {command} ({msg})"))
        }
        _ if error.contains("AUTH") && error.contains("without any password configured") => {
            DataError::AuthFailed(format!(
                "a password is configured for the node but it has none ({msg})"
            ))
        }
        _ => DataError::Protocol(format!("{command} failed: {msg}")),
    }
}

/// A connection for one call; its id is registered as sessiond's own while it is open.
struct Connection {
    reader: BufReader<TcpStream>,
    command_timeout: Duration,
    address: String,
    id: Option<u64>,
    own: Arc<Mutex<HashMap<String, HashSet<u64>>>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            if let Ok(mut own) = self.own.lock() {
                if let Some(ids) = own.get_mut(&self.address) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        own.remove(&self.address);
                    }
                }
            }
        }
    }
}

impl Connection {
    async fn open(backend: &RedisBackend, node: &Node) -> Result<Connection, DataError> {
        let config = backend.config;
        let address = node.address.clone();
        let connect = async {
            let stream = TcpStream::connect(address.as_str())
                .await
                .map_err(|e| DataError::Unreachable(format!("cannot connect to {address}: {e}")))?;
            let _ = stream.set_nodelay(true);
            let mut conn = Connection {
                reader: BufReader::with_capacity(64 * 1024, stream),
                command_timeout: config.command_timeout,
                address: address.clone(),
                id: None,
                own: backend.own.clone(),
            };
            let password = node.password.as_ref().map(|p| p.expose());
            let mut commands: Vec<Vec<&str>> = Vec::new();
            match (node.user.as_deref(), password) {
                (Some(user), Some(pw)) => commands.push(vec!["AUTH", user, pw]),
                (None, Some(pw)) => commands.push(vec!["AUTH", pw]),
                (Some(user), None) => {
                    return Err(DataError::AuthFailed(format!(
                        "user {user:?} is configured without a password"
                    )))
                }
                (None, None) => {}
            }
            commands.push(vec!["CLIENT", "SETNAME", CLIENT_NAME]);
            commands.push(vec!["CLIENT", "ID"]);
            let refs: Vec<&[&str]> = commands.iter().map(|c| c.as_slice()).collect();
            conn.send(&refs).await?;
            let mut id = None;
            for (i, command) in commands.iter().enumerate() {
                let reply = conn.read_reply().await?;
                match reply {
                    Reply::Error(e) => {
                        return Err(classify(&e, if i == 0 { "AUTH" } else { command[0] }))
                    }
                    Reply::Integer(n) if command[1] == "ID" => id = u64::try_from(n).ok(),
                    _ => {}
                }
            }
            Ok(conn.register(id))
        };
        match tokio::time::timeout(config.connect_timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(DataError::Unreachable(format!(
                "no connection to {} within {} ms (connect and authenticate)",
                node.address,
                config.connect_timeout.as_millis()
            ))),
        }
    }

    fn register(mut self, id: Option<u64>) -> Connection {
        if let Some(id) = id {
            if let Ok(mut own) = self.own.lock() {
                own.entry(self.address.clone()).or_default().insert(id);
                self.id = Some(id);
            }
        }
        self
    }

    async fn send(&mut self, commands: &[&[&str]]) -> Result<(), DataError> {
        let mut buf = Vec::with_capacity(commands.len() * 64);
        for command in commands {
            encode_command(&mut buf, command);
        }
        self.reader
            .get_mut()
            .write_all(&buf)
            .await
            .map_err(|e| self.broken(e))
    }

    fn broken(&self, e: std::io::Error) -> DataError {
        DataError::Unreachable(format!("the connection to {} broke: {e}", self.address))
    }

    /// Sends the commands in one write and reads one reply each, within the command timeout.
    async fn round_trip(&mut self, commands: &[&[&str]]) -> Result<Vec<Reply>, DataError> {
        let timeout = self.command_timeout;
        let address = self.address.clone();
        let work = async {
            self.send(commands).await?;
            let mut replies = Vec::with_capacity(commands.len());
            for _ in commands {
                replies.push(self.read_reply().await?);
            }
            Ok(replies)
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(DataError::Timeout(format!(
                "{address} did not answer within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    async fn read_line(&mut self) -> Result<String, DataError> {
        let mut line = Vec::new();
        let read = {
            let mut limited = (&mut self.reader).take(MAX_REPLY as u64);
            limited.read_until(b'\n', &mut line).await
        };
        let n = read.map_err(|e| self.broken(e))?;
        if n == 0 {
            return Err(DataError::Unreachable(format!(
                "{} closed the connection",
                self.address
            )));
        }
        if !line.ends_with(b"\r\n") {
            return Err(DataError::Protocol("malformed reply line".into()));
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    async fn read_reply(&mut self) -> Result<Reply, DataError> {
        // Arrays nest; read them iteratively with an explicit stack.
        let mut stack: Vec<(Vec<Reply>, usize)> = Vec::new();
        loop {
            let line = self.read_line().await?;
            let (kind, rest) = line.split_at(line.len().min(1));
            let parse_len = |s: &str| -> Result<i64, DataError> {
                s.parse::<i64>()
                    .map_err(|_| DataError::Protocol(format!("malformed length {s:?}")))
            };
            let mut value = match kind {
                "+" => Reply::Simple(rest.to_string()),
                "-" => Reply::Error(rest.to_string()),
                ":" => Reply::Integer(parse_len(rest)?),
                "$" => {
                    let len = parse_len(rest)?;
                    if len < 0 {
                        Reply::Bulk(None)
                    } else if len as usize > MAX_REPLY {
                        return Err(DataError::Protocol(format!(
                            "reply of {len} bytes is larger than {MAX_REPLY}"
                        )));
                    } else {
                        let mut data = vec![0u8; len as usize + 2];
                        let read = self.reader.read_exact(&mut data).await;
                        read.map_err(|e| self.broken(e))?;
                        data.truncate(len as usize);
                        Reply::Bulk(Some(data))
                    }
                }
                "*" => {
                    let len = parse_len(rest)?;
                    if len < 0 {
                        Reply::Array(None)
                    } else if len == 0 {
                        Reply::Array(Some(Vec::new()))
                    } else if len as usize > MAX_REPLY / 4 || stack.len() > 32 {
                        return Err(DataError::Protocol("array reply too large".into()));
                    } else {
                        stack.push((Vec::with_capacity(len as usize), len as usize));
                        continue;
                    }
                }
                _ => {
                    return Err(DataError::Protocol(format!(
                        "unexpected reply type {kind:?} (is this a Redis server?)"
                    )))
                }
            };
            loop {
                match stack.last_mut() {
                    None => return Ok(value),
                    Some((items, want)) => {
                        items.push(value);
                        if items.len() < *want {
                            break;
                        }
                        let (items, _) = stack.pop().unwrap_or_default();
                        value = Reply::Array(Some(items));
                    }
                }
            }
        }
    }
}

/// RESP2 array of bulk strings.
pub fn encode_command(buf: &mut Vec<u8>, args: &[&str]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        buf.extend_from_slice(arg.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
}

/// Parses the reply of `CLIENT LIST`: one line per client, `key=value` fields separated by
/// single spaces. Unknown keys are ignored, missing ones stay empty / 0; lines without an
/// `id` are skipped.
pub fn parse_client_list(text: &str) -> Vec<ClientRecord> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_end_matches('\r');
            let mut c = ClientRecord::default();
            let mut has_id = false;
            for field in line.split(' ') {
                let Some((key, value)) = field.split_once('=') else {
                    continue;
                };
                let int = || value.parse::<i64>().unwrap_or(0);
                match key {
                    "id" => {
                        if let Ok(id) = value.parse() {
                            c.id = id;
                            has_id = true;
                        }
                    }
                    "addr" => c.addr = value.to_string(),
                    "laddr" => c.laddr = value.to_string(),
                    "fd" => c.fd = int(),
                    "name" => c.name = value.to_string(),
                    "age" => c.age = int(),
                    "idle" => c.idle = int(),
                    "flags" => c.flags = value.to_string(),
                    "db" => c.db = int(),
                    "sub" => c.sub = int(),
                    "psub" => c.psub = int(),
                    "multi" => c.multi = int(),
                    "qbuf" => c.qbuf = int(),
                    "qbuf-free" => c.qbuf_free = int(),
                    "obl" => c.obl = int(),
                    "oll" => c.oll = int(),
                    "omem" => c.omem = int(),
                    "events" => c.events = value.to_string(),
                    "cmd" => c.cmd = value.to_string(),
                    "user" => c.user = value.to_string(),
                    _ => {}
                }
            }
            has_id.then_some(c)
        })
        .collect()
}

/// The fields of `INFO` sessiond uses.
pub fn parse_info(text: &str) -> NodeInfo {
    let mut info = NodeInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim_end_matches('\r').split_once(':') else {
            continue;
        };
        match key {
            "redis_version" => info.redis_version = Some(value.to_string()),
            "role" => info.role = Some(value.to_string()),
            "used_memory" => info.used_memory = value.parse().ok(),
            "maxmemory" => info.maxmemory = value.parse().ok(),
            "connected_clients" => info.connected_clients = value.parse().ok(),
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_list_lines_of_several_versions() {
        let text = "id=3 addr=[::1]:37198 laddr=[::1]:17001 fd=8 name= age=12 idle=3 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=16384 rbp=16384 obl=0 oll=0 omem=0 tot-mem=37658 events=r cmd=client|list user=default redir=-1 resp=2\n\
id=4 addr=10.63.238.158:2048 fd=9 name=worker-1 age=1 idle=0 flags=P db=2 sub=3 psub=1 multi=-1 qbuf=0 qbuf-free=0 obl=0 oll=0 omem=0 events=rw cmd=subscribe\n\
id=5 addr=/tmp/redis.sock:0 laddr=/tmp/redis.sock:0 fd=10 name= age=0 idle=0 flags=N db=0 future=x\n\
garbage line\n";
        let clients = parse_client_list(text);
        assert_eq!(clients.len(), 3);
        let c = &clients[0];
        assert_eq!(
            (c.id, c.addr.as_str(), c.laddr.as_str(), c.fd),
            (3, "[::1]:37198", "[::1]:17001", 8)
        );
        assert_eq!((c.name.as_str(), c.age, c.idle, c.multi), ("", 12, 3, -1));
        assert_eq!((c.qbuf, c.qbuf_free), (26, 20448));
        assert_eq!(
            (c.events.as_str(), c.cmd.as_str(), c.user.as_str()),
            ("r", "client|list", "default")
        );
        let c = &clients[1];
        assert_eq!(
            (c.name.as_str(), c.flags.as_str(), c.db, c.sub, c.psub),
            ("worker-1", "P", 2, 3, 1)
        );
        assert_eq!(c.user, "");
        assert_eq!(clients[2].addr, "/tmp/redis.sock:0");
    }

    #[test]
    fn parses_info() {
        let info = parse_info(
            "# Server\r\nredis_version:7.0.15\r\n# Clients\r\nconnected_clients:4\r\n# Memory\r\nused_memory:1024\r\nmaxmemory:0\r\n# Replication\r\nrole:slave\r\n",
        );
        assert_eq!(info.redis_version.as_deref(), Some("7.0.15"));
        assert_eq!(info.role.as_deref(), Some("slave"));
        assert_eq!(info.used_memory, Some(1024));
        assert_eq!(info.maxmemory, Some(0));
        assert_eq!(info.connected_clients, Some(4));
    }

    #[test]
    fn encodes_commands() {
        let mut buf = Vec::new();
        encode_command(&mut buf, &["CLIENT", "KILL", "ADDR", "[::1]:5"]);
        assert_eq!(
            buf,
            b"*4\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n$4\r\nADDR\r\n$7\r\n[::1]:5\r\n".to_vec()
        );
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(
            classify("NOAUTH Authentication required.", "CLIENT"),
            DataError::AuthFailed(_)
        ));
        assert!(matches!(
            classify(
                "WRONGPASS invalid username-password pair or user is disabled.",
                "AUTH"
            ),
            DataError::AuthFailed(_)
        ));
        assert!(matches!(
            classify(
                "NOPERM this user has no permissions to run the 'client|kill' command",
                "CLIENT KILL"
            ),
            DataError::NoPermission(_)
        ));
        assert!(matches!(
            classify(
                "ERR unknown command 'CLIENT', with args beginning with: ",
                "CLIENT LIST"
            ),
            DataError::Unsupported(_)
        ));
    }

    /// A fake server on loopback that accepts and never answers: the call ends within the
    /// timeouts.
    #[tokio::test]
    async fn silent_and_absent_nodes_fail_within_the_timeouts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let backend = RedisBackend::new(RedisConfig {
            connect_timeout: Duration::from_millis(200),
            command_timeout: Duration::from_millis(200),
        });
        let node = Node {
            id: "n".into(),
            name: "n".into(),
            role: sessiond_core::dcs::NodeRole::Master,
            group_id: "g".into(),
            group_name: "g".into(),
            address: addr.to_string(),
            user: None,
            password: None,
            az_code: String::new(),
            priority_weight: 0,
        };
        let started = std::time::Instant::now();
        let err = backend.list_clients(&node).await.unwrap_err();
        assert!(matches!(err, DataError::Unreachable(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        keep.abort();
        // Nothing listens on a port just released.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let node = Node {
            address: format!("127.0.0.1:{port}"),
            ..node
        };
        let err = backend.info(&node).await.unwrap_err();
        assert!(
            matches!(&err, DataError::Unreachable(m) if m.contains("cannot connect")),
            "{err:?}"
        );
    }
}
