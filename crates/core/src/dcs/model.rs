//! DCS resources: declared instances and nodes, client connections as a node reports them, and
//! jobs.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::AccountId;

/// A Redis password: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Password(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// What a node is in its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRole {
    Master,
    Slave,
    Proxy,
}

impl NodeRole {
    pub fn parse(value: &str) -> Option<NodeRole> {
        match value {
            "master" => Some(NodeRole::Master),
            "slave" | "replica" => Some(NodeRole::Slave),
            "proxy" => Some(NodeRole::Proxy),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Master => "master",
            NodeRole::Slave => "slave",
            NodeRole::Proxy => "proxy",
        }
    }
}

/// A Redis server (or Redis-protocol proxy) of an instance, as declared by the operator.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub role: NodeRole,
    /// The shard (replication group) the node belongs to; proxies have their own group.
    pub group_id: String,
    pub group_name: String,
    /// `host:port` or `[ipv6]:port`, reached directly (never through a cluster client).
    pub address: String,
    /// ACL user (Redis 6+); `None` authenticates as `default` with `password`, if any.
    pub user: Option<String>,
    pub password: Option<Password>,
    pub az_code: String,
    pub priority_weight: i64,
}

impl Node {
    /// The host part of the address (without IPv6 brackets).
    pub fn host(&self) -> &str {
        split_host_port(&self.address).map(|(h, _)| h).unwrap_or("")
    }

    pub fn port(&self) -> u16 {
        split_host_port(&self.address).map(|(_, p)| p).unwrap_or(0)
    }
}

/// `host:port` or `[v6]:port` -> (host, port).
pub fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

/// A DCS instance: a set of Redis nodes owned by one project (a credential's account).
#[derive(Debug, Clone)]
pub struct Instance {
    /// A UUID, lower case.
    pub id: String,
    pub name: String,
    pub project: AccountId,
    pub description: String,
    pub nodes: Vec<Node>,
}

impl Instance {
    pub fn node(&self, node_id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == node_id)
    }

    /// Groups in declaration order: (group id, group name, nodes).
    pub fn groups(&self) -> Vec<(&str, &str, Vec<&Node>)> {
        let mut groups: Vec<(&str, &str, Vec<&Node>)> = Vec::new();
        for node in &self.nodes {
            match groups.iter_mut().find(|(id, _, _)| *id == node.group_id) {
                Some((_, _, nodes)) => nodes.push(node),
                None => groups.push((&node.group_id, &node.group_name, vec![node])),
            }
        }
        groups
    }

    /// `single`, `ha`, `cluster` or `proxy`, from the declared shape.
    pub fn cache_mode(&self) -> &'static str {
        let data_groups = self
            .groups()
            .into_iter()
            .filter(|(_, _, nodes)| nodes.iter().any(|n| n.role != NodeRole::Proxy))
            .count();
        if self.nodes.iter().any(|n| n.role == NodeRole::Proxy) {
            "proxy"
        } else if data_groups > 1 {
            "cluster"
        } else if self.nodes.len() > 1 {
            "ha"
        } else {
            "single"
        }
    }
}

/// Normalises a client address the way Redis prints it: `ip:port` for IPv4, `[ip]:port` for
/// IPv6 (compressed, lower case). `None` if `value` is not such an address.
pub fn normalize_client_addr(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value.len() > 64 {
        return None;
    }
    value.parse::<SocketAddr>().ok().map(|a| a.to_string())
}

/// One client connection of a node, as `CLIENT LIST` reports it. Numbers Redis does not report
/// (older versions) are 0; strings are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientRecord {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    pub name: String,
    pub age: i64,
    pub idle: i64,
    pub flags: String,
    pub db: i64,
    pub sub: i64,
    pub psub: i64,
    pub multi: i64,
    pub qbuf: i64,
    pub qbuf_free: i64,
    pub obl: i64,
    pub oll: i64,
    pub omem: i64,
    pub events: String,
    pub cmd: String,
    pub user: String,
    /// A connection sessiond itself holds to the node: never killed.
    pub own: bool,
}

