//! GSE errors in domain terms; each dialect maps them to its own codes.

#[derive(Debug, Clone, thiserror::Error)]
pub enum GseError {
    /// The resource does not exist in the caller's account.
    #[error("{kind} {id} does not exist")]
    NotFound { kind: &'static str, id: String },
    /// The resource exists but its state does not allow the operation.
    #[error("{kind} {id} is {state}; {need}")]
    WrongState {
        kind: &'static str,
        id: String,
        state: String,
        need: &'static str,
    },
    /// The game server session does not accept new player sessions (DENY_ALL).
    #[error("game server session {0} does not accept new player sessions (PlayerSessionCreationPolicy is DENY_ALL)")]
    CreationDenied(String),
    /// Not enough free player slots for the whole request.
    #[error("game server session {id} has {free} free player slot(s), {requested} requested; no player session was created")]
    NotEnoughSlots {
        id: String,
        requested: usize,
        free: u32,
    },
    /// No process can host a new game server session now.
    #[error("{0}")]
    NoCapacity(String),
    /// A player already holds a RESERVED or ACTIVE player session in the session.
    #[error("player {player_id} already has a reserved or active player session in game server session {id}")]
    PlayerAlreadyJoined { player_id: String, id: String },
    /// A needed value is absent.
    #[error("{0}")]
    Missing(String),
    /// A value is out of range or malformed.
    #[error("{0}")]
    InvalidValue(String),
    /// Values that are fine alone but do not fit together.
    #[error("{0}")]
    Conflict(String),
    /// The operation is refused by the resource's protection.
    #[error("{0}")]
    Refused(String),
    /// The resource is used by another and cannot be removed.
    #[error("{0}")]
    InUse(String),
    /// A limit of the account or the node.
    #[error("{0}")]
    LimitExceeded(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sessiond_store::StoreError> for GseError {
    fn from(err: sessiond_store::StoreError) -> Self {
        GseError::Internal(err.to_string())
    }
}
