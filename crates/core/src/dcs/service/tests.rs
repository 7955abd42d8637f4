use std::time::Duration;

use sessiond_store::SqliteStore;

use super::*;
use crate::clock::ManualClock;
use crate::dcs::DataFuture;

type Hook = Box<dyn FnMut(&mut Vec<ClientRecord>) + Send>;

/// Redis nodes in memory: node address -> clients. A node can be down or hang.
#[derive(Default)]
struct FakeNodes {
    nodes: Mutex<HashMap<String, Vec<ClientRecord>>>,
    down: Mutex<HashSet<String>>,
    hang: Mutex<HashSet<String>>,
    /// Called between the list and the kill: lets a test reuse an address.
    after_list: Mutex<Option<Hook>>,
    kills: Mutex<Vec<(String, KillTarget)>>,
}

impl FakeNodes {
    fn clients(&self, address: &str) -> Vec<ClientRecord> {
        self.nodes.lock().get(address).cloned().unwrap_or_default()
    }

    fn check(&self, address: &str) -> Result<(), DataError> {
        if self.down.lock().contains(address) {
            return Err(DataError::Unreachable(format!(
                "cannot connect to {address}: connection refused"
            )));
        }
        Ok(())
    }
}

impl RedisNodes for Arc<FakeNodes> {
    fn list_clients(&self, node: &Node) -> DataFuture<Vec<ClientRecord>> {
        let this = self.clone();
        let address = node.address.clone();
        Box::pin(async move {
            if this.hang.lock().contains(&address) {
                std::future::pending::<()>().await;
            }
            this.check(&address)?;
            let list = this.clients(&address);
            if let Some(hook) = this.after_list.lock().as_mut() {
                if let Some(clients) = this.nodes.lock().get_mut(&address) {
                    hook(clients);
                }
            }
            Ok(list)
        })
    }

    fn kill_clients(&self, node: &Node, targets: Vec<KillTarget>) -> DataFuture<Vec<bool>> {
        let this = self.clone();
        let address = node.address.clone();
        Box::pin(async move {
            this.check(&address)?;
            let mut out = Vec::new();
            let mut nodes = this.nodes.lock();
            let clients = nodes.entry(address.clone()).or_default();
            for t in targets {
                this.kills.lock().push((address.clone(), t.clone()));
                let before = clients.len();
                clients.retain(|c| !(c.id == t.id && c.addr == t.addr));
                out.push(clients.len() < before);
            }
            Ok(out)
        })
    }

    fn info(&self, node: &Node) -> DataFuture<NodeInfo> {
        let this = self.clone();
        let address = node.address.clone();
        Box::pin(async move {
            this.check(&address)?;
            Ok(NodeInfo {
                redis_version: Some("7.0.15".into()),
                role: Some("master".into()),
                ..Default::default()
            })
        })
    }
}

const P1: &str = "project-one";
const P2: &str = "project-two";
const INST: &str = "3ee4d2e8-7d1a-4fb8-a9f0-1e1f2ad2c5e1";
const A: &str = "127.0.0.1:7001";
const B: &str = "127.0.0.1:7002";

fn node(id: &str, role: NodeRole, address: &str) -> Node {
    Node {
        id: id.into(),
        name: id.into(),
        role,
        group_id: "g0".into(),
        group_name: "g0".into(),
        address: address.into(),
        user: None,
        password: None,
        az_code: "local".into(),
        priority_weight: 100,
    }
}

fn instance() -> Instance {
    Instance {
        id: INST.into(),
        name: "cache".into(),
        project: AccountId(P1.into()),
        description: String::new(),
        nodes: vec![
            node("n1", NodeRole::Master, A),
            node("n2", NodeRole::Slave, B),
        ],
    }
}

