//! DCDB service tests against an in-memory data plane.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sessiond_store::SqliteStore;

use super::*;
use crate::clock::ManualClock;
use crate::dcdb::plane::{KillResult, NodeConnection, PlaneFuture, ShardSessions, Thread};
use crate::AccountId;

#[derive(Default)]
struct FakeServer {
    threads: BTreeMap<u64, Thread>,
    /// Kills of these are accepted but the thread stays (as "Killed").
    lingering: HashSet<u64>,
    /// Kills of these are refused (1095).
    denied: HashSet<u64>,
    /// These run but are not visible in the process list (no PROCESS privilege).
    invisible: HashSet<u64>,
    refuse_connect: Option<String>,
    hang_connect: bool,
    next_id: u64,
    kills: Vec<u64>,
}

#[derive(Default, Clone)]
struct FakePlane {
    servers: Arc<Mutex<BTreeMap<String, FakeServer>>>,
}

impl FakePlane {
    fn server(&self, node: &str) -> parking_lot::MappedMutexGuard<'_, FakeServer> {
        parking_lot::MutexGuard::map(self.servers.lock(), |m| {
            m.entry(node.to_string()).or_insert_with(|| FakeServer {
                next_id: 1000,
                ..FakeServer::default()
            })
        })
    }

    fn add(&self, node: &str, id: u64, user: &str, command: &str) {
        self.server(node).threads.insert(
            id,
            Thread {
                id,
                user: user.into(),
                command: command.into(),
                state: String::new(),
            },
        );
    }

    fn alive(&self, node: &str) -> Vec<u64> {
        self.server(node).threads.keys().copied().collect()
    }
}

struct FakeConn {
    plane: FakePlane,
    node: String,
    own: u64,
}

impl ShardSessions for FakePlane {
    fn connect(&self, node: &NodeKey) -> PlaneFuture<'static, Box<dyn NodeConnection>> {
        let plane = self.clone();
        let node = node.node_id.clone();
        Box::pin(async move {
            let (refuse, hang) = {
                let s = plane.server(&node);
                (s.refuse_connect.clone(), s.hang_connect)
            };
            if hang {
                std::future::pending::<()>().await;
            }
            if let Some(reason) = refuse {
                return Err(reason);
            }
            let own = {
                let mut s = plane.server(&node);
                s.next_id += 1;
                let id = s.next_id;
                s.threads.insert(
                    id,
                    Thread {
                        id,
                        user: "sessiond".into(),
                        command: "Query".into(),
                        state: String::new(),
                    },
                );
                id
            };
            Ok(Box::new(FakeConn { plane, node, own }) as Box<dyn NodeConnection>)
        })
    }
}

impl NodeConnection for FakeConn {
    fn own_ids(&self) -> Vec<u64> {
        vec![self.own]
    }

    fn threads<'a>(&'a mut self, ids: &'a [u64]) -> PlaneFuture<'a, Vec<Thread>> {
        let s = self.plane.server(&self.node);
        let rows = ids
            .iter()
            .filter(|id| !s.invisible.contains(id))
            .filter_map(|id| s.threads.get(id).cloned())
            .collect();
        Box::pin(async move { Ok(rows) })
    }

    fn kill(&mut self, id: u64) -> PlaneFuture<'_, KillResult> {
        let mut s = self.plane.server(&self.node);
        s.kills.push(id);
        let result = if s.denied.contains(&id) {
            KillResult::Denied(format!("You are not owner of thread {id}"))
        } else if s.lingering.contains(&id) {
            if let Some(t) = s.threads.get_mut(&id) {
                t.command = "Killed".into();
                KillResult::Killed
            } else {
                KillResult::NoSuchThread
            }
        } else if s.threads.remove(&id).is_some() {
            KillResult::Killed
        } else {
            KillResult::NoSuchThread
        };
        Box::pin(async move { Ok(result) })
    }

    fn close(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.plane.server(&self.node).threads.remove(&self.own);
        Box::pin(async {})
    }
}

