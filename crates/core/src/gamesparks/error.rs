//! GameSparks errors in domain terms; the AWS dialect maps them to its exception shapes.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GameSparksError {
    /// The resource does not exist in the caller's account (or region).
    #[error("{kind} {name} does not exist")]
    NotFound { kind: &'static str, name: String },
    /// A resource with this name already exists.
    #[error("{kind} {name} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// The resource is in use (stages of a game, live player connections of a stage).
    #[error("{0}")]
    InUse(String),
    /// A limit of the account (games per account, stages per game, tags per resource).
    #[error("{0}")]
    LimitExceeded(String),
    /// A value the wire layer let through but the domain refuses (tag count after a merge, a
    /// page token that this server did not issue).
    #[error("{0}")]
    InvalidValue(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sessiond_store::StoreError> for GameSparksError {
    fn from(err: sessiond_store::StoreError) -> Self {
        GameSparksError::Internal(err.to_string())
    }
}
