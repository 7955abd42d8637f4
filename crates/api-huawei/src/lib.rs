#![forbid(unsafe_code)]
//! Huawei Cloud dialect: DCS v2 client-session routes under `/v2/`, signed with
//! SDK-HMAC-SHA256, errors as `{error_code, error_msg}` with the documented HTTP status, and
//! `X-Request-Id` on every response.

pub mod auth;
mod dcs;
pub mod endpoint;
mod error;
mod gateway;

pub use dcs::Reply;
pub use endpoint::{Endpoint, Operation};
pub use error::HuaweiError;
pub use gateway::{HuaweiApi, RateLimits};
