#![forbid(unsafe_code)]
//! Tencent Cloud API 3.0 dialect: GSE (2019-11-12) and DCDB (2018-04-11). One endpoint
//! (`POST /` or `GET /`) routed by version and action, three transports, two signature kinds.

pub mod auth;
pub mod dcdb;
mod error;
mod gateway;
pub mod gse;
pub mod params;

pub use error::TencentError;
pub use gateway::{Endpoint, RateLimits, TencentApi};
