//! The DCS service: the declared inventory (read-only), client lists and kills on the nodes
//! through [`RedisNodes`], snapshots of client lists (soft state, in memory), and jobs (durable:
//! persisted through the store, acknowledged only once durable, recovered at start).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use sessiond_store::{Store, Write};

use super::data::{DataError, KillTarget, NodeInfo, RedisNodes};
use super::error::DcsError;
use super::model::*;
use crate::{AccountId, Clock};

const JOBS: &str = "dcs.jobs";

/// Most addresses one kill names, and the largest page of a client list.
pub const MAX_KILL_ADDRS: usize = 1000;
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Targets sent to a node in one pipelined round trip.
const KILL_CHUNK: usize = 1000;
/// Longest fail_reason kept on a job.
const MAX_REASON: usize = 1000;

#[derive(Debug, Clone)]
pub struct DcsConfig {
    /// Finished jobs kept per project (oldest dropped first).
    pub max_jobs_per_project: usize,
}

impl Default for DcsConfig {
    fn default() -> Self {
        DcsConfig {
            max_jobs_per_project: 1000,
        }
    }
}

/// Which clients of a node a listing returns.
#[derive(Debug, Clone)]
pub struct ClientQuery {
    pub node_id: String,
    pub offset: u32,
    pub limit: u32,
    /// `ip:port` matches that address, a bare IP every port of it, anything else is a
    /// substring of the address.
    pub addr: Option<String>,
    pub sort: Option<ClientField>,
    pub descending: bool,
}

#[derive(Debug, Clone)]
pub struct ClientPage {
    /// When the list was read from the node (ms since the epoch).
    pub time_ms: i64,
    pub clients: Vec<ClientRecord>,
    /// Clients matching the filter, over all pages.
    pub count: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillReport {
    /// Connections killed by this call.
    pub killed: usize,
    /// Named addresses with no connection any more (gone before or while killing).
    pub already_gone: usize,
}

#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub node: Node,
    pub info: Result<NodeInfo, DataError>,
}

#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub instance: Arc<Instance>,
    /// In declaration order.
    pub nodes: Vec<NodeStatus>,
}

impl InstanceStatus {
    /// RUNNING when every node answers, ERROR otherwise.
    pub fn running(&self) -> bool {
        self.nodes.iter().all(|n| n.info.is_ok())
    }
}

struct Snapshot {
    taken_ms: i64,
    clients: Arc<Vec<ClientRecord>>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, Job>,
    /// (begin_ms, job id) per project: the pruning order.
    by_project: HashMap<AccountId, BTreeSet<(i64, String)>>,
    /// (instance id, node id) -> the latest ScanClients snapshot.
    snapshots: HashMap<(String, String), Snapshot>,
}

impl State {
    fn insert_job(&mut self, job: Job) {
        self.by_project
            .entry(job.project.clone())
            .or_default()
            .insert((job.begin_ms, job.id.clone()));
        self.jobs.insert(job.id.clone(), job);
    }

    /// Drops the oldest finished jobs of `project` beyond `keep`; returns their deletes.
    fn prune(&mut self, project: &AccountId, keep: usize) -> Vec<Write> {
        let mut writes = Vec::new();
        let Some(order) = self.by_project.get_mut(project) else {
            return writes;
        };
        let mut excess = order.len().saturating_sub(keep);
        let mut drop = Vec::new();
        for (begin, id) in order.iter() {
            if excess == 0 {
                break;
            }
            if self
                .jobs
                .get(id)
                .is_some_and(|j| j.status != JobStatus::Running)
            {
                drop.push((*begin, id.clone()));
                excess -= 1;
            }
        }
        for key in drop {
            order.remove(&key);
            self.jobs.remove(&key.1);
            writes.push(Write::delete(JOBS, key.1));
        }
        writes
    }
}

