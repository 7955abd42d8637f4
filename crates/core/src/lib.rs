#![forbid(unsafe_code)]
//! sessiond's domain: resources, ids, state machines and invariants of each service.
//! No HTTP, no SQL, no wire names: dialect crates translate their wire to these types.

pub mod account;
pub mod clock;
pub mod dcdb;
pub mod dcs;
mod durable;
pub mod gamesparks;
pub mod gse;

pub use account::{AccountId, Caller};
pub use clock::{Clock, SystemClock};
