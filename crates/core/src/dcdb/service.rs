//! The DCDB service: the declared inventory (read-only while running) and kill tasks, which
//! are persisted as one store row each (`dcdb.tasks`) and run in the background.
//!
//! A task is written (Running) and durable before KillSession answers with its id; the kills
//! then run on a tokio task and the final state is written when they end. On start, a task
//! still Running in the store was interrupted by a crash or stop: it is marked Failed with a
//! reason (its kills may or may not have happened; they are never re-run, since a restarted
//! database server may have given the same thread ids to other sessions).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sessiond_store::{Store, Write};

use super::error::DcdbError;
use super::ids;
use super::model::*;
use super::plane::ShardSessions;
use super::task::{self, KillTiming};
use crate::{Caller, Clock};

const TASKS: &str = "dcdb.tasks";
const META: &str = "dcdb.meta";
const NEXT_TASK_KEY: &str = "next_task_id";
const FIRST_SEEN: &str = "dcdb.first_seen";

/// Most session ids one KillSession may list.
pub const MAX_KILL_SESSIONS: usize = 1000;

#[derive(Debug, Clone)]
pub struct DcdbConfig {
    /// How long killed sessions may take to leave the process list before the task fails.
    pub kill_wait: Duration,
    /// Upper bound of one whole task (connect, list, kills, wait), on top of the data plane's
    /// own connect and query timeouts.
    pub task_timeout: Duration,
    /// Finished tasks older than this are forgotten (DescribeFlow then answers not found).
    pub task_retention: Duration,
    /// At most this many finished tasks are kept (the oldest are forgotten first).
    pub max_tasks: usize,
    /// First pause between process-list polls while waiting for killed sessions to end.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

impl Default for DcdbConfig {
    fn default() -> Self {
        DcdbConfig {
            kill_wait: Duration::from_secs(10),
            task_timeout: Duration::from_secs(60),
            task_retention: Duration::from_secs(7 * 24 * 3600),
            max_tasks: 10_000,
            first_poll: Duration::from_millis(2),
            max_poll: Duration::from_millis(100),
        }
    }
}

/// What KillSession names.
#[derive(Debug, Clone, Default)]
pub struct KillRequest {
    pub instance_id: String,
    pub shard_instance_id: Option<String>,
    pub shard_serial_id: Option<String>,
    /// A node of the shard (default: its master).
    pub node_id: Option<String>,
    pub sessions: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstanceSort {
    #[default]
    CreateTime,
    Name,
    ProjectId,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchField {
    Name,
    Vip,
    #[default]
    All,
}

/// Which instances DescribeDCDBInstances returns, in which order.
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    /// Any of these ids (empty: any).
    pub ids: Vec<String>,
    /// Case-insensitive substrings; an instance matches if any key is found in the field.
    pub search_keys: Vec<String>,
    pub search_field: SearchField,
    /// Any of these projects (empty: any).
    pub project_ids: Vec<i64>,
    /// A filter no declared instance can satisfy was given (VPC, tags, dedicated cluster,
    /// another status or type): the answer is empty.
    pub match_nothing: bool,
    pub sort: InstanceSort,
    pub descending: bool,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page {
            items: Vec::new(),
            total: 0,
        }
    }
}

fn page<T: Clone>(items: &[T], offset: usize, limit: usize) -> Page<T> {
    let start = offset.min(items.len());
    let end = start.saturating_add(limit).min(items.len());
    Page {
        items: items[start..end].to_vec(),
        total: items.len(),
    }
}

#[derive(Default)]
struct State {
    tasks: BTreeMap<u64, KillTask>,
    next_id: u64,
}

pub struct DcdbService {
    config: DcdbConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    plane: Arc<dyn ShardSessions>,
    /// Declared instances by id.
    instances: BTreeMap<String, Instance>,
    state: Mutex<State>,
}

fn task_key(id: u64) -> String {
    // Zero-padded so the store's key order is the id order.
    format!("{id:020}")
}

fn encode_task(task: &KillTask) -> Write {
    // Serialising a plain struct to JSON cannot fail.
    Write::put(
        TASKS,
        task_key(task.id),
        serde_json::to_vec(task).unwrap_or_default(),
    )
}

/// Checks the declared inventory: formats, unique ids, one master per shard.
fn check_inventory(instances: &[Instance]) -> Result<(), DcdbError> {
    let bad = |m: String| Err(DcdbError::Inventory(m));
    let mut instance_ids = HashSet::new();
    let mut shard_ids = HashSet::new();
    let mut node_ids = HashSet::new();
    for i in instances {
        if !ids::is_instance_id(&i.id) {
            return bad(format!(
                "instance id {:?} is not tdsqlshard-<8> or dcdbt-<8> (lower-case letters and digits)",
                i.id
            ));
        }
        if !instance_ids.insert(i.id.as_str()) {
            return bad(format!("instance {} is declared twice", i.id));
        }
        if i.shards.is_empty() {
            return bad(format!("instance {} has no shard", i.id));
        }
        let mut serials = HashSet::new();
        for s in &i.shards {
            if !ids::is_shard_instance_id(&s.shard_instance_id) {
                return bad(format!(
                    "shard id {:?} of instance {} is not shard-<8>",
                    s.shard_instance_id, i.id
                ));
            }
            if !ids::is_shard_serial_id(&s.shard_serial_id) {
                return bad(format!(
                    "shard serial id {:?} of instance {} is not set_<seconds>_<n>",
                    s.shard_serial_id, i.id
                ));
            }
            if !shard_ids.insert(s.shard_instance_id.as_str()) {
                return bad(format!("shard {} is declared twice", s.shard_instance_id));
            }
            if !serials.insert(s.shard_serial_id.as_str()) {
                return bad(format!(
                    "shard serial id {} is used twice in instance {}",
                    s.shard_serial_id, i.id
                ));
            }
            let masters = s
                .nodes
                .iter()
                .filter(|n| n.role == NodeRole::Master)
                .count();
            if masters != 1 {
                return bad(format!(
                    "shard {} has {masters} masters; it needs exactly one",
                    s.shard_instance_id
                ));
            }
            for n in &s.nodes {
                if !ids::is_node_id(&n.node_id) {
                    return bad(format!(
                        "node id {:?} of shard {} is not 1 to 64 letters, digits, '_', '.' or '-'",
                        n.node_id, s.shard_instance_id
                    ));
                }
                if !node_ids.insert(n.node_id.as_str()) {
                    return bad(format!("node id {} is used twice", n.node_id));
                }
            }
        }
    }
    Ok(())
}

impl DcdbService {
    /// Checks the inventory, loads tasks and first-seen times from the store, and marks tasks
    /// interrupted by the previous run as failed (durably) before returning.
    pub async fn open(
        config: DcdbConfig,
        instances: Vec<Instance>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        plane: Arc<dyn ShardSessions>,
    ) -> Result<Arc<DcdbService>, DcdbError> {
        check_inventory(&instances)?;
        let now = clock.now_ms();
        let mut writes = Vec::new();

        let mut seen: HashMap<String, i64> = HashMap::new();
        for (key, value) in store.load_table(FIRST_SEEN)? {
            let ms = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| DcdbError::Internal(format!("corrupt record {FIRST_SEEN}/{key}")))?;
            seen.insert(key, ms);
        }
        let mut first_seen = |key: String| -> i64 {
            *seen.entry(key.clone()).or_insert_with(|| {
                writes.push(Write::put(FIRST_SEEN, key, now.to_string().into_bytes()));
                now
            })
        };
        let mut by_id = BTreeMap::new();
        for mut instance in instances {
            instance.created_ms = first_seen(format!("instance/{}", instance.id));
            for shard in &mut instance.shards {
                shard.created_ms =
                    first_seen(format!("shard/{}/{}", instance.id, shard.shard_instance_id));
            }
            by_id.insert(instance.id.clone(), instance);
        }

