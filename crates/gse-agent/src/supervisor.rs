//! The process supervisor: launches the game server processes fleets ask for, relaunches those
//! that exit, health-checks them over gRPC, places sessions on them and ends them.
//!
//! Locking: the supervisor's own state sits behind one short-lived mutex that is never held
//! across an `.await` and never while calling the service. [`GameServerHost`] methods only
//! touch that state and spawn tasks; the tasks talk to the service and to processes.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use sessiond_core::gse::{FleetProcesses, GameServerHost, GseService, HostFuture, SessionStart};
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};
use tokio::time::{timeout, Instant};
use tonic::transport::{Channel, Endpoint};

use crate::proto::game_server_grpc_sdk_service_client::GameServerGrpcSdkServiceClient;
use crate::proto::{gse_response, GseResponse};
use crate::{procfs, proto, words};

/// The environment variable that tells a launched process where the agent listens
/// (`host:port`).
pub const AGENT_ADDR_ENV: &str = "SESSIOND_AGENT_ADDR";

/// Time allowed to connect to a process's gRPC server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reply timeout of OnStartGameServerSession and OnProcessTerminate.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest health-check reply timeout.
const MAX_HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Consecutive failed health checks that make a process unhealthy.
const UNHEALTHY_AFTER: u32 = 3;
/// Between SIGTERM and SIGKILL.
const KILL_AFTER: Duration = Duration::from_secs(5);
/// Between OnProcessTerminate and SIGTERM when the supervisor itself ends a process (fleet
/// stopped or scaled down).
const STOP_GRACE: Duration = Duration::from_secs(5);
/// A process that exits sooner than this after its start counts as crashing.
const QUICK_DEATH: Duration = Duration::from_secs(10);
/// Longest wait before relaunching a crashing process.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often each fleet is reconciled even without events.
const RECONCILE_EVERY: Duration = Duration::from_secs(2);
/// How often an adopted process (not our child) is checked for exit.
const ADOPTED_POLL: Duration = Duration::from_millis(500);
/// How long a session start waits for the process's gRPC port to become known.
const PORT_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The agent's `host:port`, given to every process in [`AGENT_ADDR_ENV`].
    pub agent_addr: String,
    /// Process output goes to `<log_dir>/<fleet_id>/<pid>.log`.
    pub log_dir: PathBuf,
    /// Time between health checks of a process (GSE: 60 s).
    pub health_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("the supervisor must be created inside a tokio runtime")]
    NoRuntime,
    #[error("cannot create the process log directory {path}: {source}")]
    LogDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs game server processes for sessiond's GSE service. Cheap to clone (a handle).
///
/// Wiring: `let sup = Supervisor::new(service.clone(), config)?;
/// service.attach_host(Arc::new(sup.clone()));` and pass `Some(sup)` to
/// [`serve_agent`](crate::serve_agent) so ProcessReady tells the supervisor the process's
/// gRPC port at once.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    service: Arc<GseService>,
    config: SupervisorConfig,
    runtime: Handle,
    state: Mutex<State>,
    launch_seq: AtomicU64,
}

#[derive(Default)]
struct State {
    fleets: HashMap<String, FleetEntry>,
    procs: HashMap<u32, ProcEntry>,
    next_epoch: u64,
    /// Set by [`Supervisor::stop_all`]: no fleet runs any more.
    stopped: bool,
}

struct FleetEntry {
    spec: FleetProcesses,
    /// Identifies this run of the fleet: a reconciler of an older run stops.
    epoch: u64,
    wake: Arc<Notify>,
    backoff: HashMap<SpecKey, Backoff>,
}

/// Processes launched from the same executable and parameters are interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SpecKey {
    executable: PathBuf,
    parameters: String,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    quick_deaths: u32,
    not_before: Instant,
}

struct ProcEntry {
    fleet_id: String,
    /// Which spec the process counts toward; `None` for an adopted process not yet matched.
    key: Option<SpecKey>,
    /// The executable of an adopted process (`/proc/<pid>/exe`), to match it to a spec.
    exe: Option<PathBuf>,
    adopted: bool,
    start_ticks: u64,
    started: Instant,
    grpc_port: Option<u16>,
    channel: Option<(u16, Channel)>,
    exited: watch::Receiver<bool>,
    health_failures: u32,
    unhealthy: bool,
    checking: bool,
    /// The supervisor is ending it (fleet stopped, scaled down, or terminate_process).
    ending: bool,
}