fn encode(job: &Job) -> Write {
    // Serialising a plain struct to JSON cannot fail.
    Write::put(JOBS, &*job.id, serde_json::to_vec(job).unwrap_or_default())
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

pub struct DcsService {
    config: DcsConfig,
    instances: HashMap<String, Arc<Instance>>,
    data: Arc<dyn RedisNodes>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl DcsService {
    /// Loads the jobs; jobs a previous run left RUNNING are marked FAILED (durably) before
    /// this returns.
    pub async fn open(
        config: DcsConfig,
        instances: Vec<Instance>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        data: Arc<dyn RedisNodes>,
    ) -> Result<Arc<DcsService>, DcsError> {
        let mut by_id = HashMap::new();
        for instance in instances {
            if by_id.contains_key(&instance.id) {
                return Err(DcsError::invalid(
                    "instance_id",
                    format!("instance {} is declared twice", instance.id),
                ));
            }
            by_id.insert(instance.id.clone(), Arc::new(instance));
        }
        let service = Arc::new(DcsService {
            config,
            instances: by_id,
            data,
            store,
            clock,
            state: Mutex::new(State::default()),
        });
        let now = service.clock.now_ms();
        let mut interrupted = Vec::new();
        {
            let mut state = service.state.lock();
            for (key, value) in service.store.load_table(JOBS)? {
                let mut job: Job = serde_json::from_slice(&value)
                    .map_err(|e| DcsError::Internal(format!("corrupt record {JOBS}/{key}: {e}")))?;
                if job.status == JobStatus::Running {
                    job.status = JobStatus::Failed;
                    job.end_ms = Some(now);
                    job.fail_reason = Some(
                        "sessiond stopped before the job finished; it may have been partly done, start it again"
                            .into(),
                    );
                    interrupted.push(encode(&job));
                }
                state.insert_job(job);
            }
        }
        if !interrupted.is_empty() {
            tracing::warn!(
                jobs = interrupted.len(),
                "DCS jobs interrupted by a restart marked FAILED"
            );
            service.store.commit(interrupted).await?;
        }
        Ok(service)
    }

    pub fn instances(&self) -> impl Iterator<Item = &Arc<Instance>> {
        self.instances.values()
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The instance, if it belongs to `project` (another project's answers as missing).
    pub fn instance(&self, project: &AccountId, id: &str) -> Result<Arc<Instance>, DcsError> {
        match self.instances.get(id) {
            Some(i) if &i.project == project => Ok(i.clone()),
            _ => Err(DcsError::InstanceNotFound(id.to_string())),
        }
    }

    fn node(instance: &Instance, node_id: &str) -> Result<Node, DcsError> {
        if node_id.is_empty() {
            return Err(DcsError::invalid("node_id", "is required"));
        }
        instance
            .node(node_id)
            .cloned()
            .ok_or_else(|| DcsError::NodeNotFound {
                instance: instance.id.clone(),
                node: node_id.to_string(),
            })
    }

    fn node_error(node: &Node, error: DataError) -> DcsError {
        DcsError::Node {
            node: node.id.clone(),
            address: node.address.clone(),
            error,
        }
    }

    /// Persists `writes` (queued in state order by the caller) and waits until durable.
    async fn persist(&self, commit: sessiond_store::Commit) -> Result<(), DcsError> {
        if let Err(err) = commit.await {
            tracing::error!(error = %err, "DCS job not persisted; reloading jobs from the store");
            if let Ok(rows) = self.store.load_table(JOBS) {
                let mut state = self.state.lock();
                state.jobs.clear();
                state.by_project.clear();
                for (_, value) in rows {
                    if let Ok(job) = serde_json::from_slice::<Job>(&value) {
                        state.insert_job(job);
                    }
                }
            }
            return Err(err.into());
        }
        Ok(())
    }

    /// Records a new job (durably).
    async fn create_job(&self, job: Job) -> Result<(), DcsError> {
        let commit = {
            let mut state = self.state.lock();
            let mut writes = state.prune(
                &job.project,
                self.config.max_jobs_per_project.saturating_sub(1),
            );
            writes.push(encode(&job));
            state.insert_job(job);
            self.store.commit(writes)
        };
        self.persist(commit).await
    }

    /// Ends a job (durably).
    async fn finish_job(
        &self,
        id: &str,
        count: u64,
        failure: Option<String>,
    ) -> Result<Job, DcsError> {
        let now = self.now();
        let (job, commit) = {
            let mut state = self.state.lock();
            let job = state
                .jobs
                .get_mut(id)
                .ok_or_else(|| DcsError::JobNotFound(id.to_string()))?;
            job.status = if failure.is_some() {
                JobStatus::Failed
            } else {
                JobStatus::Success
            };
            job.end_ms = Some(now);
            job.count = count;
            job.fail_reason = failure.map(|r| truncate(r, MAX_REASON));
            let job = job.clone();
            let commit = self.store.commit(vec![encode(&job)]);
            (job, commit)
        };
        self.persist(commit).await?;
        Ok(job)
    }

    fn new_job(
        &self,
        project: &AccountId,
        kind: JobKind,
        instance: &Instance,
        node_ids: Vec<String>,
    ) -> Job {
        Job {
            id: uuid::Uuid::new_v4().to_string(),
            project: project.clone(),
            kind,
            instance_id: instance.id.clone(),
            node_ids,
            status: JobStatus::Running,
            begin_ms: self.now(),
            end_ms: None,
            fail_reason: None,
            count: 0,
        }
    }

    /// A job of the caller's project.
    pub fn job(&self, project: &AccountId, id: &str) -> Result<Job, DcsError> {
        match self.state.lock().jobs.get(id) {
            Some(job) if &job.project == project => Ok(job.clone()),
            _ => Err(DcsError::JobNotFound(id.to_string())),
        }
    }

    /// The instance with each node's live INFO (nodes probed concurrently, each bounded by the
    /// data plane's timeouts).
    pub async fn describe_instance(
        &self,
        project: &AccountId,
        id: &str,
    ) -> Result<InstanceStatus, DcsError> {
        let instance = self.instance(project, id)?;
        let probes: Vec<_> = instance
            .nodes
            .iter()
            .map(|node| tokio::spawn(self.data.info(node)))
            .collect();
        let mut nodes = Vec::with_capacity(probes.len());
        for (node, probe) in instance.nodes.iter().zip(probes) {
            let info = probe
                .await
                .unwrap_or_else(|e| Err(DataError::Protocol(format!("probe failed: {e}"))));
            nodes.push(NodeStatus {
                node: node.clone(),
                info,
            });
        }
        Ok(InstanceStatus { instance, nodes })
    }

    /// A page of a node's clients: from the latest ScanClients snapshot if there is one, else
    /// read live.
    pub async fn list_clients(
        &self,
        project: &AccountId,
        instance_id: &str,
        query: ClientQuery,
    ) -> Result<ClientPage, DcsError> {
        let instance = self.instance(project, instance_id)?;
        let node = Self::node(&instance, &query.node_id)?;
        if query.limit == 0 || query.limit > MAX_PAGE_LIMIT {
            return Err(DcsError::invalid(
                "limit",
                format!("must be 1 to {MAX_PAGE_LIMIT}; got {}", query.limit),
            ));
        }
        let snapshot = self
            .state
            .lock()
            .snapshots
            .get(&(instance.id.clone(), node.id.clone()))
            .map(|s| (s.taken_ms, s.clients.clone()));
        let (time_ms, clients) = match snapshot {
            Some(s) => s,
            None => {
                let time_ms = self.now();
                let list = self
                    .data
                    .list_clients(&node)
                    .await
                    .map_err(|e| Self::node_error(&node, e))?;
                (time_ms, Arc::new(list))
            }
        };
        let filter = AddrFilter::new(query.addr.as_deref());
        let mut matching: Vec<&ClientRecord> =
            clients.iter().filter(|c| filter.matches(&c.addr)).collect();
        if let Some(field) = query.sort {
            matching.sort_by(|a, b| {
                let order = field.compare(a, b).then(a.id.cmp(&b.id));
                if query.descending {
                    order.reverse()
                } else {
                    order
                }
            });
        } else if query.descending {
            matching.reverse();
        }
        let count = matching.len();
        let start = (query.offset as usize).min(count);
        let end = (start + query.limit as usize).min(count);
        Ok(ClientPage {
            time_ms,
            clients: matching[start..end].iter().map(|c| (*c).clone()).collect(),
            count,
        })
    }

    /// Takes a snapshot of a node's client list (unless one exists and `refresh` is false) and
    /// records a finished job. A node that cannot be read is an error (no job is recorded).
    pub async fn scan_clients(
        &self,
        project: &AccountId,
        instance_id: &str,
        node_id: &str,
        refresh: bool,
    ) -> Result<Job, DcsError> {
        let instance = self.instance(project, instance_id)?;
        let node = Self::node(&instance, node_id)?;
        let key = (instance.id.clone(), node.id.clone());
        let mut job = self.new_job(
            project,
            JobKind::ScanClients,
            &instance,
            vec![node.id.clone()],
        );
        let existing = if refresh {
            None
        } else {
            self.state
                .lock()
                .snapshots
                .get(&key)
                .map(|s| s.clients.len())
        };
        let count = match existing {
            Some(n) => n,
            None => {
                let taken_ms = self.now();
                let clients = self
                    .data
                    .list_clients(&node)
                    .await
                    .map_err(|e| Self::node_error(&node, e))?;
                let n = clients.len();
                self.state.lock().snapshots.insert(
                    key,
                    Snapshot {
                        taken_ms,
                        clients: Arc::new(clients),
                    },
                );
                n
            }
        };
        job.status = JobStatus::Success;
        job.end_ms = Some(self.now());
        job.count = count as u64;
        self.create_job(job.clone()).await?;
        Ok(job)
    }

    /// Kills the client connections at `addrs` on that node only. Each address is matched
    /// against one fresh `CLIENT LIST` read and killed by id and address, so a connection that
    /// reuses an address after the read is never hit. Nothing is killed if an address is
    /// malformed or one of sessiond's own connections.
    pub async fn kill_clients(
        &self,
        project: &AccountId,
        instance_id: &str,
        node_id: &str,
        addrs: &[String],
    ) -> Result<KillReport, DcsError> {
        let instance = self.instance(project, instance_id)?;
        let node = Self::node(&instance, node_id)?;
        if addrs.is_empty() {
            return Err(DcsError::invalid(
                "client_addrs",
                "is empty; name 1 to 1000 client addresses (ip:port or [ipv6]:port)",
            ));
        }
        if addrs.len() > MAX_KILL_ADDRS {
            return Err(DcsError::invalid(
                "client_addrs",
                format!(
                    "names {} addresses; at most {MAX_KILL_ADDRS} per call",
                    addrs.len()
                ),
            ));
        }
        let mut wanted = Vec::with_capacity(addrs.len());
        let mut seen = HashSet::with_capacity(addrs.len());
        for (i, raw) in addrs.iter().enumerate() {
            let addr = normalize_client_addr(raw).ok_or_else(|| {
                DcsError::invalid(
                    format!("client_addrs[{i}]"),
                    format!(
                        "{:?} is not a client address; use ip:port or [ipv6]:port as ListClients shows it",
                        raw.chars().take(80).collect::<String>()
                    ),
                )
            })?;
            if seen.insert(addr.clone()) {
                wanted.push(addr);
            }
        }
        let clients = self
            .data
            .list_clients(&node)
            .await
            .map_err(|e| Self::node_error(&node, e))?;
        let by_addr: HashMap<&str, &ClientRecord> =
            clients.iter().map(|c| (c.addr.as_str(), c)).collect();
        let mut targets = Vec::new();
        let mut gone = 0;
        for addr in &wanted {
            match by_addr.get(addr.as_str()) {
                Some(c) if c.own => {
                    return Err(DcsError::OwnConnection {
                        node: node.id.clone(),
                        addr: addr.clone(),
                    })
                }
                Some(c) => targets.push(KillTarget {
                    id: c.id,
                    addr: c.addr.clone(),
                }),
                None => gone += 1,
            }
        }
        let ids: HashSet<u64> = targets.iter().map(|t| t.id).collect();
        let killed = if targets.is_empty() {
            Vec::new()
        } else {
            self.data
                .kill_clients(&node, targets)
                .await
                .map_err(|e| Self::node_error(&node, e))?
        };
        let killed_count = killed.iter().filter(|k| **k).count();
        self.forget_clients(&instance.id, &node.id, &ids);
        Ok(KillReport {
            killed: killed_count,
            already_gone: gone + (killed.len() - killed_count),
        })
    }

    /// Drops killed connections from the node's snapshot, so a listing after a kill does not
    /// show them.
    fn forget_clients(&self, instance_id: &str, node_id: &str, ids: &HashSet<u64>) {
        if ids.is_empty() {
            return;
        }
        let mut state = self.state.lock();
        if let Some(snapshot) = state
            .snapshots
            .get_mut(&(instance_id.to_string(), node_id.to_string()))
        {
            let kept: Vec<ClientRecord> = snapshot
                .clients
                .iter()
                .filter(|c| !ids.contains(&c.id))
                .cloned()
                .collect();
            snapshot.clients = Arc::new(kept);
        }
    }

    /// Starts a background job that kills every client connection (but sessiond's own and
    /// replication links) of one node, or of every node of the instance. Returns once the
    /// job is recorded durably.
    pub async fn kill_all_clients(
        self: &Arc<Self>,
        project: &AccountId,
        instance_id: &str,
        node_id: Option<&str>,
        all_nodes: bool,
    ) -> Result<Job, DcsError> {
        let instance = self.instance(project, instance_id)?;
        let nodes: Vec<Node> = match (node_id, all_nodes) {
            (Some(id), _) if !id.is_empty() => {
                let node = Self::node(&instance, id)?;
                if all_nodes {
                    instance.nodes.clone()
                } else {
                    vec![node]
                }
            }
            (_, true) => instance.nodes.clone(),
            (_, false) => {
                return Err(DcsError::invalid(
                    "node_id",
                    "is required unless kill_all_nodes is true",
                ))
            }
        };
        let job = self.new_job(
            project,
            JobKind::KillAllClients,
            &instance,
            nodes.iter().map(|n| n.id.clone()).collect(),
        );
        self.create_job(job.clone()).await?;
        let service = self.clone();
        let job_id = job.id.clone();
        let instance_id = instance.id.clone();
        tokio::spawn(async move {
            let mut killed = 0u64;
            let mut failures = Vec::new();
            for node in &nodes {
                match service.kill_all_on(&instance_id, node).await {
                    Ok(n) => killed += n,
                    Err(err) => failures.push(err.to_string()),
                }
            }
            let failure = (!failures.is_empty()).then(|| failures.join("; "));
            if let Err(err) = service.finish_job(&job_id, killed, failure).await {
                tracing::error!(job = %job_id, error = %err, "cannot record the end of a DCS job");
            }
        });
        Ok(job)
    }

    async fn kill_all_on(&self, instance_id: &str, node: &Node) -> Result<u64, DcsError> {
        let clients = self
            .data
            .list_clients(node)
            .await
            .map_err(|e| Self::node_error(node, e))?;
        let targets: Vec<KillTarget> = clients
            .iter()
            .filter(|c| !c.own && !c.is_replication_link())
            .map(|c| KillTarget {
                id: c.id,
                addr: c.addr.clone(),
            })
            .collect();
        let ids: HashSet<u64> = targets.iter().map(|t| t.id).collect();
        let mut killed = 0u64;
        for chunk in targets.chunks(KILL_CHUNK) {
            let result = self
                .data
                .kill_clients(node, chunk.to_vec())
                .await
                .map_err(|e| Self::node_error(node, e))?;
            killed += result.iter().filter(|k| **k).count() as u64;
        }
        self.forget_clients(instance_id, &node.id, &ids);
        Ok(killed)
    }
}

/// The `addr` filter of a listing.
enum AddrFilter {
    Any,
    Exact(String),
    Ip(String),
    Contains(String),
}

impl AddrFilter {
    fn new(value: Option<&str>) -> AddrFilter {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return AddrFilter::Any;
        };
        if let Some(addr) = normalize_client_addr(value) {
            return AddrFilter::Exact(addr);
        }
        let bare = value.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => AddrFilter::Ip(format!("{ip}:")),
            Ok(IpAddr::V6(ip)) => AddrFilter::Ip(format!("[{ip}]:")),
            Err(_) => AddrFilter::Contains(value.to_string()),
        }
    }

    fn matches(&self, addr: &str) -> bool {
        match self {
            AddrFilter::Any => true,
            AddrFilter::Exact(a) => addr == a,
            AddrFilter::Ip(prefix) => addr.starts_with(prefix.as_str()),
            AddrFilter::Contains(s) => addr.contains(s.as_str()),
        }
    }
}

#[cfg(test)]
mod tests;
