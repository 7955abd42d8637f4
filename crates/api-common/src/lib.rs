#![forbid(unsafe_code)]
//! What every wire dialect shares: the HTTP server, credentials, rate limiting, request ids,
//! body limits, metrics and graceful shutdown. Nothing dialect-specific lives here.

pub mod credentials;
pub mod metrics;
pub mod rate_limit;
pub mod server;
pub mod timefmt;

pub use credentials::{Credential, Credentials, Secret};
pub use metrics::Metrics;
pub use rate_limit::RateLimiter;
pub use server::{read_body, serve, BodyError, Dialect, HttpResponse, Router};

/// A fresh request id (UUID v4), as every dialect returns one.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
