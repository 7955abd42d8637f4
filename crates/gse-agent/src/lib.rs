#![forbid(unsafe_code)]
//! sessiond's data plane for GSE: the gRPC agent game server processes talk to, and the
//! supervisor that launches, health-checks and ends those processes.
//!
//! Protocol: Tencent Cloud GSE's game-server gRPC SDK (package `tencentcloud.gse.grpcsdk`).
//! A process finds the agent through the environment variable [`AGENT_ADDR_ENV`]
//! (`SESSIOND_AGENT_ADDR=host:port`), which the supervisor sets for every process it launches;
//! GSE's own samples hard-code `127.0.0.1:5758`.
//!
//! Wiring:
//! ```text
//! let supervisor = Supervisor::new(service.clone(), SupervisorConfig { agent_addr, log_dir, health_interval })?;
//! service.attach_host(Arc::new(supervisor.clone()));
//! tokio::spawn(serve_agent(listener, service.clone(), Some(supervisor), shutdown));
//! service.start().await?;
//! ```

mod agent;
pub mod procfs;
mod supervisor;
pub mod words;

pub use agent::{serve_agent, status_of, Agent};
pub use supervisor::{Supervisor, SupervisorConfig, SupervisorError, AGENT_ADDR_ENV};

/// Generated code for package `tencentcloud.gse.grpcsdk`: messages, clients and servers of
/// both services (`GseGrpcSdkService`, `GameServerGrpcSdkService`).
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("tencentcloud.gse.grpcsdk");
}
