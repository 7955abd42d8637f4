//! DCS errors in domain terms; the dialect maps them to its codes.

use super::data::DataError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DcsError {
    /// No such instance in the caller's project.
    #[error("instance {0} does not exist in this project")]
    InstanceNotFound(String),
    /// The instance exists but has no such node.
    #[error("node {node} is not a node of instance {instance}")]
    NodeNotFound { instance: String, node: String },
    /// No such job in the caller's project.
    #[error("job {0} does not exist in this project")]
    JobNotFound(String),
    /// A parameter is missing, malformed or out of range; `field` names it.
    #[error("{field}: {reason}")]
    InvalidValue { field: String, reason: String },
    /// A listed address is one of sessiond's own connections to the node.
    #[error("{addr} is a connection of sessiond itself to node {node}; it is never killed")]
    OwnConnection { node: String, addr: String },
    /// The node could not do it.
    #[error("node {node} ({address}): {error}")]
    Node {
        node: String,
        address: String,
        error: DataError,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl DcsError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DcsError::InvalidValue {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<sessiond_store::StoreError> for DcsError {
    fn from(err: sessiond_store::StoreError) -> Self {
        DcsError::Internal(err.to_string())
    }
}
