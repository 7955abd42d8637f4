//! The declared inventory (instances, shards, nodes) and kill-session tasks.

use serde::{Deserialize, Serialize};

use crate::AccountId;

/// A sharded database instance as the operator declared it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `tdsqlshard-…` or `dcdbt-…`.
    pub id: String,
    pub name: String,
    pub account: AccountId,
    pub region: String,
    pub zone: String,
    pub project_id: i64,
    /// The proxy address clients use (informational).
    pub vip: String,
    pub vport: u16,
    pub db_engine: String,
    pub db_version: String,
    pub memory_gb: i64,
    pub storage_gb: i64,
    pub cpu: i64,
    /// Sessions of these users are never killed on any shard of the instance.
    pub protected_users: Vec<String>,
    pub shards: Vec<Shard>,
    /// When sessiond first saw the instance (ms since the epoch); set by the service.
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    /// `shard-…`: KillSession's `ShardId`.
    pub shard_instance_id: String,
    /// `set_<secs>_<n>`: KillSession's `ShardSerialId`.
    pub shard_serial_id: String,
    /// The deprecated numeric shard id.
    pub numeric_id: i64,
    pub memory_gb: i64,
    pub storage_gb: i64,
    pub cpu: i64,
    /// Added to the instance's protected users for this shard.
    pub protected_users: Vec<String>,
    /// The master first, then the replicas.
    pub nodes: Vec<Node>,
    /// When sessiond first saw the shard; set by the service.
    pub created_ms: i64,
}

impl Shard {
    pub fn master(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.role == NodeRole::Master)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub node_id: String,
    pub role: NodeRole,
    pub zone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    Master,
    Replica,
}

/// Which node a data-plane call is for; the data plane maps it to a server and credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeKey {
    pub instance_id: String,
    pub shard_instance_id: String,
    pub node_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Running,
    Succeeded,
    Failed,
}

/// A KillSession task: durable from the moment its id is returned. The record stays small
/// (counts and a bounded message, no per-session lists) so that many can be kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillTask {
    pub id: u64,
    pub account: AccountId,
    pub instance_id: String,
    pub shard_instance_id: String,
    pub node_id: String,
    /// How many distinct sessions were listed.
    pub listed: usize,
    pub state: TaskState,
    /// Sessions this task killed (and saw end).
    #[serde(default)]
    pub killed: usize,
    /// Sessions that did not exist (any more) when the task ran.
    #[serde(default)]
    pub absent: usize,
    /// Sessions that could not be killed; the message says which and why.
    #[serde(default)]
    pub failed: usize,
    /// A summary for people: what happened, or why the task failed (bounded length).
    pub message: String,
    pub created_ms: i64,
    #[serde(default)]
    pub finished_ms: Option<i64>,
}
