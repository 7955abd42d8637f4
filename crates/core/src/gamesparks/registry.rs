//! The boundary to the player runtime: live WebSocket connections are soft state held by the
//! node that owns the socket. The service asks a [`ConnectionRegistry`] for them; the runtime
//! crate implements it for the local node, and a multi-node mode can implement it by routing
//! each call to the node that owns the player's connections. Every call is asynchronous and
//! fallible for that reason.

use std::future::Future;
use std::pin::Pin;

use crate::AccountId;

pub type RegistryFuture<T> = Pin<Box<dyn Future<Output = Result<T, RegistryError>> + Send>>;

/// A registry that could not answer (a node unreachable, a timeout).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection registry: {0}")]
pub struct RegistryError(pub String);

/// The stage a connection belongs to. The GameKey is part of it: a stage deleted and created
/// again under the same name is another stage, with another key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StageRef {
    pub account: AccountId,
    pub game: String,
    pub stage: String,
    pub game_key: String,
}

/// One live connection of a player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerConnection {
    /// UUID v4.
    pub id: String,
    /// When the connection was authenticated, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// Why connections are closed; the runtime states it in the close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// DisconnectPlayer.
    DisconnectPlayer,
    /// The stage was deleted.
    StageDeleted,
}

/// Which connections were closed (close frame sent) and which could not be closed in time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectOutcome {
    pub successes: Vec<String>,
    pub failures: Vec<String>,
}

pub trait ConnectionRegistry: Send + Sync + 'static {
    /// Live connections of a player on a stage, oldest first.
    fn player_connections(
        &self,
        stage: &StageRef,
        player_id: &str,
    ) -> RegistryFuture<Vec<PlayerConnection>>;

    /// Closes every live connection of a player on a stage, stating `reason`; resolves when
    /// each close frame is written or its time is up.
    fn disconnect_player(
        &self,
        stage: &StageRef,
        player_id: &str,
        reason: DisconnectReason,
    ) -> RegistryFuture<DisconnectOutcome>;

    /// Number of live connections of a stage.
    fn stage_connection_count(&self, stage: &StageRef) -> RegistryFuture<usize>;

    /// The stage is gone: close whatever connection of it is still open.
    fn stage_removed(&self, stage: &StageRef) -> RegistryFuture<()>;
}
