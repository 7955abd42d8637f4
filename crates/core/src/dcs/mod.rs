//! DCS: Redis instances declared by the operator, their nodes, the client connections of each
//! node (soft state owned by the Redis server, reached through [`RedisNodes`]), and the jobs
//! that list or kill them (durable: they survive a restart).

mod data;
mod error;
mod model;
mod service;

pub use data::{DataError, DataFuture, KillTarget, NodeInfo, RedisNodes};
pub use error::DcsError;
pub use model::*;
pub use service::{
    ClientPage, ClientQuery, DcsConfig, DcsService, InstanceStatus, KillReport, NodeStatus,
    MAX_KILL_ADDRS, MAX_PAGE_LIMIT,
};
