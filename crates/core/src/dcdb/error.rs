//! DCDB errors in domain terms; the Tencent dialect maps them to its codes per action.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DcdbError {
    /// No such instance in the caller's account (another account's instance answers the same).
    #[error("instance {0} does not exist")]
    InstanceNotFound(String),
    /// The instance has no shard of that id.
    #[error("instance {instance} has no shard {shard}")]
    ShardNotFound { instance: String, shard: String },
    /// Neither a shard instance id nor a shard serial id was given.
    #[error("{0}")]
    MissingShard(String),
    /// Both shard ids were given and name different shards.
    #[error("{0}")]
    ShardMismatch(String),
    /// The shard has no node of that id.
    #[error("shard {shard} has no node {node}; DescribeDCDBInstanceNodeInfo lists its nodes")]
    NodeNotFound { shard: String, node: String },
    /// The session list is empty, too long or otherwise unusable.
    #[error("{0}")]
    InvalidSessions(String),
    /// A value is out of range or malformed.
    #[error("{0}")]
    InvalidValue(String),
    /// No such task in the caller's account.
    #[error("flow {0} does not exist")]
    FlowNotFound(u64),
    /// The inventory handed to the service is inconsistent (startup only).
    #[error("{0}")]
    Inventory(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sessiond_store::StoreError> for DcdbError {
    fn from(err: sessiond_store::StoreError) -> Self {
        DcdbError::Internal(err.to_string())
    }
}