const A: &str = "100000000001";
const B: &str = "100000000002";
const INSTANCE: &str = "tdsqlshard-2gk4nxyz";

fn caller(account: &str) -> Caller {
    Caller {
        account: AccountId(account.into()),
        region: String::new(),
    }
}

fn node(id: &str, role: NodeRole) -> Node {
    Node {
        node_id: id.into(),
        role,
        zone: "ap-guangzhou-3".into(),
    }
}

fn shard(id: &str, serial: &str, nodes: Vec<Node>) -> Shard {
    Shard {
        shard_instance_id: id.into(),
        shard_serial_id: serial.into(),
        numeric_id: 1,
        memory_gb: 2,
        storage_gb: 10,
        cpu: 1,
        protected_users: vec!["shardguard".into()],
        nodes,
        created_ms: 0,
    }
}

fn instance(id: &str, account: &str, name: &str, shards: Vec<Shard>) -> Instance {
    Instance {
        id: id.into(),
        name: name.into(),
        account: AccountId(account.into()),
        region: "ap-guangzhou".into(),
        zone: "ap-guangzhou-3".into(),
        project_id: 0,
        vip: "10.0.0.1".into(),
        vport: 3306,
        db_engine: "MariaDB".into(),
        db_version: "10.11".into(),
        memory_gb: 2,
        storage_gb: 10,
        cpu: 1,
        protected_users: vec!["repl".into()],
        shards,
        created_ms: 0,
    }
}

fn inventory() -> Vec<Instance> {
    vec![
        instance(
            INSTANCE,
            A,
            "orders",
            vec![
                shard(
                    "shard-aaaaaaaa",
                    "set_1643096858_1",
                    vec![node("m1", NodeRole::Master), node("r1", NodeRole::Replica)],
                ),
                shard(
                    "shard-bbbbbbbb",
                    "set_1643096858_2",
                    vec![node("m2", NodeRole::Master)],
                ),
            ],
        ),
        instance(
            "dcdbt-ow728lmc",
            B,
            "billing",
            vec![shard(
                "shard-cccccccc",
                "set_1643096858_1",
                vec![node("m3", NodeRole::Master)],
            )],
        ),
    ]
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    plane: FakePlane,
    service: Arc<DcdbService>,
}

fn fast() -> DcdbConfig {
    DcdbConfig {
        kill_wait: Duration::from_millis(300),
        task_timeout: Duration::from_secs(5),
        ..DcdbConfig::default()
    }
}

async fn fixture(config: DcdbConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let plane = FakePlane::default();
    let service = DcdbService::open(
        config,
        inventory(),
        store.clone(),
        clock.clone(),
        Arc::new(plane.clone()),
    )
    .await
    .unwrap();
    Fixture {
        _dir: dir,
        store,
        clock,
        plane,
        service,
    }
}

fn kill(shard: &str, sessions: &[u64]) -> KillRequest {
    KillRequest {
        instance_id: INSTANCE.into(),
        shard_instance_id: Some(shard.into()),
        sessions: sessions.to_vec(),
        ..KillRequest::default()
    }
}

