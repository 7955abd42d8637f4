//! Wiring of DCDB (Tencent): declared instances and shards, KillSession on real MariaDB/MySQL.
//!
//! ```toml
//! [dcdb]
//! connect_timeout_ms = 5000        # TCP + TLS + login to a shard node
//! query_timeout_ms = 5000          # each query (process list, KILL)
//! kill_wait_ms = 10000             # killed sessions must be gone within this
//! task_timeout_ms = 60000          # a whole KillSession task
//! task_retention_hours = 168       # DescribeFlow remembers finished tasks this long
//! max_retained_tasks = 10000        # ... and at most this many
//!
//! [[dcdb.instances]]
//! instance_id = "tdsqlshard-2gk4nxyz"
//! name = "orders"
//! account_id = "100000000001"
//! protected_users = ["repl", "monitor"]
//!
//! [[dcdb.instances.shards]]
//! shard_instance_id = "shard-ljilb4st"
//! shard_serial_id = "set_1643096858_1"
//! master = { host = "10.0.0.11", port = 3306, user = "sessiond", password_file = "/etc/sessiond/shard1.pw" }
//! ```
//!
//! Everything is checked when the file is read; an error names the key and the reason.
//! Passwords (`password` or `password_file`) are never printed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use serde::Deserialize;
use sessiond_api_common::Dialect;
use sessiond_backends::mariadb::{MariaDbShards, NodeAddress, Password, Timeouts, TlsOptions};
use sessiond_core::dcdb::{ids, DcdbConfig, DcdbService, Instance, Node, NodeRole, Shard};
use sessiond_core::{AccountId, SystemClock};

/// The `[dcdb]` section of the config file, checked and resolved (password files read).
#[derive(Debug, Default, Deserialize)]
#[serde(try_from = "RawSection")]
pub struct DcdbSection {
    timeouts: Timeouts,
    config: DcdbConfig,
    instances: Vec<Instance>,
    /// Connection settings by node id.
    nodes: HashMap<String, NodeAddress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    connect_timeout_ms: Option<u64>,
    query_timeout_ms: Option<u64>,
    kill_wait_ms: Option<u64>,
    task_timeout_ms: Option<u64>,
    task_retention_hours: Option<u64>,
    max_retained_tasks: Option<usize>,
    #[serde(default)]
    instances: Vec<RawInstance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    instance_id: String,
    name: Option<String>,
    account_id: String,
    region: Option<String>,
    zone: Option<String>,
    #[serde(default)]
    project_id: i64,
    #[serde(default)]
    vip: String,
    #[serde(default)]
    vport: u16,
    db_engine: Option<String>,
    #[serde(default)]
    db_version: String,
    #[serde(default)]
    memory_gb: i64,
    #[serde(default)]
    storage_gb: i64,
    #[serde(default)]
    cpu: i64,
    #[serde(default)]
    protected_users: Vec<String>,
    #[serde(default)]
    shards: Vec<RawShard>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShard {
    shard_instance_id: String,
    shard_serial_id: String,
    /// The deprecated numeric id (default: the shard's position, from 1).
    shard_id: Option<i64>,
    #[serde(default)]
    memory_gb: i64,
    #[serde(default)]
    storage_gb: i64,
    #[serde(default)]
    cpu: i64,
    #[serde(default)]
    protected_users: Vec<String>,
    master: Option<RawNode>,
    #[serde(default)]
    replicas: Vec<RawNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    node_id: Option<String>,
    zone: Option<String>,
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    user: String,
    password: Option<String>,
    password_file: Option<PathBuf>,
    tls: Option<RawTls>,
}

/// Shows everything but the password.
impl std::fmt::Debug for RawNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawNode")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<PathBuf>,
    #[serde(default = "yes")]
    verify_hostname: bool,
}

fn default_port() -> u16 {
    3306
}

fn yes() -> bool {
    true
}

fn millis(key: &str, value: Option<u64>, default: u64, max: u64) -> Result<Duration, String> {
    let v = value.unwrap_or(default);
    if v == 0 || v > max {
        return Err(format!("dcdb.{key} = {v}: must be 1 to {max}"));
    }
    Ok(Duration::from_millis(v))
}

fn check_user(key: &str, user: &str) -> Result<(), String> {
    if user.is_empty() || user.len() > 80 || user.chars().any(char::is_control) {
        return Err(format!(
            "{key} = {user:?}: a database user name is 1 to 80 printable characters"
        ));
    }
    Ok(())
}

