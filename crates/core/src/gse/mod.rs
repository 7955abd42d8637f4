//! Game Server Engine: assets (game server builds), fleets of supervised processes, game server
//! sessions placed on those processes, and player sessions with bounded capacity.

mod error;
mod host;
pub mod ids;
mod model;
pub mod search;
mod service;

pub use error::GseError;
pub use host::{FleetProcesses, GameServerHost, HostFuture, ServerProcessSpec, SessionStart};
pub use model::*;
pub use service::{
    AssetQuery, CreateAsset, CreateFleet, CreateGameServerSession, EndTarget, FleetQuery,
    GseConfig, GseService, InstanceQuery, Page, PlayerSessionQuery, ResourceFilter, SearchQuery,
    SessionQuery, UpdateGameServerSession, DEFAULT_PAGE, MAX_PAGE,
};