fn client(id: u64, addr: &str) -> ClientRecord {
    ClientRecord {
        id,
        addr: addr.into(),
        flags: "N".into(),
        idle: (id % 7) as i64,
        ..Default::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    fake: Arc<FakeNodes>,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let fake = Arc::new(FakeNodes::default());
        let mut clients: Vec<ClientRecord> = (1..=20)
            .map(|i| client(i, &format!("10.0.0.{}:{}", i % 3, 40000 + i)))
            .collect();
        clients.push(client(21, "[::1]:50000"));
        clients.push(ClientRecord {
            own: true,
            name: "sessiond".into(),
            ..client(22, "127.0.0.1:60000")
        });
        clients.push(ClientRecord {
            flags: "S".into(),
            ..client(23, "127.0.0.1:60001")
        });
        fake.nodes.lock().insert(A.into(), clients);
        fake.nodes
            .lock()
            .insert(B.into(), vec![client(1, "10.9.9.9:1")]);
        Fixture {
            _dir: dir,
            store,
            fake,
            clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        }
    }

    async fn open(&self) -> Arc<DcsService> {
        self.open_with(DcsConfig::default()).await
    }

    async fn open_with(&self, config: DcsConfig) -> Arc<DcsService> {
        DcsService::open(
            config,
            vec![instance()],
            self.store.clone(),
            self.clock.clone(),
            Arc::new(self.fake.clone()),
        )
        .await
        .unwrap()
    }
}

fn p1() -> AccountId {
    AccountId(P1.into())
}

fn query(node: &str) -> ClientQuery {
    ClientQuery {
        node_id: node.into(),
        offset: 0,
        limit: 1000,
        addr: None,
        sort: None,
        descending: false,
    }
}

