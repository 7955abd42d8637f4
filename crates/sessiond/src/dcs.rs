//! Wiring of DCS (Huawei): declared Redis instances and nodes, client sessions.
//!
//! ```toml
//! [dcs]
//! connect_timeout_ms = 2000          # connect + AUTH to a node
//! command_timeout_ms = 5000          # each round trip to a node
//!
//! [[dcs.instances]]
//! instance_id = "3ee4d2e8-7d1a-4fb8-a9f0-1e1f2ad2c5e1"   # a UUID
//! name = "orders-cache"
//! project_id = "0605767a3300d5762fb7c0186d9e1779"        # the account_id of a credential
//!
//! [[dcs.instances.nodes]]
//! node_id = "8f7ee181-88e2-49b7-a4bf-81f18f93a135"
//! role = "master"                    # master | slave | proxy
//! group = "group-0"
//! address = "127.0.0.1:6380"         # or "[::1]:6380", "redis.local:6380"
//! password = "…"                     # or password_file = "/path"; user = "acl-user"
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use sessiond_api_common::Dialect;
use sessiond_api_huawei::{HuaweiApi, RateLimits};
use sessiond_backends::redis::{RedisBackend, RedisConfig};
use sessiond_core::dcs::{
    split_host_port, DcsConfig, DcsService, Instance, Node, NodeRole, Password,
};
use sessiond_core::{AccountId, SystemClock};

/// The `[dcs]` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcsSection {
    /// Connect and authenticate to a Redis node within this time (default 2000).
    pub connect_timeout_ms: Option<u64>,
    /// Each round trip to a node within this time (default 5000).
    pub command_timeout_ms: Option<u64>,
    /// Finished jobs kept per project (default 1000).
    pub max_jobs_per_project: Option<usize>,
    #[serde(default)]
    pub instances: Vec<InstanceConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    pub instance_id: String,
    pub name: String,
    /// The owning project: the `account_id` of a credential.
    pub project_id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub nodes: Vec<NodeConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `master`, `slave` or `proxy`.
    pub role: String,
    /// Shard (replication group) id.
    pub group: String,
    #[serde(default)]
    pub group_name: Option<String>,
    /// `host:port` or `[ipv6]:port` of the Redis server.
    pub address: String,
    /// ACL user (Redis 6+); needs `+client +info`.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<Redacted>,
    /// A file holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub az_code: Option<String>,
    #[serde(default)]
    pub priority_weight: Option<i64>,
}

/// A string from the config that never prints itself.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl DcsSection {
    /// Checks the section and builds the inventory; errors name the key and the reason.
    pub fn inventory(&self) -> Result<Vec<Instance>> {
        let mut instances: Vec<Instance> = Vec::new();
        for (i, inst) in self.instances.iter().enumerate() {
            let key = format!("dcs.instances[{i}]");
            let id = inst.instance_id.trim().to_ascii_lowercase();
            if !is_uuid(&id) {
                bail!(
                    "{key}.instance_id = {:?} must be a UUID like 3ee4d2e8-7d1a-4fb8-a9f0-1e1f2ad2c5e1",
                    inst.instance_id
                );
            }
            if instances.iter().any(|o| o.id == id) {
                bail!("{key}.instance_id {id} is declared twice");
            }
            if inst.name.trim().is_empty() || inst.name.len() > 64 {
                bail!("{key}.name must be 1 to 64 characters");
            }
            if !is_id(&inst.project_id) {
                bail!(
                    "{key}.project_id = {:?} must be the account_id of a credential (letters, digits, - _ .)",
                    inst.project_id
                );
            }
            if inst.nodes.is_empty() {
                bail!("{key}.nodes is empty; declare at least one [[dcs.instances.nodes]]");
            }
            let mut nodes: Vec<Node> = Vec::new();
            for (j, n) in inst.nodes.iter().enumerate() {
                let key = format!("{key}.nodes[{j}]");
                if !is_id(&n.node_id) {
                    bail!(
                        "{key}.node_id = {:?} must be 1 to 64 letters, digits, - _ .",
                        n.node_id
                    );
                }
                if nodes.iter().any(|o| o.id == n.node_id) {
                    bail!(
                        "{key}.node_id {} is declared twice in this instance",
                        n.node_id
                    );
                }
                let role = NodeRole::parse(&n.role).ok_or_else(|| {
                    anyhow!("{key}.role = {:?} must be master, slave or proxy", n.role)
                })?;
                if !is_id(&n.group) {
                    bail!(
                        "{key}.group = {:?} must be 1 to 64 letters, digits, - _ .",
                        n.group
                    );
                }
                if split_host_port(&n.address).is_none() {
                    bail!(
                        "{key}.address = {:?} must be host:port or [ipv6]:port",
                        n.address
                    );
                }
                let password = match (&n.password, &n.password_file) {
                    (Some(p), None) => Some(p.0.clone()),
                    (None, Some(f)) => Some(
                        std::fs::read_to_string(f)
                            .map_err(|e| anyhow!("{key}.password_file {}: {e}", f.display()))?
                            .trim_end_matches(['\r', '\n'])
                            .to_string(),
                    ),
                    (Some(_), Some(_)) => {
                        bail!("{key} has both password and password_file; keep one")
                    }
                    (None, None) => None,
                };
                if password.as_ref().is_some_and(|p| p.is_empty()) {
                    bail!("{key} has an empty password");
                }
                if n.user.is_some() && password.is_none() {
                    bail!("{key}.user needs a password (or password_file)");
                }
                if n.user
                    .as_ref()
                    .is_some_and(|u| u.is_empty() || u.contains(char::is_whitespace))
                {
                    bail!("{key}.user must be a Redis ACL user name without spaces");
                }
                nodes.push(Node {
                    id: n.node_id.clone(),
                    name: n.name.clone().unwrap_or_else(|| n.node_id.clone()),
                    role,
                    group_id: n.group.clone(),
                    group_name: n.group_name.clone().unwrap_or_else(|| n.group.clone()),
                    address: n.address.clone(),
                    user: n.user.clone(),
                    password: password.map(Password::new),
                    az_code: n.az_code.clone().unwrap_or_else(|| "local".into()),
                    priority_weight: n.priority_weight.unwrap_or(100),
                });
            }
            instances.push(Instance {
                id,
                name: inst.name.clone(),
                project: AccountId(inst.project_id.clone()),
                description: inst.description.clone(),
                nodes,
            });
        }
        Ok(instances)
    }

    fn redis_config(&self) -> Result<RedisConfig> {
        let ms = |key: &str, value: Option<u64>, default: u64| -> Result<Duration> {
            let v = value.unwrap_or(default);
            if !(1..=600_000).contains(&v) {
                bail!("dcs.{key} = {v} must be 1 to 600000");
            }
            Ok(Duration::from_millis(v))
        };
        Ok(RedisConfig {
            connect_timeout: ms("connect_timeout_ms", self.connect_timeout_ms, 2000)?,
            command_timeout: ms("command_timeout_ms", self.command_timeout_ms, 5000)?,
        })
    }
}

