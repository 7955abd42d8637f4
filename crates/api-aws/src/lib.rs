#![forbid(unsafe_code)]
//! AWS rest-json dialect: GameSparks 2021-08-17. SigV4 verified exactly (raw path encoded again,
//! body hashed here, scope and ±15 min checked, constant-time compare), a typed endpoint parsed
//! from method and path before authentication, shapes, routes and validation generated from
//! botocore's model, AWS JSON errors with `x-amzn-ErrorType`, `x-amzn-RequestId` and `Date`.

pub mod error;
pub mod gamesparks;
pub mod sigv4;

pub use error::AwsError;
pub use gamesparks::{GameSparksApi, Operation, RateLimits};
