//! DCDB: sharded MySQL/MariaDB instances, their shards, and kill-session tasks.
//!
//! The inventory (instances, shards, nodes) is declared by the operator and fixed while sessiond
//! runs; only its first-seen times are kept in the store. KillSession creates a durable task
//! and runs it in the background on one node of one shard through the [`ShardSessions`] data
//! plane: list the asked-for threads, refuse protected ones, `KILL CONNECTION` the others, then
//! poll until they are gone. Every step is bounded by time; a task ends Succeeded (every listed
//! session is gone) or Failed (with the reasons), never stays running after a restart.

mod error;
pub mod ids;
mod model;
mod plane;
mod service;
mod task;

pub use error::DcdbError;
pub use model::*;
pub use plane::{
    protection_reason, KillResult, NodeConnection, PlaneFuture, ShardSessions, Thread,
};
pub use service::{
    DcdbConfig, DcdbService, InstanceQuery, InstanceSort, KillRequest, Page, SearchField,
    MAX_KILL_SESSIONS,
};
