//! The boundary to the Redis nodes. Client connections are soft state owned by each Redis
//! server; the service reaches them only through this trait, implemented by the data plane
//! (`sessiond-backends`). Every call is bounded in time by the implementation.

use std::future::Future;
use std::pin::Pin;

use super::model::{ClientRecord, Node};

pub type DataFuture<T> = Pin<Box<dyn Future<Output = Result<T, DataError>> + Send + 'static>>;

/// Why a node could not do what was asked, in terms an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// No connection could be made (refused, unreachable, DNS, connect timeout) or it broke.
    #[error("{0}")]
    Unreachable(String),
    /// The node accepted the connection but did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// The node refused the configured credentials (or needs some and none are configured).
    #[error("{0}")]
    AuthFailed(String),
    /// The configured Redis user may not run the command (ACL).
    #[error("{0}")]
    NoPermission(String),
    /// The node does not implement the command (e.g. a proxy without CLIENT).
    #[error("{0}")]
    Unsupported(String),
    /// Anything else the node answered that sessiond cannot use.
    #[error("{0}")]
    Protocol(String),
}

/// One connection to kill: the id and address read from the node's client list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillTarget {
    pub id: u64,
    pub addr: String,
}

/// What `INFO` says about a node (fields a node does not report are `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub redis_version: Option<String>,
    /// `master` or `slave` (INFO replication `role`).
    pub role: Option<String>,
    pub used_memory: Option<u64>,
    pub maxmemory: Option<u64>,
    pub connected_clients: Option<u64>,
}

pub trait RedisNodes: Send + Sync + 'static {
    /// Every client connection of the node (`CLIENT LIST`), in the node's order. Connections
    /// sessiond itself holds to the node are marked `own`.
    fn list_clients(&self, node: &Node) -> DataFuture<Vec<ClientRecord>>;

    /// Kills each target on that node only, matching both its id and its address (so a newer
    /// connection that reused the address is never hit) and never the connection that issues
    /// the kill. Returns, per target in order, whether a connection was killed (`false`: it had
    /// already gone).
    fn kill_clients(&self, node: &Node, targets: Vec<KillTarget>) -> DataFuture<Vec<bool>>;

    /// `INFO` of the node.
    fn info(&self, node: &Node) -> DataFuture<NodeInfo>;
}