impl ClientRecord {
    /// `ipv4`, `ipv6` or `unix`, from the address form.
    pub fn network(&self) -> &'static str {
        if self.addr.starts_with('[') {
            "ipv6"
        } else if self.addr.starts_with('/') || self.addr.parse::<SocketAddr>().is_err() {
            "unix"
        } else {
            "ipv4"
        }
    }

    /// A replication link (a replica connected to this node, or this replica's master link):
    /// kill-all leaves these alone.
    pub fn is_replication_link(&self) -> bool {
        self.flags.contains('S') || self.flags.contains('M')
    }
}

/// A field client lists can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientField {
    Id,
    Addr,
    Fd,
    Name,
    Cmd,
    Age,
    Idle,
    Db,
    Flags,
    Sub,
    Psub,
    Multi,
    Qbuf,
    QbufFree,
    Obl,
    Oll,
    Omem,
    Events,
    Network,
    Peer,
    User,
}

impl ClientField {
    pub fn compare(self, a: &ClientRecord, b: &ClientRecord) -> std::cmp::Ordering {
        use ClientField::*;
        match self {
            Id => a.id.cmp(&b.id),
            Addr | Peer => a.addr.cmp(&b.addr),
            Fd => a.fd.cmp(&b.fd),
            Name => a.name.cmp(&b.name),
            Cmd => a.cmd.cmp(&b.cmd),
            Age => a.age.cmp(&b.age),
            Idle => a.idle.cmp(&b.idle),
            Db => a.db.cmp(&b.db),
            Flags => a.flags.cmp(&b.flags),
            Sub => a.sub.cmp(&b.sub),
            Psub => a.psub.cmp(&b.psub),
            Multi => a.multi.cmp(&b.multi),
            Qbuf => a.qbuf.cmp(&b.qbuf),
            QbufFree => a.qbuf_free.cmp(&b.qbuf_free),
            Obl => a.obl.cmp(&b.obl),
            Oll => a.oll.cmp(&b.oll),
            Omem => a.omem.cmp(&b.omem),
            Events => a.events.cmp(&b.events),
            Network => a.network().cmp(b.network()),
            User => a.user.cmp(&b.user),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// Kill every client connection of one node or of every node of the instance.
    KillAllClients,
    /// Take a snapshot of one node's client list.
    ScanClients,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    Running,
    Success,
    Failed,
}

/// A background job; durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub project: AccountId,
    pub kind: JobKind,
    pub instance_id: String,
    pub node_ids: Vec<String>,
    pub status: JobStatus,
    pub begin_ms: i64,
    pub end_ms: Option<i64>,
    pub fail_reason: Option<String>,
    /// Kill-all: connections killed so far; scan: clients listed.
    #[serde(default)]
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_normalise_like_redis_prints_them() {
        assert_eq!(
            normalize_client_addr("10.63.238.158:2048").as_deref(),
            Some("10.63.238.158:2048")
        );
        assert_eq!(
            normalize_client_addr(" [::1]:52034 ").as_deref(),
            Some("[::1]:52034")
        );
        assert_eq!(
            normalize_client_addr("[0:0:0:0:0:0:0:1]:7").as_deref(),
            Some("[::1]:7")
        );
        assert_eq!(
            normalize_client_addr("[FE80::ABCD]:7").as_deref(),
            Some("[fe80::abcd]:7")
        );
        for bad in [
            "",
            "10.0.0.1",
            "::1:80",
            "host:80",
            "1.2.3.4:99999",
            "/tmp/redis.sock:0",
            "[::1]",
        ] {
            assert_eq!(normalize_client_addr(bad), None, "{bad}");
        }
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("127.0.0.1:6379"), Some(("127.0.0.1", 6379)));
        assert_eq!(split_host_port("[::1]:6379"), Some(("::1", 6379)));
        assert_eq!(split_host_port("redis.local:1"), Some(("redis.local", 1)));
        assert_eq!(split_host_port("::1:6379"), None);
        assert_eq!(split_host_port(":6379"), None);
        assert_eq!(split_host_port("x"), None);
    }

    #[test]
    fn passwords_do_not_print() {
        assert!(!format!("{:?}", Password::new("hunter2")).contains("hunter2"));
    }

    #[test]
    fn networks() {
        let mut c = ClientRecord {
            addr: "[::1]:5".into(),
            ..Default::default()
        };
        assert_eq!(c.network(), "ipv6");
        c.addr = "1.2.3.4:5".into();
        assert_eq!(c.network(), "ipv4");
        c.addr = "/tmp/r.sock:0".into();
        assert_eq!(c.network(), "unix");
    }
}
