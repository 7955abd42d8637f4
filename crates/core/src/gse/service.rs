//! The GSE service: every cloud-API operation and every agent event, applied to an in-memory
//! working set under one lock and persisted as one store batch per operation.
//!
//! Invariants kept under the lock: a game server session never holds more RESERVED + ACTIVE
//! player sessions than its maximum; a player holds at most one such session per game server
//! session; a process hosts at most one live game server session. A change is applied to
//! memory and queued to the store while the lock is held (so the store sees changes in the
//! order memory did), and acknowledged only once the store says it is durable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sessiond_store::{Store, Write};

use super::error::GseError;
use super::host::{FleetProcesses, GameServerHost, ServerProcessSpec, SessionStart};
use super::ids;
use super::model::*;
use super::search::{Filter, Sort};
use crate::{AccountId, Caller, Clock};

const ASSETS: &str = "gse.assets";
const FLEETS: &str = "gse.fleets";
const SESSIONS: &str = "gse.sessions";
const PLAYER_SESSIONS: &str = "gse.player_sessions";
const PROCESSES: &str = "gse.processes";

/// Page size when the caller gives none, and the largest page served.
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 100;

#[derive(Debug, Clone)]
pub struct GseConfig {
    /// The address players use to reach this node's game servers.
    pub public_ip: String,
    /// Canonical directories under which game server builds may live.
    pub asset_roots: Vec<PathBuf>,
    /// RESERVED player sessions not accepted within this time become TIMEDOUT.
    pub reservation_timeout: Duration,
    /// Time a process gets between OnProcessTerminate and SIGTERM (EndGameServerSessionAndProcess).
    pub end_grace: Duration,
    /// How often timers (reservations, activations, retention) are checked.
    pub timer_tick: Duration,
    /// Ended game server sessions (TERMINATED, ERROR) and their player sessions are deleted
    /// this long after they ended ([GameLift]: 30 days).
    pub retention: Duration,
}

