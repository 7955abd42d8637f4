//! GameSparks 2021-08-17 over rest-json.

mod api;
pub mod generated;
pub mod model_types;
pub mod routes;
pub mod shapes;
pub mod validate;

pub use api::{http_date, is_implemented, GameSparksApi, RateLimits};
pub use generated::Operation;
