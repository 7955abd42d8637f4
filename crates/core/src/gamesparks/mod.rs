//! GameSparks: games, stages, tags, and the players connected to a stage's runtime.
//!
//! Games and stages are durable (kept in the store). Player connections are soft state owned by
//! the node that holds the socket; the service reaches them through [`ConnectionRegistry`],
//! which the runtime crate implements (a later multi-node mode routes the same calls to the
//! node that owns a connection).

mod error;
mod model;
mod registry;
mod service;

pub use error::GameSparksError;
pub use model::*;
pub use registry::{
    ConnectionRegistry, DisconnectOutcome, DisconnectReason, PlayerConnection, RegistryError,
    RegistryFuture, StageRef,
};
pub use service::{
    CreateGame, CreateStage, GameSparksConfig, GameSparksService, Page, TokenKey, UpdateGame,
    UpdateStage, DEFAULT_PAGE, MAX_PAGE,
};