fn node_address(key: &str, raw: &RawNode) -> Result<NodeAddress, String> {
    if raw.host.trim().is_empty()
        || raw
            .host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{key}.host = {:?}: not a host name or address",
            raw.host
        ));
    }
    if raw.port == 0 {
        return Err(format!("{key}.port = 0: must be 1 to 65535"));
    }
    check_user(&format!("{key}.user"), &raw.user)?;
    let password = match (&raw.password, &raw.password_file) {
        (Some(p), None) => p.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| format!("{key}.password_file {}: {e}", file.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        (Some(_), Some(_)) => {
            return Err(format!(
                "{key} has both password and password_file; keep one"
            ))
        }
        (None, None) => return Err(format!("{key} needs password or password_file")),
    };
    let tls = match &raw.tls {
        None => None,
        Some(t) => {
            if let Some(ca) = &t.ca_file {
                std::fs::metadata(ca)
                    .map_err(|e| format!("{key}.tls.ca_file {}: {e}", ca.display()))?;
            }
            Some(TlsOptions {
                ca_file: t.ca_file.clone(),
                verify_hostname: t.verify_hostname,
            })
        }
    };
    Ok(NodeAddress {
        host: raw.host.trim().to_string(),
        port: raw.port,
        user: raw.user.clone(),
        password: Password::new(password),
        tls,
    })
}

impl TryFrom<RawSection> for DcdbSection {
    type Error = String;

    fn try_from(raw: RawSection) -> Result<Self, String> {
        let timeouts = Timeouts {
            connect: millis("connect_timeout_ms", raw.connect_timeout_ms, 5_000, 600_000)?,
            query: millis("query_timeout_ms", raw.query_timeout_ms, 5_000, 600_000)?,
        };
        let retention_hours = raw.task_retention_hours.unwrap_or(168);
        if retention_hours == 0 || retention_hours > 24 * 366 {
            return Err(format!(
                "dcdb.task_retention_hours = {retention_hours}: must be 1 to {}",
                24 * 366
            ));
        }
        let max_tasks = raw.max_retained_tasks.unwrap_or(10_000);
        if max_tasks == 0 || max_tasks > 10_000_000 {
            return Err(format!(
                "dcdb.max_retained_tasks = {max_tasks}: must be 1 to 10000000"
            ));
        }
        let config = DcdbConfig {
            max_tasks,
            kill_wait: millis("kill_wait_ms", raw.kill_wait_ms, 10_000, 600_000)?,
            task_timeout: millis("task_timeout_ms", raw.task_timeout_ms, 60_000, 3_600_000)?,
            task_retention: Duration::from_secs(retention_hours * 3600),
            ..DcdbConfig::default()
        };
        let mut instances = Vec::new();
        let mut nodes = HashMap::new();
        let mut instance_ids = HashSet::new();
        let mut shard_ids = HashSet::new();
        for (i, ri) in raw.instances.into_iter().enumerate() {
            let key = format!("dcdb.instances[{i}]");
            if !ids::is_instance_id(&ri.instance_id) {
                return Err(format!(
                    "{key}.instance_id = {:?}: must be tdsqlshard-<8> or dcdbt-<8> (8 lower-case letters or digits)",
                    ri.instance_id
                ));
            }
            if !instance_ids.insert(ri.instance_id.clone()) {
                return Err(format!(
                    "{key}.instance_id = {:?}: declared twice",
                    ri.instance_id
                ));
            }
            if ri.account_id.trim().is_empty() {
                return Err(format!("{key}.account_id is empty"));
            }
            for (u, user) in ri.protected_users.iter().enumerate() {
                check_user(&format!("{key}.protected_users[{u}]"), user)?;
            }
            if ri.shards.is_empty() {
                return Err(format!(
                    "{key} ({}) has no [[dcdb.instances.shards]]",
                    ri.instance_id
                ));
            }
            let region = ri.region.unwrap_or_else(|| "ap-guangzhou".into());
            let zone = ri.zone.unwrap_or_else(|| format!("{region}-1"));
            let mut shards = Vec::new();
            let mut serials = HashSet::new();
            for (s, rs) in ri.shards.into_iter().enumerate() {
                let key = format!("{key}.shards[{s}]");
                if !ids::is_shard_instance_id(&rs.shard_instance_id) {
                    return Err(format!(
                        "{key}.shard_instance_id = {:?}: must be shard-<8> (8 lower-case letters or digits)",
                        rs.shard_instance_id
                    ));
                }
                if !shard_ids.insert(rs.shard_instance_id.clone()) {
                    return Err(format!(
                        "{key}.shard_instance_id = {:?}: declared twice",
                        rs.shard_instance_id
                    ));
                }
                if !ids::is_shard_serial_id(&rs.shard_serial_id) {
                    return Err(format!(
                        "{key}.shard_serial_id = {:?}: must be set_<unix seconds>_<n>, e.g. set_1643096858_1",
                        rs.shard_serial_id
                    ));
                }
                if !serials.insert(rs.shard_serial_id.clone()) {
                    return Err(format!(
                        "{key}.shard_serial_id = {:?}: used twice in this instance",
                        rs.shard_serial_id
                    ));
                }
                for (u, user) in rs.protected_users.iter().enumerate() {
                    check_user(&format!("{key}.protected_users[{u}]"), user)?;
                }
                let master = rs
                    .master
                    .ok_or_else(|| format!("{key}.master is missing: the shard's master server"))?;
                let mut shard_nodes = Vec::new();
                for (n, (node_key, role, rn)) in
                    std::iter::once((format!("{key}.master"), NodeRole::Master, master))
                        .chain(
                            rs.replicas.into_iter().enumerate().map(|(r, rn)| {
                                (format!("{key}.replicas[{r}]"), NodeRole::Replica, rn)
                            }),
                        )
                        .enumerate()
                {
                    let node_id = match &rn.node_id {
                        Some(id) if !ids::is_node_id(id) => {
                            return Err(format!(
                            "{node_key}.node_id = {id:?}: 1 to 64 letters, digits, '_', '.' or '-'"
                        ))
                        }
                        Some(id) => id.clone(),
                        None => ids::derive_node_id(&ri.instance_id, &rs.shard_instance_id, n),
                    };
                    if nodes.contains_key(&node_id) {
                        return Err(format!(
                            "{node_key}.node_id = {node_id:?}: used by another node"
                        ));
                    }
                    nodes.insert(node_id.clone(), node_address(&node_key, &rn)?);
                    shard_nodes.push(Node {
                        node_id,
                        role,
                        zone: rn.zone.clone().unwrap_or_else(|| zone.clone()),
                    });
                }
                shards.push(Shard {
                    shard_instance_id: rs.shard_instance_id,
                    shard_serial_id: rs.shard_serial_id,
                    numeric_id: rs.shard_id.unwrap_or(s as i64 + 1),
                    memory_gb: rs.memory_gb,
                    storage_gb: rs.storage_gb,
                    cpu: rs.cpu,
                    protected_users: rs.protected_users,
                    nodes: shard_nodes,
                    created_ms: 0,
                });
            }
            instances.push(Instance {
                name: ri.name.unwrap_or_else(|| ri.instance_id.clone()),
                id: ri.instance_id,
                account: AccountId(ri.account_id.trim().to_string()),
                region,
                zone,
                project_id: ri.project_id,
                vip: ri.vip,
                vport: ri.vport,
                db_engine: ri.db_engine.unwrap_or_else(|| "MariaDB".into()),
                db_version: ri.db_version,
                memory_gb: ri.memory_gb,
                storage_gb: ri.storage_gb,
                cpu: ri.cpu,
                protected_users: ri.protected_users,
                shards,
                created_ms: 0,
            });
        }
        Ok(DcdbSection {
            timeouts,
            config,
            instances,
            nodes,
        })
    }
}