/// Starts the service; returns the dialects it serves on the API listener.
pub async fn start(section: &DcsSection, wiring: &crate::Wiring) -> Result<Vec<Arc<dyn Dialect>>> {
    let instances = section.inventory()?;
    let redis = section.redis_config()?;
    let config = DcsConfig {
        max_jobs_per_project: section.max_jobs_per_project.unwrap_or(1000).max(1),
    };
    let count = instances.len();
    let service = DcsService::open(
        config,
        instances,
        wiring.store.clone(),
        Arc::new(SystemClock),
        Arc::new(RedisBackend::new(redis)),
    )
    .await
    .map_err(|e| anyhow!("dcs: {e}"))?;
    if count > 0 {
        tracing::info!(instances = count, "DCS instances declared");
    }
    let api = HuaweiApi::new(
        service,
        wiring.credentials.clone(),
        RateLimits::new(wiring.rate_limits.clone()),
        wiring.metrics.clone(),
    );
    Ok(vec![Arc::new(api)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> DcsSection {
        toml::from_str(text).unwrap()
    }

    const GOOD: &str = r#"
[[instances]]
instance_id = "3EE4D2E8-7D1A-4FB8-A9F0-1E1F2AD2C5E1"
name = "cache"
project_id = "100000000001"

[[instances.nodes]]
node_id = "n1"
role = "master"
group = "g0"
address = "[::1]:6380"
user = "ops"
password = "hunter2"
"#;

    #[test]
    fn builds_the_inventory_and_never_prints_passwords() {
        let s = section(GOOD);
        assert!(!format!("{s:?}").contains("hunter2"));
        let inv = s.inventory().unwrap();
        assert!(!format!("{inv:?}").contains("hunter2"));
        assert_eq!(inv[0].id, "3ee4d2e8-7d1a-4fb8-a9f0-1e1f2ad2c5e1");
        let n = &inv[0].nodes[0];
        assert_eq!((n.host(), n.port()), ("::1", 6380));
        assert_eq!(n.password.as_ref().unwrap().expose(), "hunter2");
        assert_eq!(n.group_name, "g0");
    }

    #[test]
    fn errors_name_the_key() {
        for (from, to, key) in [
            (
                "3EE4D2E8-7D1A-4FB8-A9F0-1E1F2AD2C5E1",
                "not-a-uuid",
                "dcs.instances[0].instance_id",
            ),
            (
                "\"master\"",
                "\"primary\"",
                "dcs.instances[0].nodes[0].role",
            ),
            (
                "[::1]:6380",
                "::1:6380",
                "dcs.instances[0].nodes[0].address",
            ),
            (
                "password = \"hunter2\"",
                "",
                "dcs.instances[0].nodes[0].user",
            ),
            (
                "node_id = \"n1\"",
                "node_id = \"n 1\"",
                "dcs.instances[0].nodes[0].node_id",
            ),
        ] {
            let err = section(&GOOD.replace(from, to))
                .inventory()
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let twice = format!("{GOOD}\n[[instances.nodes]]\nnode_id = \"n1\"\nrole = \"slave\"\ngroup = \"g0\"\naddress = \"127.0.0.1:1\"\n");
        let err = section(&twice).inventory().unwrap_err().to_string();
        assert!(err.contains("declared twice"), "{err}");
        let err = toml::from_str::<DcsSection>("[[instances]]\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
        let s = DcsSection {
            command_timeout_ms: Some(0),
            ..Default::default()
        };
        assert!(s
            .redis_config()
            .unwrap_err()
            .to_string()
            .contains("dcs.command_timeout_ms"));
    }
}