async fn finished(service: &DcdbService, account: &str, id: u64) -> KillTask {
    for _ in 0..500 {
        let t = service.describe_flow(&caller(account), id).unwrap();
        if t.state != TaskState::Running {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} never finished");
}

#[tokio::test]
async fn kills_exactly_the_listed_sessions_on_the_named_shard() {
    let f = fixture(fast()).await;
    for id in [10, 11, 12] {
        f.plane.add("m1", id, "app", "Sleep");
        f.plane.add("m2", id, "app", "Sleep");
    }
    let id = f
        .service
        .kill_session(&caller(A), kill("shard-aaaaaaaa", &[10, 11, 11, 99]))
        .await
        .unwrap();
    let t = finished(&f.service, A, id).await;
    assert_eq!(t.state, TaskState::Succeeded, "{}", t.message);
    assert_eq!(t.listed, 3, "duplicates removed");
    assert_eq!((t.killed, t.absent, t.failed), (2, 1, 0));
    assert_eq!(f.plane.alive("m1"), vec![12]);
    assert_eq!(
        f.plane.alive("m2"),
        vec![10, 11, 12],
        "other shard untouched"
    );
    assert_eq!(
        t.message,
        "all 3 listed session(s) are gone: 2 killed, 1 already absent"
    );
    // By serial id, and both ids naming the same shard.
    let req = KillRequest {
        instance_id: INSTANCE.into(),
        shard_instance_id: Some("shard-bbbbbbbb".into()),
        shard_serial_id: Some("set_1643096858_2".into()),
        sessions: vec![12],
        node_id: None,
    };
    let id2 = f.service.kill_session(&caller(A), req).await.unwrap();
    assert_eq!(id2, id + 1);
    assert_eq!(
        finished(&f.service, A, id2).await.state,
        TaskState::Succeeded
    );
    assert_eq!(f.plane.alive("m2"), vec![10, 11]);
}

#[tokio::test]
async fn protected_sessions_are_never_killed() {
    let f = fixture(fast()).await;
    f.plane.add("m1", 1, "system user", "Slave_SQL");
    f.plane.add("m1", 2, "event_scheduler", "Daemon");
    f.plane.add("m1", 3, "repl", "Binlog Dump GTID");
    f.plane.add("m1", 4, "repl", "Sleep"); // instance-level protected user
    f.plane.add("m1", 5, "shardguard", "Sleep"); // shard-level protected user
    f.plane.add("m1", 6, "app", "Sleep");
    let id = f
        .service
        .kill_session(&caller(A), kill("shard-aaaaaaaa", &[1, 2, 3, 4, 5, 6]))
        .await
        .unwrap();
    let t = finished(&f.service, A, id).await;
    assert_eq!(t.state, TaskState::Failed);
    assert_eq!((t.killed, t.failed), (1, 5));
    for (id, reason) in [
        (1, "it is a system thread"),
        (2, "it is the event scheduler"),
        (
            3,
            "it is a replication thread serving a replica (command 'Binlog Dump GTID')",
        ),
    ] {
        assert!(
            t.message
                .contains(&format!("session {id}: protected: {reason}")),
            "{}",
            t.message
        );
    }
    assert!(
        t.message.contains("its user 'repl' is protected"),
        "{}",
        t.message
    );
    assert!(t.message.contains("its user 'shardguard' is protected"));
    assert_eq!(f.plane.alive("m1"), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        f.plane.server("m1").kills,
        vec![6],
        "no KILL sent for protected"
    );
}

#[tokio::test]
async fn own_connection_is_protected() {
    let f = fixture(fast()).await;
    // The fake gives sessiond's connection the next id: 1001.
    let id = f
        .service
        .kill_session(&caller(A), kill("shard-aaaaaaaa", &[1001]))
        .await
        .unwrap();
    let t = finished(&f.service, A, id).await;
    assert_eq!(t.state, TaskState::Failed);
    assert!(
        t.message.contains("sessiond's own connection"),
        "{}",
        t.message
    );
    assert!(f.plane.server("m1").kills.is_empty());
}

#[tokio::test]
async fn unreachable_denied_lingering_and_invisible() {
    let f = fixture(fast()).await;
    f.plane.server("m2").refuse_connect =
        Some("cannot connect to 127.0.0.1:1: connection refused".into());
    let id = f
        .service
        .kill_session(&caller(A), kill("shard-bbbbbbbb", &[1, 2]))
        .await
        .unwrap();
    let t = finished(&f.service, A, id).await;
    assert_eq!(t.state, TaskState::Failed);
    assert_eq!(t.failed, 2);
    assert!(
        t.message
            .contains("sessions 1, 2: cannot connect to 127.0.0.1:1: connection refused"),
        "{}",
        t.message
    );

    f.plane.add("m1", 7, "other", "Sleep");
    f.plane.server("m1").denied.insert(7);
    f.plane.add("m1", 8, "app", "Query");
    f.plane.server("m1").lingering.insert(8);
    f.plane.add("m1", 9, "app", "Sleep");
    f.plane.server("m1").invisible.insert(9);
    let id = f
        .service
        .kill_session(&caller(A), kill("shard-aaaaaaaa", &[7, 8, 9]))
        .await
        .unwrap();
    let t = finished(&f.service, A, id).await;
    assert_eq!(t.state, TaskState::Failed);
    assert_eq!((t.killed, t.failed), (0, 3));
    for want in [
        "session 7: the server refused the KILL: You are not owner of thread 7",
        "session 8: KILL was sent, but the session was still present 300 ms later (command 'Killed'",
        "session 9: killed, but it was not visible in the process list beforehand",
        "PROCESS privilege",
    ] {
        assert!(t.message.contains(want), "want {want:?} in {}", t.message);
    }
    assert!(!f.plane.alive("m1").contains(&9));
}

#[tokio::test]
async fn a_hung_node_fails_the_task_within_its_timeout() {
    let f = fixture(DcdbConfig {
        task_timeout: Duration::from_millis(200),
        ..fast()
    })
    .await;
    f.plane.server("m1").hang_connect = true;
    let started = std::time::Instant::now();
    let id = f
        .service
        .kill_session(&caller(A), kill("shard-aaaaaaaa", &[1]))
        .await
        .unwrap();
    assert_eq!(
        f.service.describe_flow(&caller(A), id).unwrap().state,
        TaskState::Running
    );
    let t = finished(&f.service, A, id).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(t.state, TaskState::Failed);
    assert!(
        t.message.contains("did not finish within 0.2 s"),
        "{}",
        t.message
    );
}

#[tokio::test]
async fn validation_and_isolation() {
    let f = fixture(fast()).await;
    let a = caller(A);
    let err = |r: Result<u64, DcdbError>| r.unwrap_err();
    let mut req = kill("shard-aaaaaaaa", &[1]);
    req.instance_id = "dcdbt-ow728lmc".into(); // account B's
    assert_eq!(
        err(f.service.kill_session(&a, req).await),
        DcdbError::InstanceNotFound("dcdbt-ow728lmc".into())
    );
    let mut req = kill("shard-aaaaaaaa", &[1]);
    req.instance_id = "tdsqlshard-nope0000".into();
    assert!(matches!(
        err(f.service.kill_session(&a, req).await),
        DcdbError::InstanceNotFound(_)
    ));
    // Another instance's shard.
    assert!(matches!(
        err(f
            .service
            .kill_session(&a, kill("shard-cccccccc", &[1]))
            .await),
        DcdbError::ShardNotFound { .. }
    ));
    let mut req = kill("shard-aaaaaaaa", &[1]);
    req.shard_instance_id = None;
    assert!(matches!(
        err(f.service.kill_session(&a, req).await),
        DcdbError::MissingShard(_)
    ));
    let mut req = kill("shard-aaaaaaaa", &[1]);
    req.shard_serial_id = Some("set_1643096858_2".into());
    let e = err(f.service.kill_session(&a, req).await);
    assert!(
        matches!(&e, DcdbError::ShardMismatch(m) if m.contains("shard-aaaaaaaa") && m.contains("set_1643096858_2")),
        "{e}"
    );
    let mut req = kill("shard-aaaaaaaa", &[1]);
    req.node_id = Some("m2".into()); // a node of another shard
    assert!(matches!(
        err(f.service.kill_session(&a, req).await),
        DcdbError::NodeNotFound { .. }
    ));
    assert!(matches!(
        err(f
            .service
            .kill_session(&a, kill("shard-aaaaaaaa", &[]))
            .await),
        DcdbError::InvalidSessions(_)
    ));
    let many: Vec<u64> = (1..=1001).collect();
    assert!(matches!(
        err(f
            .service
            .kill_session(&a, kill("shard-aaaaaaaa", &many))
            .await),
        DcdbError::InvalidSessions(_)
    ));
    // A replica chosen by NodeId.
    f.plane.add("r1", 5, "app", "Sleep");
    f.plane.add("m1", 5, "app", "Sleep");
    let mut req = kill("shard-aaaaaaaa", &[5]);
    req.node_id = Some("r1".into());
    let id = f.service.kill_session(&a, req).await.unwrap();
    assert_eq!(
        finished(&f.service, A, id).await.state,
        TaskState::Succeeded
    );
    assert_eq!(f.plane.alive("r1"), Vec::<u64>::new());
    assert_eq!(f.plane.alive("m1"), vec![5]);
    // Another account's flow is not found.
    assert_eq!(
        f.service.describe_flow(&caller(B), id).unwrap_err(),
        DcdbError::FlowNotFound(id)
    );
    assert_eq!(
        f.service.describe_flow(&a, 424242).unwrap_err(),
        DcdbError::FlowNotFound(424242)
    );
}

#[tokio::test]
async fn interrupted_tasks_are_failed_on_open_and_ids_keep_growing() {
    let f = fixture(fast()).await;
    f.plane.server("m1").hang_connect = true;
    let id = f
        .service
        .kill_session(&caller(A), kill("shard-aaaaaaaa", &[1, 2]))
        .await
        .unwrap();
    assert_eq!(f.service.running_tasks(), 1);
    // "Crash": open a second service on the same store.
    let reopened = DcdbService::open(
        fast(),
        inventory(),
        f.store.clone(),
        f.clock.clone(),
        Arc::new(FakePlane::default()),
    )
    .await
    .unwrap();
    let t = reopened.describe_flow(&caller(A), id).unwrap();
    assert_eq!(t.state, TaskState::Failed);
    assert!(t
        .message
        .contains("sessiond stopped while this task was running"));
    assert_eq!(reopened.running_tasks(), 0);
    let next = reopened
        .kill_session(&caller(A), kill("shard-bbbbbbbb", &[1]))
        .await
        .unwrap();
    assert_eq!(next, id + 1);
    // The failed mark itself is durable.
    let again = DcdbService::open(
        fast(),
        inventory(),
        f.store.clone(),
        f.clock.clone(),
        Arc::new(FakePlane::default()),
    )
    .await
    .unwrap();
    assert_eq!(
        again.describe_flow(&caller(A), id).unwrap().message,
        t.message
    );
}

#[tokio::test]
async fn finished_tasks_expire_after_the_retention() {
    let f = fixture(DcdbConfig {
        task_retention: Duration::from_secs(3600),
        ..fast()
    })
    .await;
    let first = f
        .service
        .kill_session(&caller(A), kill("shard-aaaaaaaa", &[1]))
        .await
        .unwrap();
    finished(&f.service, A, first).await;
    f.clock.advance_ms(3_600_001);
    let second = f
        .service
        .kill_session(&caller(A), kill("shard-aaaaaaaa", &[1]))
        .await
        .unwrap();
    assert_eq!(
        f.service.describe_flow(&caller(A), first).unwrap_err(),
        DcdbError::FlowNotFound(first)
    );
    assert!(f.service.describe_flow(&caller(A), second).is_ok());
}

#[tokio::test]
async fn at_most_max_tasks_finished_tasks_are_kept() {
    let f = fixture(DcdbConfig {
        max_tasks: 3,
        ..fast()
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = f
            .service
            .kill_session(&caller(A), kill("shard-aaaaaaaa", &[1]))
            .await
            .unwrap();
        finished(&f.service, A, id).await;
        ids.push(id);
    }
    let kept: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| f.service.describe_flow(&caller(A), *id).is_ok())
        .collect();
    assert_eq!(kept, ids[2..].to_vec());
    // The store agrees after a restart.
    let reopened = DcdbService::open(
        fast(),
        inventory(),
        f.store.clone(),
        f.clock.clone(),
        Arc::new(FakePlane::default()),
    )
    .await
    .unwrap();
    assert!(reopened.describe_flow(&caller(A), ids[1]).is_err());
    assert!(reopened.describe_flow(&caller(A), ids[2]).is_ok());
}

#[tokio::test]
async fn inventory_listing_paging_and_first_seen_times() {
    let f = fixture(fast()).await;
    let a = caller(A);
    let all = f.service.describe_instances(
        &a,
        &InstanceQuery {
            limit: 10,
            ..InstanceQuery::default()
        },
    );
    assert_eq!(all.total, 1);
    assert_eq!(all.items[0].id, INSTANCE);
    assert_eq!(all.items[0].created_ms, 1_700_000_000_000);
    let search = |keys: &[&str], field| {
        f.service
            .describe_instances(
                &a,
                &InstanceQuery {
                    search_keys: keys.iter().map(|s| s.to_string()).collect(),
                    search_field: field,
                    limit: 10,
                    ..InstanceQuery::default()
                },
            )
            .total
    };
    assert_eq!(search(&["ORD"], SearchField::Name), 1);
    assert_eq!(search(&["nothing", "2gk4"], SearchField::All), 1);
    assert_eq!(search(&["2gk4"], SearchField::Name), 0);
    assert_eq!(search(&["10.0.0"], SearchField::Vip), 1);
    assert_eq!(search(&["billing"], SearchField::All), 0, "B's instance");
    let (_, shards) = f
        .service
        .describe_shards(&a, INSTANCE, &[], false, 1, 20)
        .unwrap();
    assert_eq!(shards.total, 2);
    assert_eq!(shards.items.len(), 1);
    assert_eq!(shards.items[0].shard_instance_id, "shard-bbbbbbbb");
    let nodes = f.service.describe_nodes(&a, INSTANCE, 0, 100).unwrap();
    let ids: Vec<&str> = nodes
        .items
        .iter()
        .map(|(_, n)| n.node_id.as_str())
        .collect();
    assert_eq!(ids, ["m1", "r1", "m2"]);
    assert!(f
        .service
        .describe_nodes(&caller(B), INSTANCE, 0, 100)
        .is_err());

    // First-seen times survive a restart; a newly declared instance gets the new time.
    f.clock.advance_ms(60_000);
    let mut inv = inventory();
    inv.push(instance(
        "tdsqlshard-newone00",
        A,
        "later",
        vec![shard(
            "shard-dddddddd",
            "set_1_1",
            vec![node("m4", NodeRole::Master)],
        )],
    ));
    let reopened = DcdbService::open(
        fast(),
        inv,
        f.store.clone(),
        f.clock.clone(),
        Arc::new(FakePlane::default()),
    )
    .await
    .unwrap();
    let page = reopened.describe_instances(
        &a,
        &InstanceQuery {
            descending: true,
            limit: 10,
            ..InstanceQuery::default()
        },
    );
    let got: Vec<(&str, i64)> = page
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.created_ms))
        .collect();
    assert_eq!(
        got,
        [
            ("tdsqlshard-newone00", 1_700_000_060_000),
            (INSTANCE, 1_700_000_000_000)
        ]
    );
}

#[tokio::test]
async fn inconsistent_inventories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let open = |inv: Vec<Instance>| {
        let store = store.clone();
        async move {
            DcdbService::open(
                fast(),
                inv,
                store,
                Arc::new(ManualClock::new(0)),
                Arc::new(FakePlane::default()),
            )
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        }
    };
    let mut twice = inventory();
    twice.push(twice[0].clone());
    assert!(open(twice).await.contains("declared twice"));
    let mut bad = inventory();
    bad[0].id = "tdsql-1".into();
    assert!(open(bad).await.contains("is not tdsqlshard-<8>"));
    let mut bad = inventory();
    bad[0].shards[1].nodes[0].role = NodeRole::Replica;
    assert!(open(bad).await.contains("0 masters"));
    let mut bad = inventory();
    bad[0].shards[1].nodes[0].node_id = "m1".into();
    assert!(open(bad).await.contains("node id m1 is used twice"));
    let mut bad = inventory();
    bad[0].shards[1].shard_serial_id = "set_1643096858_1".into();
    assert!(open(bad).await.contains("used twice"));
}
