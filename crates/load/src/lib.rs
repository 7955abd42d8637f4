#![forbid(unsafe_code)]
//! The parts of `sessiond-load` that other code reuses: a TC3 request signer and a small
//! signed API client (the integration tests drive sessiond with them), plus the load drivers.

pub mod bare;
pub mod client;
pub mod dcdb;
pub mod dcs;
pub mod drive;
pub mod gamesparks;
pub mod setup;
pub mod sign;
pub mod stats;
