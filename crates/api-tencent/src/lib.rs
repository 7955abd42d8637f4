#![forbid(unsafe_code)]
//! Tencent Cloud API 3.0 dialect: GSE (2019-11-12) today, DCDB (2018-04-11) next.

pub mod auth;
pub mod params;
