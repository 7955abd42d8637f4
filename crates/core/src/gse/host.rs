//! The boundary to the data plane that runs game server processes. The service decides what
//! should run and where sessions go; the host owns OS processes and talks to them. Processes
//! are soft state owned by the node that launched them.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use super::model::GameProperty;

pub type HostFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// What processes a fleet wants on this node.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetProcesses {
    pub fleet_id: String,
    /// The asset directory (canonical); processes run with it as working directory.
    pub asset_dir: PathBuf,
    pub processes: Vec<ServerProcessSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerProcessSpec {
    /// Canonical executable path, already checked to lie inside the asset directory.
    pub executable: PathBuf,
    pub parameters: String,
    pub concurrent_executions: u32,
}

/// What a process is told when a game server session is placed on it.
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub game_server_session_id: String,
    pub fleet_id: String,
    pub name: String,
    pub max_players: u32,
    pub joinable: bool,
    pub game_properties: Vec<GameProperty>,
    pub port: u16,
    pub ip_address: String,
    pub game_server_session_data: String,
    pub matchmaker_data: String,
    pub dns_name: String,
}

pub trait GameServerHost: Send + Sync + 'static {
    /// Runs the processes the fleet asks for, relaunching any that exit, until told otherwise.
    /// Calling it again with a new spec replaces the old one.
    fn run_fleet(&self, spec: FleetProcesses);

    /// Ends every process of the fleet and stops relaunching them.
    fn stop_fleet(&self, fleet_id: &str);

    /// Calls OnStartGameServerSession on the process.
    fn start_game_server_session(&self, pid: u32, session: SessionStart) -> HostFuture;

    /// Calls OnProcessTerminate(termination_time) on the process; if it has not exited when
    /// `grace` is over it is sent SIGTERM, then SIGKILL.
    fn terminate_process(&self, pid: u32, termination_time_unix_s: i64, grace: Duration);

    /// After a restart: true if process `pid` that started at `start_ticks` (from
    /// [`GseService::process_launched`](super::GseService::process_launched)) still runs; the
    /// host then supervises it again (health checks on `grpc_port`, exit detection) and counts
    /// it toward its fleet's processes.
    fn adopt_process(
        &self,
        pid: u32,
        start_ticks: u64,
        fleet_id: &str,
        grpc_port: Option<u16>,
    ) -> bool;
}
