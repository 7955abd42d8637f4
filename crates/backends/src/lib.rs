#![forbid(unsafe_code)]
//! Data plane for database and cache sessions: kills and lists real client sessions on the
//! user's MariaDB/MySQL shards and Redis nodes.

pub mod mariadb;
pub mod redis;