fn unix_now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Relaunch delay after `quick_deaths` consecutive crashes: immediate for the first, then 1 s
/// doubling up to [`MAX_BACKOFF`].
fn backoff_delay(quick_deaths: u32) -> Duration {
    if quick_deaths <= 1 {
        return Duration::ZERO;
    }
    let exp = (quick_deaths - 2).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// A file-name-safe form of a fleet id.
fn safe_name(id: &str) -> String {
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "_".into()
    } else {
        name
    }
}

fn channel_to(port: u16) -> Result<Channel, String> {
    Ok(Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Checks a reply of the game process (GseResponse variant B).
fn check_reply(
    rpc: &str,
    reply: Result<Result<tonic::Response<GseResponse>, tonic::Status>, tokio::time::error::Elapsed>,
    limit: Duration,
) -> Result<(), String> {
    match reply {
        Err(_) => Err(format!("{rpc} got no reply within {} s", limit.as_secs())),
        Ok(Err(status)) => Err(format!(
            "{rpc} failed: {:?}: {}",
            status.code(),
            status.message()
        )),
        Ok(Ok(resp)) => {
            let resp = resp.into_inner();
            if resp.status == gse_response::Status::Ok as i32 {
                Ok(())
            } else {
                let name = gse_response::Status::try_from(resp.status)
                    .map(|s| s.as_str_name().to_string())
                    .unwrap_or_else(|_| resp.status.to_string());
                Err(format!("{rpc} replied {name}: {}", resp.error_message))
            }
        }
    }
}

impl Supervisor {
    /// Creates the supervisor and starts its health-check loop. Must be called inside a tokio
    /// runtime; the supervisor spawns its tasks on that runtime.
    pub fn new(
        service: Arc<GseService>,
        config: SupervisorConfig,
    ) -> Result<Supervisor, SupervisorError> {
        let runtime = Handle::try_current().map_err(|_| SupervisorError::NoRuntime)?;
        std::fs::create_dir_all(&config.log_dir).map_err(|source| SupervisorError::LogDir {
            path: config.log_dir.clone(),
            source,
        })?;
        let mut config = config;
        config.health_interval = config.health_interval.max(Duration::from_millis(50));
        let inner = Arc::new(Inner {
            service,
            config,
            runtime: runtime.clone(),
            state: Mutex::new(State::default()),
            launch_seq: AtomicU64::new(0),
        });
        runtime.spawn(health_loop(Arc::downgrade(&inner)));
        Ok(Supervisor { inner })
    }

    /// Records the gRPC port a process reported in ProcessReady (called by the agent).
    pub fn process_ready(&self, pid: u32, grpc_port: u16) {
        if let Some(entry) = self.inner.state.lock().procs.get_mut(&pid) {
            entry.grpc_port = Some(grpc_port);
        }
    }

    /// Graceful node shutdown: stops every fleet (nothing is relaunched any more) and ends
    /// every process within about `limit`: OnProcessTerminate at once, SIGTERM to its process
    /// group after half of `limit`, SIGKILL after 80 %. Returns once every process has exited
    /// and the service knows, or when `limit` is over. Call it while the agent still serves,
    /// so processes can end their sessions and call ProcessEnding.
    pub async fn stop_all(&self, limit: Duration) {
        let inner = &self.inner;
        let pids: Vec<u32> = {
            let mut state = inner.state.lock();
            state.stopped = true;
            for (_, fleet) in state.fleets.drain() {
                fleet.wake.notify_one();
            }
            state
                .procs
                .iter_mut()
                .map(|(pid, e)| {
                    e.ending = true;
                    *pid
                })
                .collect()
        };
        let grace = limit / 2;
        let kill_after = limit * 3 / 10;
        let termination = unix_now_s() + grace.as_secs() as i64;
        for pid in &pids {
            tracing::info!(pid, "ending process: sessiond is stopping");
            inner.runtime.spawn(end_process(
                inner.clone(),
                *pid,
                termination,
                grace,
                kill_after,
            ));
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = inner.state.lock().procs.len();
            if left == 0 {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(left, "processes still running after the stop limit");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Pids of the processes the supervisor runs or watches, sorted.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.inner.state.lock().procs.keys().copied().collect();
        pids.sort_unstable();
        pids
    }

    /// Pids of one fleet's processes, sorted.
    pub fn fleet_pids(&self, fleet_id: &str) -> Vec<u32> {
        let state = self.inner.state.lock();
        let mut pids: Vec<u32> = state
            .procs
            .iter()
            .filter(|(_, e)| e.fleet_id == fleet_id)
            .map(|(pid, _)| *pid)
            .collect();
        pids.sort_unstable();
        pids
    }
}

impl GameServerHost for Supervisor {
    fn run_fleet(&self, spec: FleetProcesses) {
        let inner = &self.inner;
        let mut state = inner.state.lock();
        let fleet_id = spec.fleet_id.clone();
        if state.stopped {
            tracing::info!(fleet_id, "not running fleet: the supervisor is stopped");
            return;
        }
        if let Some(fleet) = state.fleets.get_mut(&fleet_id) {
            fleet.spec = spec;
            fleet.wake.notify_one();
            return;
        }
        state.next_epoch += 1;
        let epoch = state.next_epoch;
        let wake = Arc::new(Notify::new());
        state.fleets.insert(
            fleet_id.clone(),
            FleetEntry {
                spec,
                epoch,
                wake: wake.clone(),
                backoff: HashMap::new(),
            },
        );
        drop(state);
        inner
            .runtime
            .spawn(fleet_loop(Arc::downgrade(inner), fleet_id, epoch, wake));
    }

    fn stop_fleet(&self, fleet_id: &str) {
        let inner = &self.inner;
        let pids: Vec<u32> = {
            let mut state = inner.state.lock();
            if let Some(fleet) = state.fleets.remove(fleet_id) {
                fleet.wake.notify_one();
            }
            state
                .procs
                .iter_mut()
                .filter(|(_, e)| e.fleet_id == fleet_id && !e.ending)
                .map(|(pid, e)| {
                    e.ending = true;
                    *pid
                })
                .collect()
        };
        let termination = unix_now_s() + STOP_GRACE.as_secs() as i64;
        for pid in pids {
            tracing::info!(pid, fleet_id, "ending process: fleet stopped");
            inner.runtime.spawn(end_process(
                inner.clone(),
                pid,
                termination,
                STOP_GRACE,
                KILL_AFTER,
            ));
        }
    }

    fn start_game_server_session(&self, pid: u32, session: SessionStart) -> HostFuture {
        let inner = self.inner.clone();
        Box::pin(async move {
            let channel = inner.channel_for(pid, PORT_WAIT).await?;
            let request = proto::StartGameServerSessionRequest {
                game_server_session: Some(proto::GameServerSession {
                    game_server_session_id: session.game_server_session_id,
                    fleet_id: session.fleet_id,
                    name: session.name,
                    max_players: i32::try_from(session.max_players).unwrap_or(i32::MAX),
                    joinable: session.joinable,
                    game_properties: session
                        .game_properties
                        .into_iter()
                        .map(|p| proto::GameProperty {
                            key: p.key,
                            value: p.value,
                        })
                        .collect(),
                    port: i32::from(session.port),
                    ip_address: session.ip_address,
                    game_server_session_data: session.game_server_session_data,
                    matchmaker_data: session.matchmaker_data,
                    dns_name: session.dns_name,
                }),
            };
            let mut client = GameServerGrpcSdkServiceClient::new(channel);
            let reply = timeout(CALL_TIMEOUT, client.on_start_game_server_session(request)).await;
            check_reply("OnStartGameServerSession", reply, CALL_TIMEOUT)
        })
    }

    fn terminate_process(&self, pid: u32, termination_time_unix_s: i64, grace: Duration) {
        let inner = &self.inner;
        let known = match inner.state.lock().procs.get_mut(&pid) {
            Some(entry) => {
                entry.ending = true;
                true
            }
            None => false,
        };
        if !known {
            tracing::warn!(pid, "terminate_process: not a process of this supervisor");
            return;
        }
        inner.runtime.spawn(end_process(
            inner.clone(),
            pid,
            termination_time_unix_s,
            grace,
            KILL_AFTER,
        ));
    }

    fn adopt_process(
        &self,
        pid: u32,
        start_ticks: u64,
        fleet_id: &str,
        grpc_port: Option<u16>,
    ) -> bool {
        let inner = &self.inner;
        match procfs::read_stat(pid) {
            Some(stat) if !stat.exited() && stat.start_ticks == start_ticks => {}
            _ => return false,
        }
        let (tx, rx) = watch::channel(false);
        {
            let mut state = inner.state.lock();
            if let Some(entry) = state.procs.get(&pid) {
                return entry.start_ticks == start_ticks;
            }
            state.procs.insert(
                pid,
                ProcEntry {
                    fleet_id: fleet_id.to_string(),
                    key: None,
                    exe: std::fs::read_link(format!("/proc/{pid}/exe")).ok(),
                    adopted: true,
                    start_ticks,
                    started: Instant::now(),
                    grpc_port,
                    channel: None,
                    exited: rx,
                    health_failures: 0,
                    unhealthy: false,
                    checking: false,
                    ending: false,
                },
            );
            if let Some(fleet) = state.fleets.get(fleet_id) {
                fleet.wake.notify_one();
            }
        }
        tracing::info!(pid, fleet_id, "adopted running game server process");
        inner
            .runtime
            .spawn(watch_adopted(inner.clone(), pid, start_ticks, tx));
        true
    }
}

impl Inner {
    /// A gRPC channel to the process's GameServerGrpcSdkService, waiting up to `wait` for its
    /// port to be known.
    async fn channel_for(&self, pid: u32, wait: Duration) -> Result<Channel, String> {
        let deadline = Instant::now() + wait;
        loop {
            let port = {
                let state = self.state.lock();
                match state.procs.get(&pid) {
                    None => return Err(format!("process {pid} is not running")),
                    Some(entry) => entry.grpc_port,
                }
            };
            // The agent normally tells us the port; fall back to what the service knows.
            let port = port.or_else(|| self.service.process(pid).and_then(|p| p.grpc_port));
            if let Some(port) = port {
                let mut state = self.state.lock();
                let Some(entry) = state.procs.get_mut(&pid) else {
                    return Err(format!("process {pid} is not running"));
                };
                entry.grpc_port = Some(port);
                if let Some((p, channel)) = &entry.channel {
                    if *p == port {
                        return Ok(channel.clone());
                    }
                }
                let channel = channel_to(port)?;
                entry.channel = Some((port, channel.clone()));
                return Ok(channel);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "process {pid} has not reported its gRPC port (ProcessReady)"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` to the process group of `pid` if `pid` still names the same process.
    fn signal_group(&self, pid: u32, signal: Signal) {
        let ticks = match self.state.lock().procs.get(&pid) {
            Some(entry) if !*entry.exited.borrow() => entry.start_ticks,
            _ => return,
        };
        if !procfs::is_same_running(pid, ticks) {
            return;
        }
        let Ok(raw) = i32::try_from(pid) else { return };
        match killpg(Pid::from_raw(raw), signal) {
            Ok(()) => tracing::info!(pid, ?signal, "signalled process group"),
            Err(err) => {
                tracing::warn!(pid, ?signal, error = %err, "could not signal process group")
            }
        }
    }

    fn exit_watch(&self, pid: u32) -> Option<watch::Receiver<bool>> {
        self.state.lock().procs.get(&pid).map(|e| e.exited.clone())
    }

    /// Launches one process of `key` for the fleet; returns its pid.
    async fn launch(
        self: &Arc<Self>,
        fleet_id: &str,
        epoch: u64,
        asset_dir: &Path,
        key: &SpecKey,
    ) -> Result<u32, String> {
        let (mut child, pid, log_path) = self.spawn_child(fleet_id, asset_dir, key)?;
        let start_ticks = procfs::start_ticks(pid).unwrap_or(0);
        let (tx, rx) = watch::channel(false);
        let stale = {
            let mut state = self.state.lock();
            let stale = state.fleets.get(fleet_id).is_none_or(|f| f.epoch != epoch);
            state.procs.insert(
                pid,
                ProcEntry {
                    fleet_id: fleet_id.to_string(),
                    key: Some(key.clone()),
                    exe: None,
                    adopted: false,
                    start_ticks,
                    started: Instant::now(),
                    grpc_port: None,
                    channel: None,
                    exited: rx,
                    health_failures: 0,
                    unhealthy: false,
                    checking: false,
                    ending: stale,
                },
            );
            stale
        };
        tracing::info!(pid, fleet_id, executable = %key.executable.display(), log = %log_path.display(), "launched game server process");
        self.service
            .process_launched(pid, start_ticks, fleet_id)
            .await;
        let inner = self.clone();
        self.runtime.spawn(async move {
            let status = child.wait().await;
            let _ = tx.send(true);
            match status {
                Ok(status) => tracing::info!(pid, %status, "game server process exited"),
                Err(err) => {
                    tracing::warn!(pid, error = %err, "waiting for game server process failed")
                }
            }
            inner.on_exit(pid).await;
        });
        if stale {
            self.runtime.spawn(end_process(
                self.clone(),
                pid,
                unix_now_s(),
                Duration::ZERO,
                KILL_AFTER,
            ));
        }
        Ok(pid)
    }

    fn spawn_child(
        &self,
        fleet_id: &str,
        asset_dir: &Path,
        key: &SpecKey,
    ) -> Result<(tokio::process::Child, u32, PathBuf), String> {
        let dir = asset_dir.canonicalize().map_err(|e| {
            format!(
                "asset directory {} is not accessible: {e}",
                asset_dir.display()
            )
        })?;
        let exe = key.executable.canonicalize().map_err(|e| {
            format!(
                "executable {} is not accessible: {e}",
                key.executable.display()
            )
        })?;
        if !exe.starts_with(&dir) || exe == dir {
            return Err(format!(
                "refusing to launch {}: it is not inside the asset directory {}",
                exe.display(),
                dir.display()
            ));
        }
        if !exe.is_file() {
            return Err(format!("{} is not a file", exe.display()));
        }
        let args = words::split_words(&key.parameters)
            .map_err(|e| format!("cannot split Parameters {:?}: {e}", key.parameters))?;

        let log_dir = self.config.log_dir.join(safe_name(fleet_id));
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| format!("cannot create log directory {}: {e}", log_dir.display()))?;
        let seq = self.launch_seq.fetch_add(1, Ordering::Relaxed);
        let temp_log = log_dir.join(format!("launch-{}-{seq}.log", std::process::id()));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&temp_log)
            .map_err(|e| format!("cannot open log file {}: {e}", temp_log.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot open log file {}: {e}", temp_log.display()))?;

        let mut command = tokio::process::Command::new(&exe);
        command
            .args(&args)
            .current_dir(&dir)
            .env(AGENT_ADDR_ENV, &self.config.agent_addr)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0)
            .kill_on_drop(false);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                let _ = std::fs::remove_file(&temp_log);
                return Err(format!("cannot start {}: {err}", exe.display()));
            }
        };
        let Some(pid) = child.id() else {
            return Err(format!("{} exited at once", exe.display()));
        };
        let final_log = log_dir.join(format!("{pid}.log"));
        // If an earlier process had the same pid its log stays, and this one keeps the
        // launch name.
        let log_path = if !final_log.exists() && std::fs::rename(&temp_log, &final_log).is_ok() {
            final_log
        } else {
            temp_log
        };
        Ok((child, pid, log_path))
    }

    /// Bookkeeping once a process has exited: relaunch backoff, the service, the reconciler.
    async fn on_exit(self: &Arc<Self>, pid: u32) {
        // Ended on purpose (ProcessEnding or terminated) rather than crashed?
        let service_ending = self.service.process(pid).is_some_and(|p| p.ending);
        let wake = {
            let mut guard = self.state.lock();
            let state = &mut *guard;
            let Some(entry) = state.procs.get(&pid) else {
                return;
            };
            let fleet = state.fleets.get_mut(&entry.fleet_id);
            match (fleet, &entry.key) {
                (Some(fleet), Some(key)) => {
                    if !entry.ending && !service_ending && !entry.adopted {
                        let backoff = fleet.backoff.entry(key.clone()).or_insert(Backoff {
                            quick_deaths: 0,
                            not_before: Instant::now(),
                        });
                        if entry.started.elapsed() < QUICK_DEATH {
                            backoff.quick_deaths += 1;
                        } else {
                            backoff.quick_deaths = 0;
                        }
                        let delay = backoff_delay(backoff.quick_deaths);
                        backoff.not_before = Instant::now() + delay;
                        if !delay.is_zero() {
                            tracing::warn!(pid, fleet_id = %entry.fleet_id, crashes = backoff.quick_deaths, delay_s = delay.as_secs(), "game server process keeps exiting soon after start; relaunch delayed");
                        }
                    }
                    Some(fleet.wake.clone())
                }
                (Some(fleet), None) => Some(fleet.wake.clone()),
                (None, _) => None,
            }
        };
        self.service.process_exited(pid).await;
        // Forgotten only now, so that it counts toward its fleet until the service knows.
        self.state.lock().procs.remove(&pid);
        if let Some(wake) = wake {
            wake.notify_one();
        }
    }

    /// Records a failed launch for the backoff.
    fn launch_failed(&self, fleet_id: &str, key: &SpecKey) {
        let mut state = self.state.lock();
        if let Some(fleet) = state.fleets.get_mut(fleet_id) {
            let backoff = fleet.backoff.entry(key.clone()).or_insert(Backoff {
                quick_deaths: 0,
                not_before: Instant::now(),
            });
            backoff.quick_deaths += 1;
            // A launch that fails outright is never retried at once.
            backoff.not_before =
                Instant::now() + backoff_delay(backoff.quick_deaths).max(Duration::from_secs(1));
        }
    }
}

/// What one reconciliation pass decided.
struct Plan {
    asset_dir: PathBuf,
    launches: Vec<(SpecKey, u32)>,
    excess: Vec<u32>,
    next: Duration,
}

fn plan(state: &mut State, fleet_id: &str, epoch: u64) -> Option<Plan> {
    let now = Instant::now();
    let fleet = state.fleets.get(fleet_id).filter(|f| f.epoch == epoch)?;
    let mut desired: Vec<(SpecKey, u32)> = Vec::new();
    for p in &fleet.spec.processes {
        let key = SpecKey {
            executable: p.executable.clone(),
            parameters: p.parameters.clone(),
        };
        match desired.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += p.concurrent_executions,
            None => desired.push((key, p.concurrent_executions)),
        }
    }
    let asset_dir = fleet.spec.asset_dir.clone();
    let backoff = fleet.backoff.clone();

    // Live processes per key (processes the supervisor is ending still count until they exit).
    let mut live: HashMap<SpecKey, Vec<(Instant, u32, bool)>> = HashMap::new();
    let mut unassigned: Vec<(u32, Option<PathBuf>)> = Vec::new();
    for (pid, e) in state.procs.iter().filter(|(_, e)| e.fleet_id == fleet_id) {
        match &e.key {
            Some(k) => live
                .entry(k.clone())
                .or_default()
                .push((e.started, *pid, e.ending)),
            None => unassigned.push((*pid, e.exe.clone())),
        }
    }
    // Match adopted processes to specs with room: same executable first, then any.
    unassigned.sort_by_key(|(pid, _)| *pid);
    let mut leftover = Vec::new();
    for (pid, exe) in unassigned {
        let has_room = |k: &SpecKey, n: u32| live.get(k).map_or(0, |v| v.len()) < n as usize;
        let chosen = desired
            .iter()
            .find(|(k, n)| has_room(k, *n) && exe.as_ref() == Some(&k.executable))
            .or_else(|| desired.iter().find(|(k, n)| has_room(k, *n)))
            .map(|(k, _)| k.clone());
        match chosen {
            Some(k) => {
                if let Some(e) = state.procs.get_mut(&pid) {
                    e.key = Some(k.clone());
                    live.entry(k).or_default().push((e.started, pid, e.ending));
                }
            }
            None => leftover.push(pid),
        }
    }

    let mut launches = Vec::new();
    let mut next = RECONCILE_EVERY;
    for (key, n) in &desired {
        let have = live.get(key).map_or(0, |v| v.len()) as u32;
        if have >= *n {
            continue;
        }
        match backoff.get(key) {
            Some(b) if b.not_before > now => next = next.min(b.not_before - now),
            _ => launches.push((key.clone(), n - have)),
        }
    }

    // Processes beyond what the spec wants: the newest go first.
    let mut excess = leftover;
    for (key, procs) in live.iter_mut() {
        let want = desired
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, n)| *n) as usize;
        if procs.len() > want {
            procs.sort();
            let surplus = procs.len() - want;
            excess.extend(
                procs
                    .iter()
                    .rev()
                    .filter(|(_, _, ending)| !ending)
                    .take(surplus)
                    .map(|(_, pid, _)| *pid),
            );
        }
    }
    Some(Plan {
        asset_dir,
        launches,
        excess,
        next,
    })
}

/// Keeps one fleet's processes running until the fleet is stopped or replaced.
async fn fleet_loop(weak: Weak<Inner>, fleet_id: String, epoch: u64, wake: Arc<Notify>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let Some(next) = reconcile(&inner, &fleet_id, epoch).await else {
            return;
        };
        drop(inner);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(next) => {}
        }
    }
}

/// One reconciliation pass; `None` once the fleet is gone.
async fn reconcile(inner: &Arc<Inner>, fleet_id: &str, epoch: u64) -> Option<Duration> {
    let plan = plan(&mut inner.state.lock(), fleet_id, epoch)?;
    for (key, count) in plan.launches {
        for _ in 0..count {
            if let Err(err) = inner.launch(fleet_id, epoch, &plan.asset_dir, &key).await {
                tracing::error!(fleet_id, executable = %key.executable.display(), error = %err, "could not launch game server process");
                inner.launch_failed(fleet_id, &key);
                break;
            }
        }
    }
    for pid in plan.excess {
        // Only idle processes are ended; one hosting a session is ended once that is over.
        let idle = inner
            .service
            .process(pid)
            .is_none_or(|p| p.session.is_none());
        if !idle {
            continue;
        }
        let claimed = match inner.state.lock().procs.get_mut(&pid) {
            Some(e) if !e.ending => {
                e.ending = true;
                true
            }
            _ => false,
        };
        if claimed {
            tracing::info!(pid, fleet_id, "ending process the fleet no longer needs");
            inner.runtime.spawn(end_process(
                inner.clone(),
                pid,
                unix_now_s() + STOP_GRACE.as_secs() as i64,
                STOP_GRACE,
                KILL_AFTER,
            ));
        }
    }
    Some(plan.next)
}

/// Waits until the process has exited or `limit` passed; true if it exited.
async fn wait_exit(rx: &mut watch::Receiver<bool>, limit: Duration) -> bool {
    if *rx.borrow() {
        return true;
    }
    // A closed channel means the watcher is gone, which only happens after the exit.
    timeout(limit, rx.wait_for(|exited| *exited)).await.is_ok()
}

/// OnProcessTerminate, then SIGTERM to the process group once `grace` is over, then SIGKILL.
async fn end_process(
    inner: Arc<Inner>,
    pid: u32,
    termination_time_unix_s: i64,
    grace: Duration,
    kill_after: Duration,
) {
    let Some(mut exited) = inner.exit_watch(pid) else {
        return;
    };
    let deadline = Instant::now() + grace;
    if !grace.is_zero() {
        match inner.channel_for(pid, Duration::ZERO).await {
            Ok(channel) => {
                let mut client = GameServerGrpcSdkServiceClient::new(channel);
                let request = proto::ProcessTerminateRequest {
                    termination_time: termination_time_unix_s,
                };
                let reply = timeout(
                    CALL_TIMEOUT.min(grace),
                    client.on_process_terminate(request),
                )
                .await;
                if let Err(err) = check_reply("OnProcessTerminate", reply, CALL_TIMEOUT.min(grace))
                {
                    tracing::warn!(pid, error = %err, "OnProcessTerminate failed");
                }
            }
            Err(err) => tracing::info!(pid, reason = %err, "OnProcessTerminate not sent"),
        }
        if wait_exit(
            &mut exited,
            deadline.saturating_duration_since(Instant::now()),
        )
        .await
        {
            return;
        }
    }
    inner.signal_group(pid, Signal::SIGTERM);
    if wait_exit(&mut exited, kill_after).await {
        return;
    }
    inner.signal_group(pid, Signal::SIGKILL);
}

/// Watches a process that is not our child for its exit.
async fn watch_adopted(inner: Arc<Inner>, pid: u32, start_ticks: u64, tx: watch::Sender<bool>) {
    loop {
        tokio::time::sleep(ADOPTED_POLL).await;
        if !procfs::is_same_running(pid, start_ticks) {
            break;
        }
        if !inner.state.lock().procs.contains_key(&pid) {
            return;
        }
    }
    let _ = tx.send(true);
    tracing::info!(pid, "adopted game server process exited");
    inner.on_exit(pid).await;
}

/// Health-checks every ready process each interval.
async fn health_loop(weak: Weak<Inner>) {
    let interval = match weak.upgrade() {
        Some(inner) => inner.config.health_interval,
        None => return,
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        let pids: Vec<u32> = {
            let mut state = inner.state.lock();
            state
                .procs
                .iter_mut()
                .filter(|(_, e)| !e.checking && !*e.exited.borrow())
                .map(|(pid, e)| {
                    e.checking = true;
                    *pid
                })
                .collect()
        };
        for pid in pids {
            inner.runtime.spawn(health_check(inner.clone(), pid));
        }
    }
}

async fn health_check(inner: Arc<Inner>, pid: u32) {
    let limit = inner.config.health_interval.min(MAX_HEALTH_TIMEOUT);
    let known_port = inner.state.lock().procs.get(&pid).and_then(|e| e.grpc_port);
    // A process that has not called ProcessReady yet is not checked.
    let ready_port = match known_port {
        Some(port) => Some(port),
        None => inner
            .service
            .process(pid)
            .filter(|p| p.ready)
            .and_then(|p| p.grpc_port),
    };
    let outcome = match ready_port {
        None => None,
        Some(_) => Some(match inner.channel_for(pid, Duration::ZERO).await {
            Err(err) => Err(err),
            Ok(channel) => {
                let mut client = GameServerGrpcSdkServiceClient::new(channel);
                match timeout(limit, client.on_health_check(proto::HealthCheckRequest {})).await {
                    Err(_) => Err(format!("no reply within {} ms", limit.as_millis())),
                    Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
                    Ok(Ok(resp)) if resp.get_ref().health_status => Ok(()),
                    Ok(Ok(_)) => Err("the process reported itself unhealthy".into()),
                }
            }
        }),
    };
    let report = {
        let mut state = inner.state.lock();
        let Some(entry) = state.procs.get_mut(&pid) else {
            return;
        };
        entry.checking = false;
        match outcome {
            None => None,
            Some(Ok(())) => {
                entry.health_failures = 0;
                if entry.unhealthy {
                    entry.unhealthy = false;
                    Some(true)
                } else {
                    None
                }
            }
            Some(Err(err)) => {
                entry.health_failures = entry.health_failures.saturating_add(1);
                tracing::warn!(pid, failures = entry.health_failures, error = %err, "health check failed");
                if entry.health_failures >= UNHEALTHY_AFTER && !entry.unhealthy {
                    entry.unhealthy = true;
                    Some(false)
                } else {
                    None
                }
            }
        }
    };
    if let Some(healthy) = report {
        if healthy {
            tracing::info!(pid, "game server process is healthy again");
        } else {
            tracing::warn!(
                pid,
                "game server process is unhealthy ({UNHEALTHY_AFTER} failed health checks)"
            );
        }
        inner.service.process_health(pid, healthy).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_then_doubles_to_30s() {
        let delays: Vec<u64> = (0..9).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 0, 1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff_delay(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn fleet_ids_become_safe_file_names() {
        assert_eq!(
            safe_name("fleet-0123abcd-4567ef89"),
            "fleet-0123abcd-4567ef89"
        );
        assert_eq!(safe_name("../etc"), "___etc");
        assert_eq!(safe_name(""), "_");
    }
}