/// DCDB has no listener of its own: it is served by the Tencent dialect on the API address
/// (see [`open`], whose service `main` hands to `TencentApi::new`).
pub async fn start(
    _section: &DcdbSection,
    _wiring: &crate::Wiring,
) -> Result<Vec<Arc<dyn Dialect>>> {
    Ok(Vec::new())
}

/// Opens the DCDB service: the declared inventory, the MariaDB data plane, the task log (tasks
/// interrupted by the previous run are marked failed before this returns).
pub async fn open(section: &DcdbSection, wiring: &crate::Wiring) -> Result<Arc<DcdbService>> {
    let plane = MariaDbShards::new(section.nodes.clone(), section.timeouts);
    let service = DcdbService::open(
        section.config.clone(),
        section.instances.clone(),
        wiring.store.clone(),
        Arc::new(SystemClock),
        Arc::new(plane),
    )
    .await
    .map_err(|e| anyhow!("dcdb: {e}"))?;
    if !section.instances.is_empty() {
        tracing::info!(
            instances = section.instances.len(),
            nodes = section.nodes.len(),
            "DCDB inventory declared"
        );
    }
    Ok(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DcdbSection, String> {
        #[derive(Deserialize)]
        struct Top {
            #[serde(default)]
            dcdb: DcdbSection,
        }
        toml::from_str::<Top>(text)
            .map(|t| t.dcdb)
            .map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[dcdb]
kill_wait_ms = 500

[[dcdb.instances]]
instance_id = "tdsqlshard-2gk4nxyz"
account_id = "100000000001"
protected_users = ["repl"]

[[dcdb.instances.shards]]
shard_instance_id = "shard-ljilb4st"
shard_serial_id = "set_1643096858_1"
master = { host = "127.0.0.1", port = 3307, user = "sessiond", password = "hunter2" }

[[dcdb.instances.shards.replicas]]
host = "127.0.0.1"
port = 3308
user = "sessiond"
password = "hunter2"
node_id = "replica-1"
zone = "ap-guangzhou-4"

[[dcdb.instances.shards]]
shard_instance_id = "shard-abcdefgh"
shard_serial_id = "set_1643096858_2"
[dcdb.instances.shards.master]
host = "db2"
user = "sessiond"
password = ""
tls = { verify_hostname = false }
"#;

    #[test]
    fn a_full_section() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.config.kill_wait, Duration::from_millis(500));
        assert_eq!(s.timeouts.connect, Duration::from_secs(5));
        assert_eq!(s.instances.len(), 1);
        let i = &s.instances[0];
        assert_eq!(i.name, "tdsqlshard-2gk4nxyz");
        assert_eq!(i.region, "ap-guangzhou");
        assert_eq!(i.shards.len(), 2);
        assert_eq!(i.shards[0].nodes.len(), 2);
        assert_eq!(i.shards[0].nodes[1].node_id, "replica-1");
        assert_eq!(i.shards[0].nodes[1].zone, "ap-guangzhou-4");
        assert_eq!(i.shards[1].numeric_id, 2);
        let master = &i.shards[1].nodes[0].node_id;
        assert_eq!(master.len(), 12);
        assert_eq!(s.nodes[master].port, 3306);
        assert_eq!(
            s.nodes[master].tls,
            Some(TlsOptions {
                ca_file: None,
                verify_hostname: false
            })
        );
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                GOOD.replace("tdsqlshard-2gk4nxyz", "tdsqlshard-X"),
                "dcdb.instances[0].instance_id",
            ),
            (
                GOOD.replace("shard-abcdefgh", "shard-ljilb4st"),
                "dcdb.instances[0].shards[1].shard_instance_id",
            ),
            (
                GOOD.replace("set_1643096858_2", "set_1643096858_1"),
                "dcdb.instances[0].shards[1].shard_serial_id",
            ),
            (
                GOOD.replace("set_1643096858_2", "set-2"),
                "dcdb.instances[0].shards[1].shard_serial_id",
            ),
            (
                GOOD.replace("password = \"\"", ""),
                "dcdb.instances[0].shards[1].master needs password or password_file",
            ),
            (
                GOOD.replace("password = \"\"", "password = \"\"\npassword_file = \"/x\""),
                "has both password and password_file",
            ),
            (
                GOOD.replace("password = \"\"", "password_file = \"/nonexistent/pw\""),
                "dcdb.instances[0].shards[1].master.password_file /nonexistent/pw",
            ),
            (
                GOOD.replace("node_id = \"replica-1\"", "node_id = \"bad id\""),
                "dcdb.instances[0].shards[0].replicas[0].node_id",
            ),
            (
                GOOD.replace("kill_wait_ms = 500", "kill_wait_ms = 0"),
                "dcdb.kill_wait_ms = 0",
            ),
            (GOOD.replace("kill_wait_ms = 500", "bogus = 1"), "bogus"),
            (
                GOOD.replace("protected_users = [\"repl\"]", "protected_users = [\"\"]"),
                "dcdb.instances[0].protected_users[0]",
            ),
            (
                GOOD.replace("port = 3307,", "port = 0,"),
                "dcdb.instances[0].shards[0].master.port",
            ),
            (
                GOOD.replace(
                    "tls = { verify_hostname = false }",
                    "tls = { ca_file = \"/nonexistent/ca.pem\" }",
                ),
                "dcdb.instances[0].shards[1].master.tls.ca_file",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text)
                .err()
                .unwrap_or_else(|| panic!("accepted: {want}"));
            assert!(err.contains(want), "want {want:?} in {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let no_master = r#"
[[dcdb.instances]]
instance_id = "dcdbt-ow728lmc"
account_id = "1"
[[dcdb.instances.shards]]
shard_instance_id = "shard-ljilb4st"
shard_serial_id = "set_1_1"
"#;
        assert!(parse(no_master)
            .unwrap_err()
            .contains("dcdb.instances[0].shards[0].master is missing"));
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let text = GOOD.replace(
            "password = \"\"",
            &format!("password_file = \"{}\"", pw.display()),
        );
        let s = parse(&text).unwrap();
        let master = &s.instances[0].shards[1].nodes[0].node_id;
        assert_eq!(s.nodes[master].password.expose(), "s3cret");
    }

    #[test]
    fn an_absent_section_is_empty() {
        let s = parse("").unwrap();
        assert!(s.instances.is_empty());
    }
}
