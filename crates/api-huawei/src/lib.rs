#![forbid(unsafe_code)]
//! Huawei Cloud dialect: DCS v2 client-session routes.