        let mut state = State {
            next_id: 1,
            ..State::default()
        };
        if let Some(raw) = store.get(META, NEXT_TASK_KEY)? {
            state.next_id = std::str::from_utf8(&raw)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    DcdbError::Internal(format!("corrupt record {META}/{NEXT_TASK_KEY}"))
                })?;
        }
        for (key, value) in store.load_table(TASKS)? {
            let mut task: KillTask = serde_json::from_slice(&value)
                .map_err(|e| DcdbError::Internal(format!("corrupt record {TASKS}/{key}: {e}")))?;
            if task.state == TaskState::Running {
                task.state = TaskState::Failed;
                task.finished_ms = Some(now);
                task.message = format!(
                    "sessiond stopped while this task was running, so it cannot say which of the \
                     {} listed session(s) were killed; it is not resumed (the server may have \
                     reused thread ids meanwhile): check the process list and call KillSession again",
                    task.listed
                );
                tracing::warn!(
                    task = task.id,
                    "DCDB kill task interrupted by a restart; marked failed"
                );
                writes.push(encode_task(&task));
            }
            state.next_id = state.next_id.max(task.id + 1);
            state.tasks.insert(task.id, task);
        }
        if !writes.is_empty() {
            store.commit(writes).await?;
        }
        Ok(Arc::new(DcdbService {
            config,
            store,
            clock,
            plane,
            instances: by_id,
            state: Mutex::new(state),
        }))
    }

    /// An instance of the caller's account (another account's answers exactly like a missing one).
    pub fn instance(&self, caller: &Caller, id: &str) -> Result<&Instance, DcdbError> {
        self.instances
            .get(id)
            .filter(|i| i.account == caller.account)
            .ok_or_else(|| DcdbError::InstanceNotFound(id.to_string()))
    }

    fn resolve_shard<'a>(
        &self,
        instance: &'a Instance,
        shard_instance_id: Option<&str>,
        shard_serial_id: Option<&str>,
    ) -> Result<&'a Shard, DcdbError> {
        let by_id = shard_instance_id
            .map(|id| {
                instance
                    .shards
                    .iter()
                    .find(|s| s.shard_instance_id == id)
                    .ok_or_else(|| DcdbError::ShardNotFound {
                        instance: instance.id.clone(),
                        shard: id.to_string(),
                    })
            })
            .transpose()?;
        let by_serial = shard_serial_id
            .map(|id| {
                instance
                    .shards
                    .iter()
                    .find(|s| s.shard_serial_id == id)
                    .ok_or_else(|| DcdbError::ShardNotFound {
                        instance: instance.id.clone(),
                        shard: id.to_string(),
                    })
            })
            .transpose()?;
        match (by_id, by_serial) {
            (Some(a), Some(b)) if a.shard_instance_id != b.shard_instance_id => {
                Err(DcdbError::ShardMismatch(format!(
                    "ShardId {} and ShardSerialId {} name different shards ({} is {}); give one of them",
                    a.shard_instance_id, b.shard_serial_id, b.shard_serial_id, b.shard_instance_id
                )))
            }
            (Some(s), _) | (None, Some(s)) => Ok(s),
            (None, None) => Err(DcdbError::MissingShard(
                "either ShardId or ShardSerialId is required".into(),
            )),
        }
    }

    /// Validates, records the task durably (Running), starts the kills in the background and
    /// returns the task id.
    pub async fn kill_session(
        self: &Arc<Self>,
        caller: &Caller,
        req: KillRequest,
    ) -> Result<u64, DcdbError> {
        if req.shard_instance_id.is_none() && req.shard_serial_id.is_none() {
            return Err(DcdbError::MissingShard(
                "either ShardId or ShardSerialId is required".into(),
            ));
        }
        if req.sessions.is_empty() {
            return Err(DcdbError::InvalidSessions(
                "SessionId lists no session; give 1 to 1000 session ids".into(),
            ));
        }
        if req.sessions.len() > MAX_KILL_SESSIONS {
            return Err(DcdbError::InvalidSessions(format!(
                "SessionId lists {} sessions; at most {MAX_KILL_SESSIONS} per call",
                req.sessions.len()
            )));
        }
        let instance = self.instance(caller, &req.instance_id)?;
        let shard = self.resolve_shard(
            instance,
            req.shard_instance_id.as_deref(),
            req.shard_serial_id.as_deref(),
        )?;
        let node = match &req.node_id {
            Some(id) => shard
                .nodes
                .iter()
                .find(|n| &n.node_id == id)
                .ok_or_else(|| DcdbError::NodeNotFound {
                    shard: shard.shard_instance_id.clone(),
                    node: id.clone(),
                })?,
            None => shard
                .master()
                .ok_or_else(|| DcdbError::Internal("shard without master".into()))?,
        };
        let mut listed = HashSet::new();
        let sessions: Vec<u64> = req
            .sessions
            .iter()
            .copied()
            .filter(|s| listed.insert(*s))
            .collect();
        let key = NodeKey {
            instance_id: instance.id.clone(),
            shard_instance_id: shard.shard_instance_id.clone(),
            node_id: node.node_id.clone(),
        };
        let mut protected: Vec<String> = instance.protected_users.clone();
        protected.extend(shard.protected_users.iter().cloned());

        let now = self.clock.now_ms();
        let (id, commit) = {
            let mut state = self.state.lock();
            let id = state.next_id;
            state.next_id += 1;
            let task = KillTask {
                id,
                account: caller.account.clone(),
                instance_id: key.instance_id.clone(),
                shard_instance_id: key.shard_instance_id.clone(),
                node_id: key.node_id.clone(),
                listed: sessions.len(),
                state: TaskState::Running,
                killed: 0,
                absent: 0,
                failed: 0,
                message: format!("killing {} session(s)", sessions.len()),
                created_ms: now,
                finished_ms: None,
            };
            let mut writes = vec![
                encode_task(&task),
                Write::put(META, NEXT_TASK_KEY, state.next_id.to_string().into_bytes()),
            ];
            // Forget finished tasks past the retention period, and the oldest finished ones
            // beyond the count limit (tasks are in id order, which is creation order).
            let cutoff = now.saturating_sub(self.config.task_retention.as_millis() as i64);
            let excess = state
                .tasks
                .len()
                .saturating_sub(self.config.max_tasks.max(1) - 1);
            let expired: Vec<u64> = state
                .tasks
                .values()
                .filter(|t| t.state != TaskState::Running)
                .enumerate()
                .take_while(|(i, t)| *i < excess || t.created_ms < cutoff)
                .map(|(_, t)| t.id)
                .collect();
            for old in expired {
                state.tasks.remove(&old);
                writes.push(Write::delete(TASKS, task_key(old)));
            }
            state.tasks.insert(id, task);
            (id, self.store.commit(writes))
        };
        if let Err(err) = commit.await {
            tracing::error!(error = %err, task = id, "DCDB kill task not persisted");
            self.state.lock().tasks.remove(&id);
            return Err(err.into());
        }
        tracing::info!(
            task = id,
            instance = %key.instance_id,
            shard = %key.shard_instance_id,
            node = %key.node_id,
            sessions = sessions.len(),
            "DCDB kill task started"
        );
        let service = self.clone();
        tokio::spawn(async move { service.run_task(id, key, sessions, protected).await });
        Ok(id)
    }

    async fn run_task(&self, id: u64, key: NodeKey, sessions: Vec<u64>, protected: Vec<String>) {
        let timing = KillTiming {
            kill_wait: self.config.kill_wait,
            first_poll: self.config.first_poll,
            max_poll: self.config.max_poll,
        };
        let work = task::kill_on_node(&*self.plane, &key, &sessions, &protected, timing);
        let results = match tokio::time::timeout(self.config.task_timeout, work).await {
            Ok(results) => results,
            Err(_) => {
                let reason = format!(
                    "the task did not finish within {} s; some sessions may have been killed",
                    self.config.task_timeout.as_secs_f64()
                );
                sessions
                    .iter()
                    .map(|&s| (s, task::SessionResult::Failed(reason.clone())))
                    .collect()
            }
        };
        let summary = task::summarize(&results);
        let state = if summary.failed == 0 {
            TaskState::Succeeded
        } else {
            TaskState::Failed
        };
        match state {
            TaskState::Failed => {
                tracing::warn!(task = id, node = %key.node_id, message = %summary.message, "DCDB kill task failed")
            }
            _ => tracing::info!(task = id, message = %summary.message, "DCDB kill task done"),
        }
        let now = self.clock.now_ms();
        let commit = {
            let mut guard = self.state.lock();
            let Some(task) = guard.tasks.get_mut(&id) else {
                return;
            };
            task.state = state;
            task.killed = summary.killed;
            task.absent = summary.absent;
            task.failed = summary.failed;
            task.message = summary.message;
            task.finished_ms = Some(now);
            self.store.commit(vec![encode_task(task)])
        };
        if let Err(err) = commit.await {
            // Memory has the outcome; after a restart the task would be marked interrupted.
            tracing::error!(error = %err, task = id, "DCDB kill task outcome not persisted");
        }
    }

    /// A task of the caller's account.
    pub fn describe_flow(&self, caller: &Caller, id: u64) -> Result<KillTask, DcdbError> {
        self.state
            .lock()
            .tasks
            .get(&id)
            .filter(|t| t.account == caller.account)
            .cloned()
            .ok_or(DcdbError::FlowNotFound(id))
    }

    /// The caller's instances matching the query, one page of them.
    pub fn describe_instances(&self, caller: &Caller, query: &InstanceQuery) -> Page<Instance> {
        if query.match_nothing {
            return Page::default();
        }
        let keys: Vec<String> = query
            .search_keys
            .iter()
            .map(|k| k.trim().to_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        let found = |field: &str| {
            let field = field.to_lowercase();
            keys.iter().any(|k| field.contains(k.as_str()))
        };
        let mut items: Vec<Instance> = self
            .instances
            .values()
            .filter(|i| i.account == caller.account)
            .filter(|i| query.ids.is_empty() || query.ids.contains(&i.id))
            .filter(|i| query.project_ids.is_empty() || query.project_ids.contains(&i.project_id))
            .filter(|i| {
                keys.is_empty()
                    || match query.search_field {
                        SearchField::Name => found(&i.name),
                        SearchField::Vip => found(&i.vip),
                        SearchField::All => found(&i.id) || found(&i.name) || found(&i.vip),
                    }
            })
            .cloned()
            .collect();
        items.sort_by(|a, b| {
            let order = match query.sort {
                InstanceSort::CreateTime => a.created_ms.cmp(&b.created_ms),
                InstanceSort::Name => a.name.cmp(&b.name),
                InstanceSort::ProjectId => a.project_id.cmp(&b.project_id),
            };
            let order = if query.descending {
                order.reverse()
            } else {
                order
            };
            order.then_with(|| a.id.cmp(&b.id))
        });
        page(&items, query.offset, query.limit)
    }

    /// Shards of one of the caller's instances (optionally only these ids), by creation time
    /// (ties in declaration order), one page.
    pub fn describe_shards(
        &self,
        caller: &Caller,
        instance_id: &str,
        shard_ids: &[String],
        descending: bool,
        offset: usize,
        limit: usize,
    ) -> Result<(&Instance, Page<Shard>), DcdbError> {
        let instance = self.instance(caller, instance_id)?;
        let mut shards: Vec<Shard> = instance
            .shards
            .iter()
            .filter(|s| shard_ids.is_empty() || shard_ids.contains(&s.shard_instance_id))
            .cloned()
            .collect();
        // Stable sort: declaration order among equal times.
        shards.sort_by_key(|s| s.created_ms);
        if descending {
            shards.reverse();
        }
        Ok((instance, page(&shards, offset, limit)))
    }

    /// Nodes of one of the caller's instances: per shard the master, then its replicas.
    pub fn describe_nodes(
        &self,
        caller: &Caller,
        instance_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Page<(String, Node)>, DcdbError> {
        let instance = self.instance(caller, instance_id)?;
        let nodes: Vec<(String, Node)> = instance
            .shards
            .iter()
            .flat_map(|s| {
                s.nodes
                    .iter()
                    .map(|n| (s.shard_instance_id.clone(), n.clone()))
            })
            .collect();
        Ok(page(&nodes, offset, limit))
    }

    /// Running tasks (for tests and graceful stops).
    pub fn running_tasks(&self) -> usize {
        self.state
            .lock()
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Running)
            .count()
    }
}

#[cfg(test)]
mod tests;
