//! Service rules with a recording host (the real host is exercised by the integration tests).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sessiond_store::SqliteStore;

use super::*;
use crate::clock::ManualClock;

#[derive(Default)]
struct RecordingHost {
    calls: Mutex<Vec<String>>,
}

impl GameServerHost for RecordingHost {
    fn run_fleet(&self, spec: FleetProcesses) {
        self.calls.lock().push(format!("run {}", spec.fleet_id));
    }
    fn stop_fleet(&self, fleet_id: &str) {
        self.calls.lock().push(format!("stop {fleet_id}"));
    }
    fn start_game_server_session(
        &self,
        pid: u32,
        session: SessionStart,
    ) -> super::super::host::HostFuture {
        self.calls
            .lock()
            .push(format!("start {pid} {}", session.game_server_session_id));
        Box::pin(async { Ok(()) })
    }
    fn terminate_process(&self, pid: u32, _t: i64, _grace: Duration) {
        self.calls.lock().push(format!("terminate {pid}"));
    }
    fn adopt_process(&self, pid: u32, _s: u64, _f: &str, _g: Option<u16>) -> bool {
        pid == 100
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    config: GseConfig,
    clock: Arc<ManualClock>,
    host: Arc<RecordingHost>,
    gse: Arc<GseService>,
    caller: Caller,
}

fn caller(account: &str) -> Caller {
    Caller {
        account: AccountId(account.into()),
        region: "ap-shanghai".into(),
    }
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("assets");
        std::fs::create_dir_all(root.join("build")).unwrap();
        std::fs::write(root.join("build/server"), b"#!/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("outside"), b"#!/bin/sh\n").unwrap();
        let config = GseConfig {
            asset_roots: vec![root.canonicalize().unwrap()],
            ..GseConfig::default()
        };
        let db = dir.path().join("state.db");
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let host = Arc::new(RecordingHost::default());
        let gse = Self::open(&db, &config, &clock, &host);
        Fixture {
            _dir: dir,
            db,
            config,
            clock,
            host,
            gse,
            caller: caller("100"),
        }
    }

    fn open(
        db: &Path,
        config: &GseConfig,
        clock: &Arc<ManualClock>,
        host: &Arc<RecordingHost>,
    ) -> Arc<GseService> {
        let store = Arc::new(SqliteStore::open(db).unwrap());
        let gse = GseService::open(config.clone(), store, clock.clone()).unwrap();
        gse.attach_host(host.clone());
        gse
    }

    async fn fleet(&self) -> Fleet {
        let asset = self
            .gse
            .create_asset(
                &self.caller,
                CreateAsset {
                    bucket_key: Some("build.zip".into()),
                    name: "game".into(),
                    version: "1".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        self.gse
            .create_fleet(
                &self.caller,
                CreateFleet {
                    asset_id: Some(asset.id),
                    runtime: Some(RuntimeConfiguration {
                        server_processes: vec![ServerProcess {
                            launch_path: "/local/game/server".into(),
                            parameters: String::new(),
                            concurrent_executions: 2,
                        }],
                        activation_timeout_seconds: 30,
                        max_concurrent_activations: 10,
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    }

    /// A fleet with one ready process (pid 100) hosting an ACTIVE session of `max` players.
    async fn active_session(&self, max: u32) -> GameServerSession {
        let fleet = self.fleet().await;
        self.gse.process_launched(100, 1, &fleet.id).await;
        self.gse
            .process_ready(100, 7777, 7778, vec![])
            .await
            .unwrap();
        let gss = self
            .gse
            .create_game_server_session(
                &self.caller,
                CreateGameServerSession {
                    fleet_id: Some(fleet.id.clone()),
                    max_players: max,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(gss.status, GameServerSessionStatus::Activating);
        assert_eq!(gss.port, 7777);
        self.gse
            .activate_game_server_session(100, &gss.id, 0)
            .await
            .unwrap();
        self.session(&gss.id)
    }

    fn session(&self, id: &str) -> GameServerSession {
        let page = self
            .gse
            .describe_game_server_sessions(
                &self.caller,
                &SessionQuery {
                    session_id: Some(id.into()),
                    ..Default::default()
                },
            )
            .unwrap();
        page.items[0].session.clone()
    }

    fn players(&self, gss: &str) -> Vec<PlayerSession> {
        self.gse
            .describe_player_sessions(
                &self.caller,
                &PlayerSessionQuery {
                    game_server_session_id: Some(gss.into()),
                    limit: Some(100),
                    ..Default::default()
                },
            )
            .unwrap()
            .items
    }
}

fn ids(n: usize, prefix: &str) -> Vec<(String, Option<String>)> {
    (0..n).map(|i| (format!("{prefix}{i}"), None)).collect()
}

#[tokio::test]
async fn join_is_all_or_nothing_and_respects_capacity() {
    let f = Fixture::new();
    let gss = f.active_session(5).await;
    let joined = f
        .gse
        .join_game_server_session(&f.caller, &gss.id, ids(3, "a"))
        .await
        .unwrap();
    assert_eq!(joined.len(), 3);
    assert!(joined
        .iter()
        .all(|p| p.status == PlayerSessionStatus::Reserved && p.port == 7777));
    let err = f
        .gse
        .join_game_server_session(&f.caller, &gss.id, ids(3, "b"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GseError::NotEnoughSlots {
                free: 2,
                requested: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        f.players(&gss.id).len(),
        3,
        "a refused batch creates nothing"
    );
    let err = f
        .gse
        .join_game_server_session(&f.caller, &gss.id, vec![("a1".into(), None)])
        .await
        .unwrap_err();
    assert!(matches!(err, GseError::PlayerAlreadyJoined { .. }));
    assert_eq!(f.session(&gss.id).current_players, 3);
}

#[tokio::test]
async fn join_needs_active_accepting_session_of_own_account() {
    let f = Fixture::new();
    let gss = f.active_session(5).await;
    let other = caller("200");
    let err = f
        .gse
        .join_game_server_session(&other, &gss.id, ids(1, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, GseError::NotFound { .. }));
    f.gse
        .update_game_server_session(
            &f.caller,
            UpdateGameServerSession {
                session_id: gss.id.to_string(),
                creation_policy: Some(PlayerSessionCreationPolicy::DenyAll),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = f
        .gse
        .join_game_server_session(&f.caller, &gss.id, ids(1, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, GseError::CreationDenied(_)));
    f.gse
        .terminate_game_server_session(100, &gss.id)
        .await
        .unwrap();
    let err = f
        .gse
        .join_game_server_session(&f.caller, &gss.id, ids(1, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, GseError::WrongState { .. }));
}

#[tokio::test]
async fn reservations_time_out_and_free_slots_accept_and_remove() {
    let f = Fixture::new();
    let gss = f.active_session(2).await;
    let joined = f
        .gse
        .join_game_server_session(&f.caller, &gss.id, ids(2, "p"))
        .await
        .unwrap();
    f.gse
        .accept_player_session(100, &gss.id, &joined[0].id)
        .await
        .unwrap();
    f.clock.advance_ms(59_999);
    f.gse.expire_timers().await.unwrap();
    assert_eq!(f.session(&gss.id).current_players, 2);
    f.clock.advance_ms(1);
    f.gse.expire_timers().await.unwrap();
    let players = f.players(&gss.id);
    assert_eq!(players[0].status, PlayerSessionStatus::Active);
    assert_eq!(players[1].status, PlayerSessionStatus::TimedOut);
    assert!(players[1].terminated_ms.is_some());
    assert_eq!(f.session(&gss.id).current_players, 1);
    let err = f
        .gse
        .accept_player_session(100, &gss.id, &joined[1].id)
        .await
        .unwrap_err();
    assert!(matches!(err, GseError::WrongState { .. }));
    f.gse
        .remove_player_session(100, &gss.id, &joined[0].id)
        .await
        .unwrap();
    assert_eq!(f.session(&gss.id).current_players, 0);
    assert_eq!(f.players(&gss.id)[0].status, PlayerSessionStatus::Completed);
    // Another process may not touch this session.
    assert!(f
        .gse
        .accept_player_session(999, &gss.id, &joined[0].id)
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_joins_never_overbook() {
    let f = Fixture::new();
    let gss = f.active_session(20).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let gse = f.gse.clone();
        let caller = f.caller.clone();
        let id = gss.id.clone();
        tasks.push(tokio::spawn(async move {
            gse.join_game_server_session(&caller, &id, vec![(format!("player{i}"), None)])
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 20);
    assert_eq!(f.session(&gss.id).current_players, 20);
}

#[tokio::test]
async fn end_session_completes_players_and_terminates_process_idempotently() {
    let f = Fixture::new();
    let gss = f.active_session(4).await;
    f.gse
        .join_game_server_session(&f.caller, &gss.id, ids(2, "p"))
        .await
        .unwrap();
    f.gse
        .end_game_server_session_and_process(&f.caller, EndTarget::Session(gss.id.to_string()))
        .await
        .unwrap();
    let s = f.session(&gss.id);
    assert_eq!(s.status, GameServerSessionStatus::Terminated);
    assert!(s.terminated_ms.is_some());
    assert!(f
        .players(&gss.id)
        .iter()
        .all(|p| p.status == PlayerSessionStatus::Completed));
    assert!(f.host.calls.lock().iter().any(|c| c == "terminate 100"));
    let before = f.host.calls.lock().len();
    f.gse
        .end_game_server_session_and_process(&f.caller, EndTarget::Session(gss.id.to_string()))
        .await
        .unwrap();
    assert_eq!(
        f.host.calls.lock().len(),
        before,
        "ending an ended session changes nothing"
    );
}

#[tokio::test]
async fn full_protection_refuses_end_and_address_conflicts() {
    let f = Fixture::new();
    let gss = f.active_session(4).await;
    f.gse
        .update_game_server_session(
            &f.caller,
            UpdateGameServerSession {
                session_id: gss.id.to_string(),
                protection: Some(ProtectionPolicy::FullProtection),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = f
        .gse
        .end_game_server_session_and_process(
            &f.caller,
            EndTarget::Address {
                ip: "127.0.0.1".into(),
                port: 7777,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GseError::Refused(_)));
    assert_eq!(f.session(&gss.id).status, GameServerSessionStatus::Active);
    let err = f
        .gse
        .end_game_server_session_and_process(
            &f.caller,
            EndTarget::Address {
                ip: "127.0.0.1".into(),
                port: 7000,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GseError::NotFound { .. }));
}

#[tokio::test]
async fn launch_paths_stay_inside_the_asset() {
    let f = Fixture::new();
    let asset_dir = f.config.asset_roots[0].join("build");
    assert!(f
        .gse
        .resolve_launch_path(&asset_dir, "/local/game/server")
        .is_ok());
    assert!(f.gse.resolve_launch_path(&asset_dir, "server").is_ok());
    assert!(f
        .gse
        .resolve_launch_path(&asset_dir, "/local/game/../../outside")
        .is_err());
    assert!(f.gse.resolve_launch_path(&asset_dir, "/bin/sh").is_err());
    assert!(f
        .gse
        .resolve_launch_path(&asset_dir, "/local/game/missing")
        .is_err());
    let err = f
        .gse
        .create_asset(
            &f.caller,
            CreateAsset {
                bucket_key: Some("../etc".into()),
                name: "x".into(),
                version: "1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GseError::InvalidValue(_)));
}

#[tokio::test]
async fn state_survives_reopen_and_reservation_timers_resume() {
    let f = Fixture::new();
    let gss = f.active_session(10).await;
    let joined = f
        .gse
        .join_game_server_session(&f.caller, &gss.id, ids(3, "p"))
        .await
        .unwrap();
    f.gse
        .accept_player_session(100, &gss.id, &joined[0].id)
        .await
        .unwrap();
    let reopened = Fixture::open(&f.db, &f.config, &f.clock, &f.host);
    reopened.start().await.unwrap();
    let f2 = Fixture { gse: reopened, ..f };
    // pid 100 is adopted (still alive), so the session goes on.
    let s = f2.session(&gss.id);
    assert_eq!(s.status, GameServerSessionStatus::Active);
    assert_eq!(s.current_players, 3);
    f2.clock.advance_ms(60_000);
    f2.gse.expire_timers().await.unwrap();
    let players = f2.players(&gss.id);
    assert_eq!(
        players
            .iter()
            .filter(|p| p.status == PlayerSessionStatus::TimedOut)
            .count(),
        2
    );
    assert_eq!(f2.session(&gss.id).current_players, 1);
}

#[tokio::test]
async fn sessions_of_lost_processes_end_on_start() {
    let f = Fixture::new();
    let fleet = f.fleet().await;
    f.gse.process_launched(555, 1, &fleet.id).await;
    f.gse.process_ready(555, 7001, 7002, vec![]).await.unwrap();
    let gss = f
        .gse
        .create_game_server_session(
            &f.caller,
            CreateGameServerSession {
                fleet_id: Some(fleet.id.clone()),
                max_players: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.gse
        .activate_game_server_session(555, &gss.id, 0)
        .await
        .unwrap();
    let reopened = Fixture::open(&f.db, &f.config, &f.clock, &f.host);
    reopened.start().await.unwrap();
    let f2 = Fixture { gse: reopened, ..f };
    let s = f2.session(&gss.id);
    assert_eq!(s.status, GameServerSessionStatus::Terminated);
    assert!(s.status_reason.unwrap().contains("not running"));
}

#[tokio::test]
async fn ended_sessions_are_deleted_after_the_retention_window() {
    let mut f = Fixture::new();
    f.config.retention = Duration::from_secs(3600);
    let gse = Fixture::open(&f.db, &f.config, &f.clock, &f.host);
    f.gse = gse;
    let gss = f.active_session(4).await;
    let joined = f
        .gse
        .join_game_server_session(&f.caller, &gss.id, ids(2, "p"))
        .await
        .unwrap();
    f.gse
        .terminate_game_server_session(100, &gss.id)
        .await
        .unwrap();
    f.clock.advance_ms(3_599_999);
    f.gse.expire_timers().await.unwrap();
    assert_eq!(
        f.session(&gss.id).status,
        GameServerSessionStatus::Terminated
    );
    f.clock.advance_ms(1);
    f.gse.expire_timers().await.unwrap();
    let page = f
        .gse
        .describe_game_server_sessions(
            &f.caller,
            &SessionQuery {
                session_id: Some(gss.id.to_string()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(page.items.is_empty());
    let by_player = f
        .gse
        .describe_player_sessions(
            &f.caller,
            &PlayerSessionQuery {
                player_id: Some("p0".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(by_player.items.is_empty());
    // Gone from the store too.
    let reopened = Fixture::open(&f.db, &f.config, &f.clock, &f.host);
    let page = reopened
        .describe_player_sessions(
            &f.caller,
            &PlayerSessionQuery {
                player_session_id: Some(joined[0].id.to_string()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(page.items.is_empty());
}