async fn wait_job(svc: &DcsService, id: &str) -> Job {
    for _ in 0..200 {
        let job = svc.job(&p1(), id).unwrap();
        if job.status != JobStatus::Running {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn kills_exactly_the_named_addresses_on_that_node() {
    let fx = Fixture::new();
    let svc = fx.open().await;
    let report = svc
        .kill_clients(
            &p1(),
            INST,
            "n1",
            &[
                "10.0.0.1:40001".into(),
                "[0::1]:50000".into(),
                "10.0.0.1:40001".into(),
                "10.1.1.1:1".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        report,
        KillReport {
            killed: 2,
            already_gone: 1
        }
    );
    let left: Vec<u64> = fx.fake.clients(A).iter().map(|c| c.id).collect();
    assert!(!left.contains(&1) && !left.contains(&21));
    assert_eq!(left.len(), 21);
    assert_eq!(fx.fake.clients(B).len(), 1, "the other node is untouched");
    let kills = fx.fake.kills.lock().clone();
    assert_eq!(
        kills,
        vec![
            (
                A.to_string(),
                KillTarget {
                    id: 1,
                    addr: "10.0.0.1:40001".into()
                }
            ),
            (
                A.to_string(),
                KillTarget {
                    id: 21,
                    addr: "[::1]:50000".into()
                }
            )
        ]
    );
}

#[tokio::test]
async fn a_reused_address_is_never_killed() {
    let fx = Fixture::new();
    let svc = fx.open().await;
    // Between the list read and the kill, client 2 leaves and a new client 99 gets its address.
    *fx.fake.after_list.lock() = Some(Box::new(|clients: &mut Vec<ClientRecord>| {
        if let Some(c) = clients.iter_mut().find(|c| c.id == 2) {
            c.id = 99;
        }
    }));
    let report = svc
        .kill_clients(&p1(), INST, "n1", &["10.0.0.2:40002".into()])
        .await
        .unwrap();
    assert_eq!(
        report,
        KillReport {
            killed: 0,
            already_gone: 1
        }
    );
    assert!(fx.fake.clients(A).iter().any(|c| c.id == 99));
}

#[tokio::test]
async fn kill_errors_and_nothing_is_killed() {
    let fx = Fixture::new();
    let svc = fx.open().await;
    let before = fx.fake.clients(A).len();
    let err = svc
        .kill_clients(
            &p1(),
            INST,
            "n1",
            &["10.0.0.1:40001".into(), "127.0.0.1:60000".into()],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DcsError::OwnConnection { .. }), "{err}");
    let err = svc
        .kill_clients(&p1(), INST, "n1", &["10.0.0.1:40001".into(), "nope".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DcsError::InvalidValue { field, .. } if field == "client_addrs[1]"),
        "{err}"
    );
    let err = svc.kill_clients(&p1(), INST, "n1", &[]).await.unwrap_err();
    assert!(matches!(&err, DcsError::InvalidValue { field, .. } if field == "client_addrs"));
    let many: Vec<String> = (0..1001).map(|i| format!("10.0.0.1:{i}")).collect();
    assert!(matches!(
        svc.kill_clients(&p1(), INST, "n1", &many).await,
        Err(DcsError::InvalidValue { .. })
    ));
    assert!(matches!(
        svc.kill_clients(&p1(), INST, "n9", &["10.0.0.1:40001".into()])
            .await,
        Err(DcsError::NodeNotFound { .. })
    ));
    // Another project's instance answers like a missing one.
    assert_eq!(
        svc.kill_clients(
            &AccountId(P2.into()),
            INST,
            "n1",
            &["10.0.0.1:40001".into()]
        )
        .await
        .unwrap_err(),
        DcsError::InstanceNotFound(INST.into())
    );
    fx.fake.down.lock().insert(A.into());
    assert!(matches!(
        svc.kill_clients(&p1(), INST, "n1", &["10.0.0.1:40001".into()])
            .await,
        Err(DcsError::Node {
            error: DataError::Unreachable(_),
            ..
        })
    ));
    assert_eq!(fx.fake.clients(A).len(), before);
}

#[tokio::test]
async fn listing_pages_sorts_and_filters() {
    let fx = Fixture::new();
    let svc = fx.open().await;
    let mut q = query("n1");
    q.limit = 5;
    q.offset = 20;
    let page = svc.list_clients(&p1(), INST, q.clone()).await.unwrap();
    assert_eq!(page.count, 23);
    assert_eq!(
        page.clients.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![21, 22, 23]
    );
    q.offset = 0;
    q.sort = Some(ClientField::Idle);
    q.descending = true;
    let page = svc.list_clients(&p1(), INST, q.clone()).await.unwrap();
    assert!(page.clients.windows(2).all(|w| w[0].idle >= w[1].idle));
    q.sort = None;
    q.descending = false;
    q.addr = Some("10.0.0.1".into());
    let page = svc.list_clients(&p1(), INST, q.clone()).await.unwrap();
    assert_eq!(page.count, 7);
    q.addr = Some("::1".into());
    assert_eq!(
        svc.list_clients(&p1(), INST, q.clone())
            .await
            .unwrap()
            .count,
        1
    );
    q.addr = Some("10.0.0.1:40001".into());
    assert_eq!(
        svc.list_clients(&p1(), INST, q.clone())
            .await
            .unwrap()
            .count,
        1
    );
    q.addr = Some(":4000".into());
    assert_eq!(
        svc.list_clients(&p1(), INST, q.clone())
            .await
            .unwrap()
            .count,
        9
    );
    q.limit = 1001;
    assert!(matches!(
        svc.list_clients(&p1(), INST, q).await,
        Err(DcsError::InvalidValue { .. })
    ));
    assert!(matches!(
        svc.list_clients(&p1(), INST, query("")).await,
        Err(DcsError::InvalidValue { .. })
    ));
}

#[tokio::test]
async fn snapshots_are_listed_until_rescanned_and_forget_killed_clients() {
    let fx = Fixture::new();
    let svc = fx.open().await;
    fx.clock.advance_ms(5);
    let job = svc.scan_clients(&p1(), INST, "n1", true).await.unwrap();
    assert_eq!(job.status, JobStatus::Success);
    assert_eq!(job.count, 23);
    let taken = fx.clock.now_ms();
    // A new client after the scan is not in the snapshot.
    fx.fake
        .nodes
        .lock()
        .get_mut(A)
        .unwrap()
        .push(client(50, "10.5.5.5:5"));
    fx.clock.advance_ms(1000);
    let page = svc.list_clients(&p1(), INST, query("n1")).await.unwrap();
    assert_eq!((page.count, page.time_ms), (23, taken));
    // Without clean_cache the snapshot is kept; with it, re-read.
    let again = svc.scan_clients(&p1(), INST, "n1", false).await.unwrap();
    assert_eq!(again.count, 23);
    svc.scan_clients(&p1(), INST, "n1", true).await.unwrap();
    assert_eq!(
        svc.list_clients(&p1(), INST, query("n1"))
            .await
            .unwrap()
            .count,
        24
    );
    svc.kill_clients(&p1(), INST, "n1", &["10.5.5.5:5".into()])
        .await
        .unwrap();
    assert_eq!(
        svc.list_clients(&p1(), INST, query("n1"))
            .await
            .unwrap()
            .count,
        23
    );
    // Another node has no snapshot: read live.
    assert_eq!(
        svc.list_clients(&p1(), INST, query("n2"))
            .await
            .unwrap()
            .count,
        1
    );
    fx.fake.down.lock().insert(B.into());
    assert!(matches!(
        svc.scan_clients(&p1(), INST, "n2", true).await,
        Err(DcsError::Node { .. })
    ));
}

#[tokio::test]
async fn kill_all_spares_own_connections_and_replication_links() {
    let fx = Fixture::new();
    let svc = fx.open().await;
    let job = svc
        .kill_all_clients(&p1(), INST, Some("n1"), false)
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Running);
    let done = wait_job(&svc, &job.id).await;
    assert_eq!(done.status, JobStatus::Success, "{done:?}");
    assert_eq!(done.count, 21);
    let left: Vec<u64> = fx.fake.clients(A).iter().map(|c| c.id).collect();
    assert_eq!(left, vec![22, 23]);
    assert_eq!(fx.fake.clients(B).len(), 1);

    // Every node; one of them down: the job fails and says which.
    fx.fake.down.lock().insert(A.into());
    let job = svc.kill_all_clients(&p1(), INST, None, true).await.unwrap();
    let done = wait_job(&svc, &job.id).await;
    assert_eq!(done.status, JobStatus::Failed);
    assert!(done.fail_reason.as_deref().unwrap().contains("n1"));
    assert_eq!(fx.fake.clients(B).len(), 0);

    assert!(matches!(
        svc.kill_all_clients(&p1(), INST, None, false).await,
        Err(DcsError::InvalidValue { .. })
    ));
    assert!(matches!(
        svc.job(&AccountId(P2.into()), &job.id),
        Err(DcsError::JobNotFound(_))
    ));
}

#[tokio::test]
async fn jobs_survive_a_restart_and_interrupted_ones_fail() {
    let fx = Fixture::new();
    let svc = fx.open().await;
    let scan = svc.scan_clients(&p1(), INST, "n2", true).await.unwrap();
    fx.fake.hang.lock().insert(A.into());
    let hung = svc
        .kill_all_clients(&p1(), INST, Some("n1"), false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(svc.job(&p1(), &hung.id).unwrap().status, JobStatus::Running);
    drop(svc);
    fx.clock.advance_ms(60_000);
    let svc = fx.open().await;
    assert_eq!(svc.job(&p1(), &scan.id).unwrap(), scan);
    let failed = svc.job(&p1(), &hung.id).unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.end_ms, Some(fx.clock.now_ms()));
    assert!(failed.fail_reason.unwrap().contains("start it again"));
    // And that is durable too.
    drop(svc);
    let svc = fx.open().await;
    assert_eq!(svc.job(&p1(), &hung.id).unwrap().status, JobStatus::Failed);
}

#[tokio::test]
async fn old_jobs_are_pruned_per_project() {
    let fx = Fixture::new();
    let svc = fx
        .open_with(DcsConfig {
            max_jobs_per_project: 3,
        })
        .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        fx.clock.advance_ms(1);
        ids.push(svc.scan_clients(&p1(), INST, "n2", true).await.unwrap().id);
    }
    assert!(svc.job(&p1(), &ids[0]).is_err());
    assert!(svc.job(&p1(), &ids[1]).is_err());
    for id in &ids[2..] {
        svc.job(&p1(), id).unwrap();
    }
    drop(svc);
    let svc = fx.open().await;
    assert!(svc.job(&p1(), &ids[1]).is_err());
    svc.job(&p1(), &ids[4]).unwrap();
}

#[tokio::test]
async fn describe_probes_every_node() {
    let fx = Fixture::new();
    let svc = fx.open().await;
    fx.fake.down.lock().insert(B.into());
    let status = svc.describe_instance(&p1(), INST).await.unwrap();
    assert_eq!(status.nodes.len(), 2);
    assert!(status.nodes[0].info.is_ok());
    assert!(status.nodes[1].info.is_err());
    assert!(!status.running());
    assert_eq!(status.instance.cache_mode(), "ha");
    assert!(svc
        .describe_instance(&AccountId(P2.into()), INST)
        .await
        .is_err());
}