impl Default for GseConfig {
    fn default() -> Self {
        GseConfig {
            public_ip: "127.0.0.1".into(),
            asset_roots: Vec::new(),
            reservation_timeout: Duration::from_secs(60),
            end_grace: Duration::from_secs(30),
            timer_tick: Duration::from_millis(250),
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
    pub total: usize,
}

#[derive(Debug, Clone, Default)]
pub struct CreateAsset {
    /// Names the build directory under an asset root (a trailing `.zip` is ignored).
    pub bucket_key: Option<String>,
    pub name: String,
    pub version: String,
    pub operating_system: String,
    pub image_id: String,
    pub tags: Vec<Tag>,
}

/// Which assets or fleets a listing returns: one of `ids` and one of `names` (empty: any),
/// and every tag condition.
#[derive(Debug, Clone, Default)]
pub struct ResourceFilter {
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub tag_keys: Vec<String>,
    pub tag_key_values: Vec<(String, String)>,
}

impl ResourceFilter {
    fn matches(&self, id: &str, name: &str, tags: &[Tag]) -> bool {
        (self.ids.is_empty() || self.ids.iter().any(|i| i == id))
            && (self.names.is_empty() || self.names.iter().any(|n| n == name))
            && self
                .tag_keys
                .iter()
                .all(|k| tags.iter().any(|t| &t.key == k))
            && self
                .tag_key_values
                .iter()
                .all(|(k, v)| tags.iter().any(|t| &t.key == k && &t.value == v))
    }
}

#[derive(Debug, Clone, Default)]
pub struct AssetQuery {
    pub filter: ResourceFilter,
    pub offset: u32,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateFleet {
    pub asset_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub fleet_type: Option<String>,
    pub instance_type: Option<String>,
    pub inbound_permissions: Vec<InboundPermission>,
    pub protection_policy: Option<ProtectionPolicy>,
    pub protection_time_limit_minutes: Option<u32>,
    pub resource_creation_limit: Option<ResourceCreationLimitPolicy>,
    pub runtime: Option<RuntimeConfiguration>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default)]
pub struct FleetQuery {
    pub filter: ResourceFilter,
    pub asset_id: Option<String>,
    pub offset: u32,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    pub fleet_id: Option<String>,
    pub instance_id: Option<String>,
    pub ip_address: Option<String>,
    pub offset: u32,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateGameServerSession {
    pub fleet_id: Option<String>,
    pub alias_id: Option<String>,
    pub max_players: u32,
    pub creator_id: Option<String>,
    pub game_properties: Vec<GameProperty>,
    pub data: Option<String>,
    pub custom_id: Option<String>,
    pub idempotency_token: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub fleet_id: Option<String>,
    pub alias_id: Option<String>,
    pub session_id: Option<String>,
    pub status: Option<GameServerSessionStatus>,
    pub limit: Option<u32>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub fleet_id: Option<String>,
    pub alias_id: Option<String>,
    pub filter: Option<Filter>,
    pub sort: Option<Sort>,
    pub limit: Option<u32>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateGameServerSession {
    pub session_id: String,
    pub max_players: Option<u32>,
    pub name: Option<String>,
    pub creation_policy: Option<PlayerSessionCreationPolicy>,
    pub protection: Option<ProtectionPolicy>,
}

#[derive(Debug, Clone, Default)]
pub struct PlayerSessionQuery {
    pub game_server_session_id: Option<String>,
    pub player_id: Option<String>,
    pub player_session_id: Option<String>,
    pub status: Option<PlayerSessionStatus>,
    pub limit: Option<u32>,
    pub next_token: Option<String>,
}

/// What EndGameServerSessionAndProcess names.
#[derive(Debug, Clone)]
pub enum EndTarget {
    Session(String),
    Address {
        ip: String,
        port: u16,
    },
    Both {
        session: String,
        ip: String,
        port: u16,
    },
}

/// Players of one game server session, for the capacity and uniqueness checks.
/// The large indexes are B-trees: they grow without the long pauses of rehashing a huge map
/// while the state lock is held.
#[derive(Debug, Default)]
struct SessionPlayers {
    /// player id -> its RESERVED or ACTIVE player session.
    holding: BTreeMap<String, Shared>,
    /// Every player session of the session, oldest first.
    all: Vec<Shared>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ProcessRecord {
    pid: u32,
    start_ticks: u64,
    fleet_id: String,
    account: AccountId,
    client_port: Option<u16>,
    grpc_port: Option<u16>,
    ready: bool,
    log_paths: Vec<String>,
}

#[derive(Default)]
struct State {
    assets: HashMap<String, Asset>,
    fleets: HashMap<String, Fleet>,
    sessions: HashMap<Shared, GameServerSession>,
    /// (created_ms, id): the listing order of game server sessions.
    session_order: BTreeSet<(i64, Shared)>,
    player_sessions: BTreeMap<Shared, PlayerSession>,
    players_of: HashMap<Shared, SessionPlayers>,
    /// (account, player id) -> player sessions, oldest first.
    by_player: BTreeMap<(AccountId, String), Vec<Shared>>,
    processes: HashMap<u32, Process>,
    process_records: HashMap<u32, ProcessRecord>,
    /// (created_ms, player session id) of RESERVED player sessions; each expires at
    /// created_ms + the reservation timeout.
    reservations: BTreeSet<(i64, Shared)>,
    /// (deadline_ms, game server session id) of ACTIVATING sessions.
    activations: BTreeSet<(i64, Shared)>,
    /// (ended_ms, game server session id) of ended sessions, for the retention window.
    ended: BTreeSet<(i64, Shared)>,
}

fn encode<T: Serialize>(table: &'static str, key: &str, value: &T) -> Write {
    // Serialising plain structs to JSON cannot fail.
    Write::put(table, key, serde_json::to_vec(value).unwrap_or_default())
}

fn not_found(kind: &'static str, id: &str) -> GseError {
    GseError::NotFound {
        kind,
        id: id.to_string(),
    }
}

fn page_bounds(offset: usize, limit: Option<u32>, len: usize) -> (usize, usize) {
    let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
    let start = offset.min(len);
    (start, (start + limit).min(len))
}

/// An Offset/Limit page of `items` (already in listing order).
fn offset_page<T: Clone>(items: Vec<T>, offset: u32, limit: Option<u32>) -> Page<T> {
    let total = items.len();
    let (start, end) = page_bounds(offset as usize, limit, total);
    Page {
        items: items[start..end].to_vec(),
        next_token: None,
        total,
    }
}

fn parse_token(token: &Option<String>) -> Result<usize, GseError> {
    match token.as_deref() {
        None | Some("") => Ok(0),
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| GseError::InvalidValue(format!("NextToken {t:?} was not issued by this server; pass the NextToken of the previous page"))),
    }
}

fn paginate<T: Clone>(
    items: Vec<T>,
    token: &Option<String>,
    limit: Option<u32>,
) -> Result<Page<T>, GseError> {
    let offset = parse_token(token)?;
    let total = items.len();
    let (start, end) = page_bounds(offset, limit, total);
    Ok(Page {
        items: items[start..end].to_vec(),
        next_token: (end < total).then(|| end.to_string()),
        total,
    })
}

impl State {
    fn index_session(&mut self, session: GameServerSession) {
        self.session_order
            .insert((session.created_ms, session.id.clone()));
        self.players_of.entry(session.id.clone()).or_default();
        self.sessions.insert(session.id.clone(), session);
    }

    fn index_player_session(&mut self, ps: PlayerSession) {
        let players = self
            .players_of
            .entry(ps.game_server_session_id.clone())
            .or_default();
        players.all.push(ps.id.clone());
        if ps.status.holds_slot() {
            players.holding.insert(ps.player_id.clone(), ps.id.clone());
            if let Some(session) = self.sessions.get_mut(&ps.game_server_session_id) {
                session.current_players += 1;
            }
        }
        self.by_player
            .entry((ps.account.clone(), ps.player_id.clone()))
            .or_default()
            .push(ps.id.clone());
        self.player_sessions.insert(ps.id.clone(), ps);
    }

    fn session_of(&self, caller: &AccountId, id: &str) -> Result<&GameServerSession, GseError> {
        match self.sessions.get(id) {
            Some(s) if &s.account == caller => Ok(s),
            _ => Err(not_found("game server session", id)),
        }
    }

    fn fleet_of(&self, caller: &AccountId, id: &str) -> Result<&Fleet, GseError> {
        match self.fleets.get(id) {
            Some(f) if &f.account == caller => Ok(f),
            _ => Err(not_found("fleet", id)),
        }
    }

    /// Ends a player session that holds a slot; returns its write.
    fn end_player_session(
        &mut self,
        id: &str,
        status: PlayerSessionStatus,
        now: i64,
    ) -> Option<Write> {
        let ps = self.player_sessions.get_mut(id)?;
        if !ps.status.holds_slot() {
            return None;
        }
        if ps.status == PlayerSessionStatus::Reserved {
            self.reservations.remove(&(ps.created_ms, ps.id.clone()));
        }
        ps.status = status;
        ps.terminated_ms = Some(now);
        if let Some(players) = self.players_of.get_mut(&ps.game_server_session_id) {
            if players.holding.get(&ps.player_id) == Some(&ps.id) {
                players.holding.remove(&ps.player_id);
            }
        }
        if let Some(session) = self.sessions.get_mut(&ps.game_server_session_id) {
            session.current_players = session.current_players.saturating_sub(1);
        }
        Some(encode(PLAYER_SESSIONS, &ps.id, ps))
    }

    /// Moves a live session to a final status, completing its player sessions and freeing its
    /// process. Returns the pid that hosted it.
    fn finish_session(
        &mut self,
        id: &str,
        status: GameServerSessionStatus,
        reason: &str,
        now: i64,
        writes: &mut Vec<Write>,
    ) -> Option<u32> {
        let session = self.sessions.get_mut(id)?;
        if session.status.is_over() {
            return None;
        }
        if session.status == GameServerSessionStatus::Activating {
            self.activations.retain(|(_, sid)| &**sid != id);
        }
        session.status = status;
        session.status_reason = Some(reason.to_string());
        session.terminated_ms = Some(now);
        let pid = session.pid;
        self.ended.insert((now, session.id.clone()));
        let holding: Vec<Shared> = self
            .players_of
            .get(id)
            .map(|p| p.holding.values().cloned().collect())
            .unwrap_or_default();
        for ps in holding {
            writes.extend(self.end_player_session(&ps, PlayerSessionStatus::Completed, now));
        }
        if let Some(session) = self.sessions.get(id) {
            writes.push(encode(SESSIONS, id, session));
        }
        if let Some(process) = pid.and_then(|p| self.processes.get_mut(&p)) {
            if process.session.as_deref() == Some(id) {
                process.session = None;
            }
        }
        pid
    }
}

impl State {
    /// Deletes an ended session and all its player sessions.
    fn purge_session(&mut self, id: &str, writes: &mut Vec<Write>) {
        let Some(session) = self.sessions.remove(id) else {
            return;
        };
        self.session_order
            .remove(&(session.created_ms, session.id.clone()));
        writes.push(Write::delete(SESSIONS, id));
        let Some(players) = self.players_of.remove(id) else {
            return;
        };
        for psess in players.all {
            let Some(ps) = self.player_sessions.remove(&psess) else {
                continue;
            };
            self.reservations.remove(&(ps.created_ms, ps.id.clone()));
            let key = (ps.account.clone(), ps.player_id.clone());
            if let Some(list) = self.by_player.get_mut(&key) {
                list.retain(|p| p != &ps.id);
                if list.is_empty() {
                    self.by_player.remove(&key);
                }
            }
            writes.push(Write::delete(PLAYER_SESSIONS, &*ps.id));
        }
    }
}

pub struct GseService {
    config: GseConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    host: OnceLock<Arc<dyn GameServerHost>>,
    state: Mutex<State>,
}

impl GseService {
    /// Loads every GSE record from the store.
    pub fn open(
        config: GseConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<GseService>, GseError> {
        let service = Arc::new(GseService {
            config,
            store,
            clock,
            host: OnceLock::new(),
            state: Mutex::new(State::default()),
        });
        let loaded = service.load()?;
        *service.state.lock() = loaded;
        Ok(service)
    }

    fn load_rows<T: DeserializeOwned>(&self, table: &str) -> Result<Vec<T>, GseError> {
        let rows = self.store.load_table(table)?;
        rows.into_iter()
            .map(|(key, value)| {
                serde_json::from_slice(&value)
                    .map_err(|e| GseError::Internal(format!("corrupt record {table}/{key}: {e}")))
            })
            .collect()
    }

    fn load(&self) -> Result<State, GseError> {
        let mut state = State::default();
        for asset in self.load_rows::<Asset>(ASSETS)? {
            state.assets.insert(asset.id.clone(), asset);
        }
        for fleet in self.load_rows::<Fleet>(FLEETS)? {
            state.fleets.insert(fleet.id.clone(), fleet);
        }
        for session in self.load_rows::<GameServerSession>(SESSIONS)? {
            if session.status == GameServerSessionStatus::Activating {
                let timeout = self.activation_timeout_ms(&state, &session.fleet_id);
                state
                    .activations
                    .insert((session.created_ms + timeout, session.id.clone()));
            }
            state.index_session(session);
        }
        let mut player_sessions = self.load_rows::<PlayerSession>(PLAYER_SESSIONS)?;
        player_sessions.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        for ps in player_sessions {
            if ps.status == PlayerSessionStatus::Reserved {
                state.reservations.insert((ps.created_ms, ps.id.clone()));
            }
            state.index_player_session(ps);
        }
        for record in self.load_rows::<ProcessRecord>(PROCESSES)? {
            state.process_records.insert(record.pid, record);
        }
        Ok(state)
    }

    fn activation_timeout_ms(&self, state: &State, fleet_id: &str) -> i64 {
        let seconds = state
            .fleets
            .get(fleet_id)
            .and_then(|f| f.runtime.as_ref())
            .map(|r| r.activation_timeout_seconds)
            .unwrap_or(600);
        i64::from(seconds) * 1000
    }

    pub fn attach_host(&self, host: Arc<dyn GameServerHost>) {
        let _ = self.host.set(host);
    }

    fn host(&self) -> Option<&Arc<dyn GameServerHost>> {
        self.host.get()
    }

    pub fn config(&self) -> &GseConfig {
        &self.config
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Applies `change` to the state and persists its writes; see [`crate::durable::apply`].
    async fn apply<R>(
        &self,
        change: impl FnOnce(&mut State, i64, &mut Vec<Write>) -> Result<R, GseError>,
    ) -> Result<R, GseError> {
        crate::durable::apply(&self.state, &*self.store, self.now(), change, |err| {
            tracing::error!(error = %err, "GSE change not persisted; reloading state from the store");
            match self.load() {
                Ok(mut fresh) => {
                    // Processes are soft state: they are not in the store.
                    let mut state = self.state.lock();
                    fresh.processes = std::mem::take(&mut state.processes);
                    *state = fresh;
                }
                Err(load_err) => tracing::error!(error = %load_err, "reloading GSE state failed"),
            }
        })
        .await
    }

    /// Starts the node's part after a (re)start: takes over processes of the previous run that
    /// still live, ends the sessions of those that died, and runs every fleet's processes.
    pub async fn start(self: &Arc<Self>) -> Result<(), GseError> {
        let host = self.host().cloned();
        let records: Vec<ProcessRecord> = self
            .state
            .lock()
            .process_records
            .values()
            .cloned()
            .collect();
        let mut lost = Vec::new();
        for record in records {
            let alive = host
                .as_ref()
                .map(|h| {
                    h.adopt_process(
                        record.pid,
                        record.start_ticks,
                        &record.fleet_id,
                        record.grpc_port,
                    )
                })
                .unwrap_or(false);
            if alive {
                let mut state = self.state.lock();
                let session = state
                    .sessions
                    .values()
                    .find(|s| s.pid == Some(record.pid) && !s.status.is_over())
                    .map(|s| s.id.clone());
                state.processes.insert(
                    record.pid,
                    Process {
                        pid: record.pid,
                        fleet_id: record.fleet_id.clone(),
                        account: record.account.clone(),
                        client_port: record.client_port,
                        grpc_port: record.grpc_port,
                        ready: record.ready,
                        healthy: true,
                        ending: false,
                        session,
                        log_paths: record.log_paths.clone(),
                    },
                );
            } else {
                lost.push(record.pid);
            }
        }
        for pid in lost {
            self.forget_process(
                pid,
                "the game server process ended while sessiond was not running",
            )
            .await;
        }
        // Live sessions whose process is not known at all (no record) cannot go on either.
        let orphans: Vec<Shared> = {
            let state = self.state.lock();
            state
                .sessions
                .values()
                .filter(|s| {
                    !s.status.is_over() && s.pid.is_none_or(|p| !state.processes.contains_key(&p))
                })
                .map(|s| s.id.clone())
                .collect()
        };
        if !orphans.is_empty() {
            self.apply(|state, now, writes| {
                for id in &orphans {
                    state.finish_session(
                        id,
                        GameServerSessionStatus::Terminated,
                        "the game server process was lost",
                        now,
                        writes,
                    );
                }
                Ok(())
            })
            .await?;
        }
        if let Some(host) = host {
            let specs: Vec<FleetProcesses> = {
                let state = self.state.lock();
                state
                    .fleets
                    .values()
                    .filter_map(|f| self.fleet_processes(&state, f).ok().flatten())
                    .collect()
            };
            for spec in specs {
                host.run_fleet(spec);
            }
        }
        Ok(())
    }

    /// Runs the timers (reservation and activation timeouts) until the service is dropped.
    pub fn spawn_timers(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let tick = self.config.timer_tick;
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(service) = weak.upgrade() else {
                    return;
                };
                if let Err(err) = service.expire_timers().await {
                    tracing::warn!(error = %err, "GSE timer pass failed");
                }
            }
        })
    }

    /// Times out RESERVED player sessions and ACTIVATING game server sessions whose deadline
    /// passed, and deletes ended sessions older than the retention window.
    pub async fn expire_timers(&self) -> Result<(), GseError> {
        let mut recycle = Vec::new();
        let timeout = self.config.reservation_timeout.as_millis() as i64;
        self.apply(|state, now, writes| {
            let due: Vec<Shared> = state
                .reservations
                .iter()
                .take_while(|(created, _)| created + timeout <= now)
                .map(|(_, id)| id.clone())
                .collect();
            for id in due {
                writes.extend(state.end_player_session(&id, PlayerSessionStatus::TimedOut, now));
            }
            let due: Vec<Shared> = state
                .activations
                .iter()
                .take_while(|(deadline, _)| *deadline <= now)
                .map(|(_, id)| id.clone())
                .collect();
            for id in due {
                let pid = state.finish_session(
                    &id,
                    GameServerSessionStatus::Terminated,
                    "the game server process did not activate the session in time",
                    now,
                    writes,
                );
                recycle.extend(pid);
            }
            let retention = self.config.retention.as_millis() as i64;
            let expired: Vec<(i64, Shared)> = state
                .ended
                .iter()
                .take_while(|(ended, _)| ended + retention <= now)
                .cloned()
                .collect();
            for entry in expired {
                state.ended.remove(&entry);
                state.purge_session(&entry.1, writes);
            }
            Ok(())
        })
        .await?;
        self.terminate_processes(recycle);
        Ok(())
    }

    fn terminate_processes(&self, pids: Vec<u32>) {
        let Some(host) = self.host() else { return };
        let grace = self.config.end_grace;
        let termination = (self.now() + grace.as_millis() as i64) / 1000;
        for pid in pids {
            if let Some(process) = self.state.lock().processes.get_mut(&pid) {
                process.ending = true;
            }
            host.terminate_process(pid, termination, grace);
        }
    }

    // ---- assets ----------------------------------------------------------------------------

    fn find_build_dir(&self, name: &str) -> Result<(PathBuf, u64), GseError> {
        let plain = name.strip_suffix(".zip").unwrap_or(name);
        if plain.is_empty()
            || plain.contains('/')
            || plain.contains('\\')
            || plain == "."
            || plain == ".."
        {
            return Err(GseError::InvalidValue(format!(
                "{name:?} is not a build directory name: give the name of a directory directly under an asset root"
            )));
        }
        for root in &self.config.asset_roots {
            let candidate = root.join(plain);
            if let Ok(dir) = candidate.canonicalize() {
                if dir.is_dir() && dir.starts_with(root) {
                    return Ok((dir.clone(), dir_size(&dir)));
                }
            }
        }
        Err(GseError::InvalidValue(format!(
            "no build directory {plain:?} under the asset roots ({}); copy the game server build there first",
            self.config
                .asset_roots
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    pub async fn create_asset(&self, caller: &Caller, req: CreateAsset) -> Result<Asset, GseError> {
        let directory = req
            .bucket_key
            .clone()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| req.name.clone());
        let (dir, size_bytes) = self.find_build_dir(&directory)?;
        let caller = caller.clone();
        self.apply(move |state, now, writes| {
            if state.assets.values().any(|a| {
                a.account == caller.account && a.name == req.name && a.version == req.version
            }) {
                return Err(GseError::InUse(format!(
                    "an asset named {:?} with version {:?} already exists",
                    req.name, req.version
                )));
            }
            let asset = Asset {
                id: ids::asset_id(),
                account: caller.account.clone(),
                region: caller.region.clone(),
                name: req.name,
                version: req.version,
                operating_system: req.operating_system,
                image_id: req.image_id,
                directory_name: directory.trim_end_matches(".zip").to_string(),
                path: dir.display().to_string(),
                size_bytes,
                created_ms: now,
                tags: req.tags,
                from_config: false,
            };
            writes.push(encode(ASSETS, &asset.id, &asset));
            state.assets.insert(asset.id.clone(), asset.clone());
            Ok(asset)
        })
        .await
    }

    /// Registers a build declared in the config file; keeps its id across restarts.
    pub async fn declare_asset(
        &self,
        account: &AccountId,
        region: &str,
        name: &str,
        version: &str,
    ) -> Result<Asset, GseError> {
        let (dir, size_bytes) = self.find_build_dir(name)?;
        let account = account.clone();
        let region = region.to_string();
        let (name, version) = (name.to_string(), version.to_string());
        self.apply(move |state, now, writes| {
            let existing = state
                .assets
                .values()
                .find(|a| a.account == account && a.directory_name == name && a.from_config)
                .cloned();
            let asset = Asset {
                id: existing
                    .as_ref()
                    .map(|a| a.id.clone())
                    .unwrap_or_else(ids::asset_id),
                account,
                region,
                name: name.clone(),
                version,
                operating_system: "Linux".into(),
                image_id: String::new(),
                directory_name: name,
                path: dir.display().to_string(),
                size_bytes,
                created_ms: existing.map(|a| a.created_ms).unwrap_or(now),
                tags: Vec::new(),
                from_config: true,
            };
            writes.push(encode(ASSETS, &asset.id, &asset));
            state.assets.insert(asset.id.clone(), asset.clone());
            Ok(asset)
        })
        .await
    }

    /// Number of fleets using each asset.
    pub fn asset_fleet_count(&self, asset_id: &str) -> usize {
        self.state
            .lock()
            .fleets
            .values()
            .filter(|f| f.asset_id == asset_id)
            .count()
    }

    pub fn describe_assets(&self, caller: &Caller, query: &AssetQuery) -> Page<Asset> {
        let state = self.state.lock();
        let mut assets: Vec<Asset> = state
            .assets
            .values()
            .filter(|a| {
                a.account == caller.account && query.filter.matches(&a.id, &a.name, &a.tags)
            })
            .cloned()
            .collect();
        assets.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        offset_page(assets, query.offset, query.limit)
    }

    pub async fn delete_asset(&self, caller: &Caller, asset_id: &str) -> Result<(), GseError> {
        let account = caller.account.clone();
        self.apply(|state, _, writes| {
            match state.assets.get(asset_id) {
                Some(a) if a.account == account => {}
                _ => return Err(not_found("asset", asset_id)),
            }
            if let Some(fleet) = state.fleets.values().find(|f| f.asset_id == asset_id) {
                return Err(GseError::InUse(format!(
                    "asset {asset_id} is used by fleet {}; delete the fleet first",
                    fleet.id
                )));
            }
            state.assets.remove(asset_id);
            writes.push(Write::delete(ASSETS, asset_id));
            Ok(())
        })
        .await
    }

    // ---- fleets ----------------------------------------------------------------------------

    /// Resolves a LaunchPath inside the asset directory. `/local/game/<p>` (and `C:\game\<p>`)
    /// name `<asset>/<p>`; a relative path is relative to the asset. The canonical result must
    /// stay inside the asset directory, which must stay inside an asset root.
    pub fn resolve_launch_path(
        &self,
        asset_dir: &Path,
        launch_path: &str,
    ) -> Result<PathBuf, GseError> {
        let relative = launch_path
            .strip_prefix("/local/game/")
            .or_else(|| launch_path.strip_prefix("C:\\game\\"))
            .unwrap_or(launch_path);
        if relative.starts_with('/') {
            return Err(GseError::InvalidValue(format!(
                "LaunchPath {launch_path:?} must be under /local/game/ (the asset's directory)"
            )));
        }
        let joined = asset_dir.join(relative.replace('\\', "/"));
        let resolved = joined.canonicalize().map_err(|e| {
            GseError::InvalidValue(format!(
                "LaunchPath {launch_path:?} does not name a file in the asset: {e}"
            ))
        })?;
        let inside_root = self
            .config
            .asset_roots
            .iter()
            .any(|root| asset_dir.starts_with(root));
        if !resolved.starts_with(asset_dir) || !inside_root {
            return Err(GseError::InvalidValue(format!(
                "LaunchPath {launch_path:?} leads outside the asset directory; only files of the asset can be launched"
            )));
        }
        if !resolved.is_file() {
            return Err(GseError::InvalidValue(format!(
                "LaunchPath {launch_path:?} is not a file"
            )));
        }
        Ok(resolved)
    }

    fn fleet_processes(
        &self,
        state: &State,
        fleet: &Fleet,
    ) -> Result<Option<FleetProcesses>, GseError> {
        let Some(runtime) = &fleet.runtime else {
            return Ok(None);
        };
        let asset = state
            .assets
            .get(&fleet.asset_id)
            .ok_or_else(|| not_found("asset", &fleet.asset_id))?;
        let asset_dir = PathBuf::from(&asset.path);
        let processes = runtime
            .server_processes
            .iter()
            .map(|p| {
                Ok(ServerProcessSpec {
                    executable: self.resolve_launch_path(&asset_dir, &p.launch_path)?,
                    parameters: p.parameters.clone(),
                    concurrent_executions: p.concurrent_executions,
                })
            })
            .collect::<Result<Vec<_>, GseError>>()?;
        Ok(Some(FleetProcesses {
            fleet_id: fleet.id.clone(),
            asset_dir,
            processes,
        }))
    }

    fn validate_runtime(runtime: &RuntimeConfiguration) -> Result<(), GseError> {
        if runtime.server_processes.is_empty() {
            return Err(GseError::InvalidValue(
                "RuntimeConfiguration.ServerProcesses needs at least one entry".into(),
            ));
        }
        let total: u64 = runtime
            .server_processes
            .iter()
            .map(|p| u64::from(p.concurrent_executions))
            .sum();
        if !(1..=50).contains(&total)
            || runtime
                .server_processes
                .iter()
                .any(|p| p.concurrent_executions == 0)
        {
            return Err(GseError::InvalidValue(format!(
                "ConcurrentExecutions must be at least 1 per ServerProcess and 1 to 50 in total; got {total}"
            )));
        }
        if !(1..=600).contains(&runtime.activation_timeout_seconds) {
            return Err(GseError::InvalidValue(
                "GameServerSessionActivationTimeoutSeconds must be 1 to 600".into(),
            ));
        }
        if runtime.max_concurrent_activations == 0
            || runtime.max_concurrent_activations > i32::MAX as u32
        {
            return Err(GseError::InvalidValue(
                "MaxConcurrentGameServerSessionActivations must be 1 to 2147483647".into(),
            ));
        }
        Ok(())
    }

    pub async fn create_fleet(&self, caller: &Caller, req: CreateFleet) -> Result<Fleet, GseError> {
        let asset_id = req.asset_id.clone().ok_or_else(|| {
            GseError::Missing("AssetId is required: a fleet runs the processes of one asset".into())
        })?;
        if let Some(runtime) = &req.runtime {
            Self::validate_runtime(runtime)?;
        }
        let time_limit = req.protection_time_limit_minutes.unwrap_or(60);
        if !(5..=1440).contains(&time_limit) {
            return Err(GseError::InvalidValue(
                "GameServerSessionProtectionTimeLimit must be 5 to 1440 minutes".into(),
            ));
        }
        let caller = caller.clone();
        let (fleet, spec) = self
            .apply(|state, now, writes| {
                let asset = match state.assets.get(&asset_id) {
                    Some(a) if a.account == caller.account => a.clone(),
                    _ => return Err(not_found("asset", &asset_id)),
                };
                let fleet_id = ids::fleet_id();
                let fleet = Fleet {
                    id: fleet_id.clone(),
                    account: caller.account.clone(),
                    region: caller.region.clone(),
                    name: req.name.unwrap_or_default(),
                    description: req.description,
                    asset_id: asset.id.clone(),
                    fleet_type: req.fleet_type.unwrap_or_else(|| "ON_DEMAND".into()),
                    instance_type: req.instance_type,
                    protection_policy: req.protection_policy.unwrap_or_default(),
                    protection_time_limit_minutes: time_limit,
                    resource_creation_limit: req.resource_creation_limit,
                    runtime: req.runtime,
                    inbound_permissions: req.inbound_permissions,
                    tags: req.tags,
                    status: FleetStatus::Active,
                    created_ms: now,
                    terminated_ms: None,
                    instance_id: ids::instance_id(),
                    operating_system: asset.operating_system.clone(),
                };
                let spec = self.fleet_processes(state, &fleet)?;
                writes.push(encode(FLEETS, &fleet.id, &fleet));
                state.fleets.insert(fleet.id.clone(), fleet.clone());
                Ok((fleet, spec))
            })
            .await?;
        if let (Some(spec), Some(host)) = (spec, self.host()) {
            host.run_fleet(spec);
        }
        Ok(fleet)
    }

    pub fn describe_fleets(&self, caller: &Caller, query: &FleetQuery) -> Page<Fleet> {
        let state = self.state.lock();
        let mut fleets: Vec<Fleet> = state
            .fleets
            .values()
            .filter(|f| {
                f.account == caller.account && query.filter.matches(&f.id, &f.name, &f.tags)
            })
            .filter(|f| query.asset_id.as_ref().is_none_or(|a| &f.asset_id == a))
            .cloned()
            .collect();
        fleets.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        offset_page(fleets, query.offset, query.limit)
    }

    pub fn fleet(&self, caller: &Caller, fleet_id: &str) -> Result<Fleet, GseError> {
        self.state
            .lock()
            .fleet_of(&caller.account, fleet_id)
            .cloned()
    }

    /// Ends the fleet's sessions and processes and forgets the fleet. Refused while a live
    /// session of the fleet is under FullProtection.
    pub async fn delete_fleet(&self, caller: &Caller, fleet_id: &str) -> Result<(), GseError> {
        let account = caller.account.clone();
        self.apply(|state, now, writes| {
            state.fleet_of(&account, fleet_id)?;
            let live: Vec<Shared> = state
                .sessions
                .values()
                .filter(|s| *s.fleet_id == *fleet_id && !s.status.is_over())
                .map(|s| s.id.clone())
                .collect();
            if let Some(protected) = live
                .iter()
                .find(|id| state.sessions[*id].protection == ProtectionPolicy::FullProtection)
            {
                return Err(GseError::InUse(format!(
                    "game server session {protected} of fleet {fleet_id} is under FullProtection; end it or change its ProtectionPolicy first"
                )));
            }
            for id in live {
                state.finish_session(&id, GameServerSessionStatus::Terminated, "the fleet was deleted", now, writes);
            }
            state.fleets.remove(fleet_id);
            writes.push(Write::delete(FLEETS, fleet_id));
            Ok(())
        })
        .await?;
        if let Some(host) = self.host() {
            host.stop_fleet(fleet_id);
        }
        Ok(())
    }

    pub async fn update_runtime_configuration(
        &self,
        caller: &Caller,
        fleet_id: &str,
        runtime: RuntimeConfiguration,
    ) -> Result<RuntimeConfiguration, GseError> {
        Self::validate_runtime(&runtime)?;
        let account = caller.account.clone();
        let spec = self
            .apply(|state, _, writes| {
                let mut fleet = state.fleet_of(&account, fleet_id)?.clone();
                fleet.runtime = Some(runtime.clone());
                let spec = self.fleet_processes(state, &fleet)?;
                writes.push(encode(FLEETS, &fleet.id, &fleet));
                state.fleets.insert(fleet.id.clone(), fleet);
                Ok(spec)
            })
            .await?;
        if let (Some(spec), Some(host)) = (spec, self.host()) {
            host.run_fleet(spec);
        }
        Ok(runtime)
    }

    pub fn describe_instances(
        &self,
        caller: &Caller,
        query: &InstanceQuery,
    ) -> Result<Page<Instance>, GseError> {
        let state = self.state.lock();
        if let Some(fleet_id) = &query.fleet_id {
            state.fleet_of(&caller.account, fleet_id)?;
        }
        let mut instances: Vec<Instance> = state
            .fleets
            .values()
            .filter(|f| f.account == caller.account)
            .filter(|f| query.fleet_id.as_ref().is_none_or(|id| &f.id == id))
            .filter(|f| {
                query
                    .instance_id
                    .as_ref()
                    .is_none_or(|id| &f.instance_id == id)
            })
            .filter(|_| {
                query
                    .ip_address
                    .as_ref()
                    .is_none_or(|ip| ip == &self.config.public_ip)
            })
            .map(|f| Instance {
                fleet_id: f.id.clone(),
                instance_id: f.instance_id.clone(),
                ip_address: self.config.public_ip.clone(),
                operating_system: f.operating_system.clone(),
                instance_type: f.instance_type.clone(),
                created_ms: f.created_ms,
            })
            .collect();
        instances
            .sort_by(|a, b| (a.created_ms, &a.instance_id).cmp(&(b.created_ms, &b.instance_id)));
        Ok(offset_page(instances, query.offset, query.limit))
    }

    /// Processes of a fleet (soft state), for operators and tests.
    pub fn fleet_processes_now(
        &self,
        caller: &Caller,
        fleet_id: &str,
    ) -> Result<Vec<Process>, GseError> {
        let state = self.state.lock();
        state.fleet_of(&caller.account, fleet_id)?;
        let mut list: Vec<Process> = state
            .processes
            .values()
            .filter(|p| p.fleet_id == fleet_id)
            .cloned()
            .collect();
        list.sort_by_key(|p| p.pid);
        Ok(list)
    }

    // ---- game server sessions --------------------------------------------------------------

    pub async fn create_game_server_session(
        self: &Arc<Self>,
        caller: &Caller,
        req: CreateGameServerSession,
    ) -> Result<GameServerSession, GseError> {
        let fleet_id = match (&req.fleet_id, &req.alias_id) {
            (Some(f), _) => f.clone(),
            (None, Some(alias)) => return Err(not_found("alias", alias)),
            (None, None) => {
                return Err(GseError::Missing(
                    "one of FleetId or AliasId is required".into(),
                ))
            }
        };
        let caller_c = caller.clone();
        let public_ip = self.config.public_ip.clone();
        let outcome = self
            .apply(|state, now, writes| {
                let fleet = state.fleet_of(&caller_c.account, &fleet_id)?.clone();
                if let Some(token) = &req.idempotency_token {
                    if let Some(existing) = state.sessions.values().find(|s| {
                        s.account == caller_c.account && *s.fleet_id == *fleet_id && s.idempotency_token.as_ref() == Some(token)
                    }) {
                        return Ok((existing.clone(), None));
                    }
                }
                if let (Some(creator), Some(policy)) = (&req.creator_id, fleet.resource_creation_limit) {
                    let since = now - i64::from(policy.policy_period_minutes) * 60_000;
                    let recent = state
                        .sessions
                        .values()
                        .filter(|s| *s.fleet_id == *fleet_id && s.creator_id.as_ref() == Some(creator) && s.created_ms > since)
                        .count();
                    if recent >= policy.new_sessions_per_creator as usize {
                        return Err(GseError::LimitExceeded(format!(
                            "creator {creator} already created {recent} game server session(s) in the last {} minute(s); the fleet allows {}",
                            policy.policy_period_minutes, policy.new_sessions_per_creator
                        )));
                    }
                }
                let custom = req.custom_id.as_deref();
                let id: Shared = ids::game_server_session_id(&caller_c.region, &caller_c.account.0, &fleet_id, custom).into();
                if state.sessions.contains_key(&id) {
                    return Err(GseError::InUse(format!("game server session {id} already exists")));
                }
                let max_activating = fleet
                    .runtime
                    .as_ref()
                    .map(|r| r.max_concurrent_activations as usize)
                    .unwrap_or(usize::MAX);
                let activating = state
                    .sessions
                    .values()
                    .filter(|s| *s.fleet_id == *fleet_id && s.status == GameServerSessionStatus::Activating)
                    .count();
                if activating >= max_activating {
                    return Err(GseError::NoCapacity(format!(
                        "fleet {fleet_id} already has {activating} game server session(s) activating (MaxConcurrentGameServerSessionActivations); retry shortly"
                    )));
                }
                let mut candidates: Vec<&Process> = state
                    .processes
                    .values()
                    .filter(|p| p.fleet_id == fleet_id && p.ready && p.healthy && !p.ending && p.session.is_none())
                    .collect();
                candidates.sort_by_key(|p| p.pid);
                let Some(process) = candidates.first() else {
                    return Err(GseError::NoCapacity(format!(
                        "fleet {fleet_id} has no idle game server process ready for a new session; wait for its processes to call ProcessReady or end a session"
                    )));
                };
                let (pid, port) = (process.pid, process.client_port.unwrap_or(0));
                let session = GameServerSession {
                    id: id.clone(),
                    account: caller_c.account.clone(),
                    fleet_id: fleet_id.as_str().into(),
                    name: req.name.clone(),
                    creator_id: req.creator_id.clone(),
                    status: GameServerSessionStatus::Activating,
                    status_reason: None,
                    max_players: req.max_players,
                    creation_policy: PlayerSessionCreationPolicy::AcceptAll,
                    protection: fleet.protection_policy,
                    ip_address: public_ip.as_str().into(),
                    port,
                    game_properties: req.game_properties.clone(),
                    data: req.data.clone(),
                    matchmaker_data: None,
                    created_ms: now,
                    terminated_ms: None,
                    instance_type: fleet.instance_type.clone(),
                    current_custom_count: None,
                    max_custom_count: None,
                    idempotency_token: req.idempotency_token.clone(),
                    pid: Some(pid),
                    current_players: 0,
                };
                let timeout = self.activation_timeout_ms(state, &fleet_id);
                state.activations.insert((now + timeout, id.clone()));
                if let Some(p) = state.processes.get_mut(&pid) {
                    p.session = Some(id.clone());
                }
                writes.push(encode(SESSIONS, &id, &session));
                state.index_session(session.clone());
                let start = SessionStart {
                    game_server_session_id: id.to_string(),
                    fleet_id: fleet_id.clone(),
                    name: req.name.clone().unwrap_or_default(),
                    max_players: req.max_players,
                    joinable: true,
                    game_properties: req.game_properties.clone(),
                    port,
                    ip_address: public_ip.clone(),
                    game_server_session_data: req.data.clone().unwrap_or_default(),
                    matchmaker_data: String::new(),
                    dns_name: String::new(),
                };
                Ok((session, Some((pid, start))))
            })
            .await?;
        let (session, start) = outcome;
        if let (Some((pid, start)), Some(host)) = (start, self.host().cloned()) {
            let service = Arc::clone(self);
            let id = session.id.clone();
            tokio::spawn(async move {
                if let Err(reason) = host.start_game_server_session(pid, start).await {
                    tracing::warn!(session = %id, pid, %reason, "OnStartGameServerSession failed");
                    let _ = service
                        .apply(|state, now, writes| {
                            if state.sessions.get(&id).map(|s| s.status) == Some(GameServerSessionStatus::Activating) {
                                state.finish_session(
                                    &id,
                                    GameServerSessionStatus::Error,
                                    &format!("the game server process could not start the session: {reason}"),
                                    now,
                                    writes,
                                );
                            }
                            Ok(())
                        })
                        .await;
                }
            });
        }
        Ok(session)
    }

    fn detail(session: &GameServerSession) -> GameServerSessionDetail {
        GameServerSessionDetail {
            session: session.clone(),
            protection: session.protection,
        }
    }

    pub fn describe_game_server_sessions(
        &self,
        caller: &Caller,
        query: &SessionQuery,
    ) -> Result<Page<GameServerSessionDetail>, GseError> {
        let state = self.state.lock();
        if let Some(alias) = &query.alias_id {
            if query.fleet_id.is_none() && query.session_id.is_none() {
                return Err(not_found("alias", alias));
            }
        }
        if query.fleet_id.is_none() && query.session_id.is_none() {
            return Err(GseError::Missing(
                "one of FleetId, AliasId or GameServerSessionId is required".into(),
            ));
        }
        if let Some(fleet_id) = &query.fleet_id {
            state.fleet_of(&caller.account, fleet_id)?;
        }
        let items: Vec<GameServerSessionDetail> = match &query.session_id {
            Some(id) => match state.sessions.get(id.as_str()) {
                Some(s) if s.account == caller.account => vec![Self::detail(s)],
                _ => Vec::new(),
            },
            None => state
                .session_order
                .iter()
                .filter_map(|(_, id)| state.sessions.get(id))
                .filter(|s| s.account == caller.account)
                .filter(|s| query.fleet_id.as_ref().is_none_or(|f| *s.fleet_id == **f))
                .filter(|s| query.status.is_none_or(|st| s.status == st))
                .map(Self::detail)
                .collect(),
        };
        paginate(items, &query.next_token, query.limit)
    }

    /// Searches ACTIVE sessions of a fleet (GameLift behaviour) with the documented filter and sort.
    pub fn search_game_server_sessions(
        &self,
        caller: &Caller,
        query: &SearchQuery,
    ) -> Result<Page<GameServerSession>, GseError> {
        let state = self.state.lock();
        let (filter, sort) = (query.filter.as_ref(), query.sort.as_ref());
        let fleet_id = match (query.fleet_id.as_deref(), query.alias_id.as_deref()) {
            (Some(f), _) => f,
            (None, Some(alias)) => return Err(not_found("alias", alias)),
            (None, None) => {
                return Err(GseError::Missing(
                    "one of FleetId or AliasId is required".into(),
                ))
            }
        };
        state.fleet_of(&caller.account, fleet_id)?;
        let mut items: Vec<GameServerSession> = state
            .session_order
            .iter()
            .filter_map(|(_, id)| state.sessions.get(id))
            .filter(|s| *s.fleet_id == *fleet_id && s.status == GameServerSessionStatus::Active)
            .filter(|s| filter.is_none_or(|f| f.matches(s)))
            .cloned()
            .collect();
        if let Some(sort) = sort {
            sort.apply(&mut items);
        }
        paginate(items, &query.next_token, query.limit)
    }

    pub async fn update_game_server_session(
        &self,
        caller: &Caller,
        req: UpdateGameServerSession,
    ) -> Result<GameServerSession, GseError> {
        let account = caller.account.clone();
        self.apply(|state, _, writes| {
            let session = state.session_of(&account, &req.session_id)?;
            if session.status.is_over() {
                return Err(GseError::WrongState {
                    kind: "game server session",
                    id: session.id.to_string(),
                    state: session.status.name().into(),
                    need: "only a session that has not ended can be updated",
                });
            }
            let session = state
                .sessions
                .get_mut(req.session_id.as_str())
                .ok_or_else(|| not_found("game server session", &req.session_id))?;
            if let Some(max) = req.max_players {
                session.max_players = max;
            }
            if let Some(name) = req.name {
                session.name = Some(name);
            }
            if let Some(policy) = req.creation_policy {
                session.creation_policy = policy;
            }
            if let Some(protection) = req.protection {
                session.protection = protection;
            }
            writes.push(encode(SESSIONS, &session.id, session));
            Ok(session.clone())
        })
        .await
    }

    /// JoinGameServerSession(Batch): reserves one slot per player, all or nothing.
    pub async fn join_game_server_session(
        &self,
        caller: &Caller,
        session_id: &str,
        players: Vec<(String, Option<String>)>,
    ) -> Result<Vec<PlayerSession>, GseError> {
        let account = caller.account.clone();
        self.apply(|state, now, writes| {
            let session = state.session_of(&account, session_id)?;
            if session.status != GameServerSessionStatus::Active {
                return Err(GseError::WrongState {
                    kind: "game server session",
                    id: session_id.to_string(),
                    state: session.status.name().into(),
                    need: "players can join only an ACTIVE game server session",
                });
            }
            if session.creation_policy == PlayerSessionCreationPolicy::DenyAll {
                return Err(GseError::CreationDenied(session_id.to_string()));
            }
            let holding = &state.players_of[session_id].holding;
            if let Some((player, _)) = players.iter().find(|(p, _)| holding.contains_key(p)) {
                return Err(GseError::PlayerAlreadyJoined {
                    player_id: player.clone(),
                    id: session_id.to_string(),
                });
            }
            let free = session.max_players.saturating_sub(session.current_players);
            if (free as usize) < players.len() {
                return Err(GseError::NotEnoughSlots {
                    id: session_id.to_string(),
                    requested: players.len(),
                    free,
                });
            }
            // Every player session of this session shares these strings.
            let (gss_id, fleet_id, ip, port) = (
                session.id.clone(),
                session.fleet_id.clone(),
                session.ip_address.clone(),
                session.port,
            );
            let mut created = Vec::with_capacity(players.len());
            for (player_id, player_data) in players {
                let ps = PlayerSession {
                    id: ids::player_session_id().into(),
                    account: account.clone(),
                    player_id,
                    game_server_session_id: gss_id.clone(),
                    fleet_id: fleet_id.clone(),
                    ip_address: ip.clone(),
                    port,
                    player_data,
                    status: PlayerSessionStatus::Reserved,
                    created_ms: now,
                    terminated_ms: None,
                };
                writes.push(encode(PLAYER_SESSIONS, &ps.id, &ps));
                state.reservations.insert((now, ps.id.clone()));
                state.index_player_session(ps.clone());
                created.push(ps);
            }
            Ok(created)
        })
        .await
    }

    fn player_sessions_matching(
        state: &State,
        account: &AccountId,
        query: &PlayerSessionQuery,
    ) -> Result<Vec<PlayerSession>, GseError> {
        let given = [
            query.player_session_id.is_some(),
            query.game_server_session_id.is_some(),
            query.player_id.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            return Err(GseError::Missing(
                "give exactly one of PlayerSessionId, GameServerSessionId or PlayerId".into(),
            ));
        }
        let owned = |id: &str| {
            state
                .player_sessions
                .get(id)
                .filter(|ps| &ps.account == account)
        };
        let items: Vec<PlayerSession> = if let Some(id) = &query.player_session_id {
            owned(id.as_str()).cloned().into_iter().collect()
        } else if let Some(gss) = &query.game_server_session_id {
            state.session_of(account, gss)?;
            state.players_of[gss.as_str()]
                .all
                .iter()
                .filter_map(|id| owned(id))
                .filter(|ps| query.status.is_none_or(|s| ps.status == s))
                .cloned()
                .collect()
        } else {
            let player = query.player_id.clone().unwrap_or_default();
            state
                .by_player
                .get(&(account.clone(), player))
                .map(|ids| ids.iter().filter_map(|id| owned(id)).cloned().collect())
                .unwrap_or_default()
        };
        Ok(items)
    }

    pub fn describe_player_sessions(
        &self,
        caller: &Caller,
        query: &PlayerSessionQuery,
    ) -> Result<Page<PlayerSession>, GseError> {
        let state = self.state.lock();
        let items = Self::player_sessions_matching(&state, &caller.account, query)?;
        paginate(items, &query.next_token, query.limit)
    }

    pub async fn end_game_server_session_and_process(
        &self,
        caller: &Caller,
        target: EndTarget,
    ) -> Result<(), GseError> {
        let account = caller.account.clone();
        let public_ip = self.config.public_ip.clone();
        let pid = self
            .apply(|state, now, writes| {
                let by_address = |state: &State, ip: &str, port: u16| -> Result<u32, GseError> {
                    state
                        .processes
                        .values()
                        .find(|p| p.account == account && ip == public_ip && p.client_port == Some(port) && !p.ending)
                        .map(|p| p.pid)
                        .ok_or_else(|| not_found("game server process", &format!("{ip}:{port}")))
                };
                let (session_id, pid) = match &target {
                    EndTarget::Session(id) => {
                        let s = state.session_of(&account, id)?;
                        (Some(s.id.clone()), s.pid)
                    }
                    EndTarget::Address { ip, port } => {
                        let pid = by_address(state, ip, *port)?;
                        let session = state.processes[&pid].session.clone();
                        (session, Some(pid))
                    }
                    EndTarget::Both { session, ip, port } => {
                        let s = state.session_of(&account, session)?;
                        let pid = by_address(state, ip, *port)?;
                        if s.pid != Some(pid) || s.status.is_over() {
                            return Err(GseError::Conflict(format!(
                                "GameServerSessionId {session} and IpAddress:Port {ip}:{port} name different game server processes; give one of them"
                            )));
                        }
                        (Some(s.id.clone()), Some(pid))
                    }
                };
                if let Some(id) = &session_id {
                    let s = &state.sessions[id];
                    if s.status.is_over() {
                        return Ok(None);
                    }
                    if s.protection == ProtectionPolicy::FullProtection {
                        return Err(GseError::Refused(format!(
                            "game server session {id} is under FullProtection and cannot be ended; change its ProtectionPolicy with UpdateGameServerSession first"
                        )));
                    }
                    state.finish_session(id, GameServerSessionStatus::Terminated, "ended by EndGameServerSessionAndProcess", now, writes);
                }
                Ok(pid.filter(|p| state.processes.contains_key(p)))
            })
            .await?;
        self.terminate_processes(pid.into_iter().collect());
        Ok(())
    }

    // ---- processes (agent and supervisor events) -------------------------------------------

    pub fn has_process(&self, pid: u32) -> bool {
        self.state.lock().processes.contains_key(&pid)
    }

    pub fn process(&self, pid: u32) -> Option<Process> {
        self.state.lock().processes.get(&pid).cloned()
    }

    fn process_of(state: &State, pid: u32) -> Result<&Process, GseError> {
        state
            .processes
            .get(&pid)
            .ok_or_else(|| not_found("game server process", &pid.to_string()))
    }

    /// The session `gss_id` if the process `pid` hosts it.
    fn hosted<'a>(
        state: &'a State,
        pid: u32,
        gss_id: &str,
    ) -> Result<&'a GameServerSession, GseError> {
        Self::process_of(state, pid)?;
        match state.sessions.get(gss_id) {
            Some(s) if s.pid == Some(pid) => Ok(s),
            _ => Err(not_found("game server session of this process", gss_id)),
        }
    }

    pub async fn process_launched(&self, pid: u32, start_ticks: u64, fleet_id: &str) {
        let result = self
            .apply(|state, _, writes| {
                let Some(fleet) = state.fleets.get(fleet_id) else {
                    return Err(not_found("fleet", fleet_id));
                };
                let record = ProcessRecord {
                    pid,
                    start_ticks,
                    fleet_id: fleet_id.to_string(),
                    account: fleet.account.clone(),
                    client_port: None,
                    grpc_port: None,
                    ready: false,
                    log_paths: Vec::new(),
                };
                state.processes.insert(
                    pid,
                    Process {
                        pid,
                        fleet_id: fleet_id.to_string(),
                        account: fleet.account.clone(),
                        client_port: None,
                        grpc_port: None,
                        ready: false,
                        healthy: true,
                        ending: false,
                        session: None,
                        log_paths: Vec::new(),
                    },
                );
                writes.push(encode(PROCESSES, &pid.to_string(), &record));
                state.process_records.insert(pid, record);
                Ok(())
            })
            .await;
        if let Err(err) = result {
            tracing::warn!(pid, fleet_id, error = %err, "could not record launched process");
        }
    }

    async fn forget_process(&self, pid: u32, reason: &str) {
        let result = self
            .apply(|state, now, writes| {
                state.processes.remove(&pid);
                if state.process_records.remove(&pid).is_some() {
                    writes.push(Write::delete(PROCESSES, pid.to_string()));
                }
                let live: Vec<(Shared, GameServerSessionStatus)> = state
                    .sessions
                    .values()
                    .filter(|s| s.pid == Some(pid) && !s.status.is_over())
                    .map(|s| (s.id.clone(), s.status))
                    .collect();
                for (id, status) in live {
                    let end = if status == GameServerSessionStatus::Activating {
                        GameServerSessionStatus::Error
                    } else {
                        GameServerSessionStatus::Terminated
                    };
                    state.finish_session(&id, end, reason, now, writes);
                }
                Ok(())
            })
            .await;
        if let Err(err) = result {
            tracing::warn!(pid, error = %err, "could not record process end");
        }
    }

    pub async fn process_exited(&self, pid: u32) {
        self.forget_process(pid, "the game server process exited")
            .await;
    }

    pub async fn process_health(&self, pid: u32, healthy: bool) {
        if let Some(process) = self.state.lock().processes.get_mut(&pid) {
            process.healthy = healthy;
        }
    }

    pub async fn process_ready(
        &self,
        pid: u32,
        client_port: u16,
        grpc_port: u16,
        log_paths: Vec<String>,
    ) -> Result<(), GseError> {
        if client_port == 0 || grpc_port == 0 {
            return Err(GseError::InvalidValue(format!(
                "ProcessReady needs the process's clientPort and grpcPort (got {client_port} and {grpc_port})"
            )));
        }
        self.apply(|state, _, writes| {
            let process = state
                .processes
                .get_mut(&pid)
                .ok_or_else(|| not_found("game server process", &pid.to_string()))?;
            process.client_port = Some(client_port);
            process.grpc_port = Some(grpc_port);
            process.ready = true;
            process.log_paths = log_paths.clone();
            if let Some(record) = state.process_records.get_mut(&pid) {
                record.client_port = Some(client_port);
                record.grpc_port = Some(grpc_port);
                record.ready = true;
                record.log_paths = log_paths;
                writes.push(encode(PROCESSES, &pid.to_string(), record));
            }
            Ok(())
        })
        .await
    }

    pub async fn activate_game_server_session(
        &self,
        pid: u32,
        gss_id: &str,
        max_players: i32,
    ) -> Result<(), GseError> {
        self.apply(|state, _, writes| {
            let session = Self::hosted(state, pid, gss_id)?;
            if session.status != GameServerSessionStatus::Activating {
                return Err(GseError::WrongState {
                    kind: "game server session",
                    id: gss_id.to_string(),
                    state: session.status.name().into(),
                    need: "only an ACTIVATING session can be activated",
                });
            }
            state.activations.retain(|(_, id)| &**id != gss_id);
            let session = state
                .sessions
                .get_mut(gss_id)
                .ok_or_else(|| not_found("game server session", gss_id))?;
            session.status = GameServerSessionStatus::Active;
            if max_players > 0 {
                session.max_players = session.max_players.min(max_players as u32);
            }
            writes.push(encode(SESSIONS, gss_id, session));
            Ok(())
        })
        .await
    }

    fn hosted_player_session<'a>(
        state: &'a State,
        pid: u32,
        gss_id: &str,
        psess_id: &str,
    ) -> Result<&'a PlayerSession, GseError> {
        Self::hosted(state, pid, gss_id)?;
        match state.player_sessions.get(psess_id) {
            Some(ps) if *ps.game_server_session_id == *gss_id => Ok(ps),
            _ => Err(not_found(
                "player session of this game server session",
                psess_id,
            )),
        }
    }

    pub async fn accept_player_session(
        &self,
        pid: u32,
        gss_id: &str,
        psess_id: &str,
    ) -> Result<(), GseError> {
        self.apply(|state, _, writes| {
            let ps = Self::hosted_player_session(state, pid, gss_id, psess_id)?;
            if ps.status != PlayerSessionStatus::Reserved {
                return Err(GseError::WrongState {
                    kind: "player session",
                    id: psess_id.to_string(),
                    state: ps.status.name().into(),
                    need: "only a RESERVED player session can be accepted",
                });
            }
            state.reservations.remove(&(ps.created_ms, ps.id.clone()));
            let ps = state
                .player_sessions
                .get_mut(psess_id)
                .ok_or_else(|| not_found("player session", psess_id))?;
            ps.status = PlayerSessionStatus::Active;
            writes.push(encode(PLAYER_SESSIONS, psess_id, ps));
            Ok(())
        })
        .await
    }

    pub async fn remove_player_session(
        &self,
        pid: u32,
        gss_id: &str,
        psess_id: &str,
    ) -> Result<(), GseError> {
        self.apply(|state, now, writes| {
            let ps = Self::hosted_player_session(state, pid, gss_id, psess_id)?;
            if !ps.status.holds_slot() {
                return Err(GseError::WrongState {
                    kind: "player session",
                    id: psess_id.to_string(),
                    state: ps.status.name().into(),
                    need: "only a RESERVED or ACTIVE player session can be removed",
                });
            }
            writes.extend(state.end_player_session(psess_id, PlayerSessionStatus::Completed, now));
            Ok(())
        })
        .await
    }

    pub async fn describe_player_sessions_for_process(
        &self,
        pid: u32,
        query: PlayerSessionQuery,
    ) -> Result<Page<PlayerSession>, GseError> {
        let state = self.state.lock();
        let account = Self::process_of(&state, pid)?.account.clone();
        let items = Self::player_sessions_matching(&state, &account, &query)?;
        paginate(items, &query.next_token, query.limit)
    }

    pub async fn update_player_session_creation_policy(
        &self,
        pid: u32,
        gss_id: &str,
        policy: PlayerSessionCreationPolicy,
    ) -> Result<(), GseError> {
        self.apply(|state, _, writes| {
            Self::hosted(state, pid, gss_id)?;
            let session = state
                .sessions
                .get_mut(gss_id)
                .ok_or_else(|| not_found("game server session", gss_id))?;
            session.creation_policy = policy;
            writes.push(encode(SESSIONS, gss_id, session));
            Ok(())
        })
        .await
    }

    pub async fn terminate_game_server_session(
        &self,
        pid: u32,
        gss_id: &str,
    ) -> Result<(), GseError> {
        self.apply(|state, now, writes| {
            Self::hosted(state, pid, gss_id)?;
            state.finish_session(
                gss_id,
                GameServerSessionStatus::Terminated,
                "ended by the game server process",
                now,
                writes,
            );
            Ok(())
        })
        .await
    }

    pub async fn process_ending(&self, pid: u32) -> Result<(), GseError> {
        self.apply(|state, now, writes| {
            Self::process_of(state, pid)?;
            let live: Vec<Shared> = state
                .sessions
                .values()
                .filter(|s| s.pid == Some(pid) && !s.status.is_over())
                .map(|s| s.id.clone())
                .collect();
            for id in live {
                state.finish_session(
                    &id,
                    GameServerSessionStatus::Terminated,
                    "the game server process is ending",
                    now,
                    writes,
                );
            }
            if let Some(process) = state.processes.get_mut(&pid) {
                process.ending = true;
            }
            Ok(())
        })
        .await
    }

    pub async fn report_custom_data(
        &self,
        pid: u32,
        current: i32,
        max: i32,
    ) -> Result<(), GseError> {
        self.apply(|state, _, writes| {
            let process = Self::process_of(state, pid)?;
            let Some(gss_id) = process.session.clone() else {
                return Err(GseError::WrongState {
                    kind: "game server process",
                    id: pid.to_string(),
                    state: "idle".into(),
                    need: "custom data is reported for the process's game server session",
                });
            };
            let session = state
                .sessions
                .get_mut(&gss_id)
                .ok_or_else(|| not_found("game server session", &gss_id))?;
            session.current_custom_count = Some(i64::from(current));
            session.max_custom_count = Some(i64::from(max));
            writes.push(encode(SESSIONS, &gss_id, session));
            Ok(())
        })
        .await
    }
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    let mut visited = 0usize;
    while let Some(path) = stack.pop() {
        visited += 1;
        if visited > 100_000 {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => total += entry.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests;
