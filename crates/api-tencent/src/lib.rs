#![forbid(unsafe_code)]
//! Tencent Cloud API 3.0 dialect: GSE (2019-11-12) today, DCDB (2018-04-11) next. One endpoint
//! (`POST /` or `GET /`) routed by version and action, three transports, two signature kinds.

pub mod auth;
mod error;
mod gateway;
pub mod gse;
pub mod params;

pub use error::TencentError;
pub use gateway::{Endpoint, RateLimits, TencentApi};
