//! GSE resources. Persisted records derive serde; soft state (processes) does not.

use serde::{Deserialize, Serialize};

use crate::AccountId;

/// An immutable string shared by reference: ids that every index and every player session of a
/// game server session points to are allocated once.
pub type Shared = std::sync::Arc<str>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GameServerSessionStatus {
    Activating,
    Active,
    Terminating,
    Terminated,
    Error,
}

impl GameServerSessionStatus {
    pub const ALL: [GameServerSessionStatus; 5] = [
        Self::Activating,
        Self::Active,
        Self::Terminating,
        Self::Terminated,
        Self::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Activating => "ACTIVATING",
            Self::Active => "ACTIVE",
            Self::Terminating => "TERMINATING",
            Self::Terminated => "TERMINATED",
            Self::Error => "ERROR",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }

    pub fn is_over(self) -> bool {
        matches!(self, Self::Terminated | Self::Error)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PlayerSessionStatus {
    Reserved,
    Active,
    Completed,
    TimedOut,
}

impl PlayerSessionStatus {
    pub const ALL: [PlayerSessionStatus; 4] = [
        Self::Reserved,
        Self::Active,
        Self::Completed,
        Self::TimedOut,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Active => "ACTIVE",
            Self::Completed => "COMPLETED",
            Self::TimedOut => "TIMEDOUT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }

    /// RESERVED and ACTIVE sessions hold a slot.
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Reserved | Self::Active)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProtectionPolicy {
    #[default]
    NoProtection,
    TimeLimitProtection,
    FullProtection,
}

impl ProtectionPolicy {
    pub fn name(self) -> &'static str {
        match self {
            Self::NoProtection => "NoProtection",
            Self::TimeLimitProtection => "TimeLimitProtection",
            Self::FullProtection => "FullProtection",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::NoProtection,
            Self::TimeLimitProtection,
            Self::FullProtection,
        ]
        .into_iter()
        .find(|v| v.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PlayerSessionCreationPolicy {
    #[default]
    AcceptAll,
    DenyAll,
}

impl PlayerSessionCreationPolicy {
    pub fn name(self) -> &'static str {
        match self {
            Self::AcceptAll => "ACCEPT_ALL",
            Self::DenyAll => "DENY_ALL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACCEPT_ALL" => Some(Self::AcceptAll),
            "DENY_ALL" => Some(Self::DenyAll),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameProperty {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Asset {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub name: String,
    pub version: String,
    pub operating_system: String,
    pub image_id: String,
    /// The directory name under an asset root that holds the build.
    pub directory_name: String,
    /// Canonical path of the build directory.
    pub path: String,
    pub size_bytes: u64,
    pub created_ms: i64,
    pub tags: Vec<Tag>,
    /// Declared in the config file (cannot be deleted through the API).
    pub from_config: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerProcess {
    pub launch_path: String,
    pub parameters: String,
    pub concurrent_executions: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConfiguration {
    pub server_processes: Vec<ServerProcess>,
    pub activation_timeout_seconds: u32,
    pub max_concurrent_activations: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundPermission {
    pub from_port: u32,
    pub to_port: u32,
    pub ip_range: String,
    pub protocol: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceCreationLimitPolicy {
    pub new_sessions_per_creator: u32,
    pub policy_period_minutes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FleetStatus {
    New,
    Active,
    Deleting,
    Terminated,
}

impl FleetStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Active => "ACTIVE",
            Self::Deleting => "DELETING",
            Self::Terminated => "TERMINATED",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fleet {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub name: String,
    pub description: Option<String>,
    pub asset_id: String,
    pub fleet_type: String,
    pub instance_type: Option<String>,
    pub protection_policy: ProtectionPolicy,
    pub protection_time_limit_minutes: u32,
    pub resource_creation_limit: Option<ResourceCreationLimitPolicy>,
    pub runtime: Option<RuntimeConfiguration>,
    pub inbound_permissions: Vec<InboundPermission>,
    pub tags: Vec<Tag>,
    pub status: FleetStatus,
    pub created_ms: i64,
    pub terminated_ms: Option<i64>,
    /// This node, as the fleet's one instance.
    pub instance_id: String,
    pub operating_system: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GameServerSession {
    pub id: Shared,
    pub account: AccountId,
    pub fleet_id: Shared,
    pub name: Option<String>,
    pub creator_id: Option<String>,
    pub status: GameServerSessionStatus,
    pub status_reason: Option<String>,
    pub max_players: u32,
    pub creation_policy: PlayerSessionCreationPolicy,
    pub protection: ProtectionPolicy,
    pub ip_address: Shared,
    pub port: u16,
    pub game_properties: Vec<GameProperty>,
    pub data: Option<String>,
    pub matchmaker_data: Option<String>,
    pub created_ms: i64,
    pub terminated_ms: Option<i64>,
    pub instance_type: Option<String>,
    pub current_custom_count: Option<i64>,
    pub max_custom_count: Option<i64>,
    pub idempotency_token: Option<String>,
    /// The process hosting it (soft: meaningful only while that process lives).
    pub pid: Option<u32>,
    /// RESERVED + ACTIVE player sessions; derived from the player sessions on load.
    #[serde(skip)]
    pub current_players: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlayerSession {
    pub id: Shared,
    pub account: AccountId,
    pub player_id: String,
    pub game_server_session_id: Shared,
    pub fleet_id: Shared,
    pub ip_address: Shared,
    pub port: u16,
    pub player_data: Option<String>,
    pub status: PlayerSessionStatus,
    pub created_ms: i64,
    pub terminated_ms: Option<i64>,
}

/// A game server session with its protection policy.
#[derive(Debug, Clone)]
pub struct GameServerSessionDetail {
    pub session: GameServerSession,
    pub protection: ProtectionPolicy,
}

/// A running game server process (soft state of this node).
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    pub fleet_id: String,
    pub account: AccountId,
    pub client_port: Option<u16>,
    pub grpc_port: Option<u16>,
    pub ready: bool,
    pub healthy: bool,
    pub ending: bool,
    pub session: Option<Shared>,
    pub log_paths: Vec<String>,
}

/// The node as a fleet's instance.
#[derive(Debug, Clone)]
pub struct Instance {
    pub fleet_id: String,
    pub instance_id: String,
    pub ip_address: String,
    pub operating_system: String,
    pub instance_type: Option<String>,
    pub created_ms: i64,
}
