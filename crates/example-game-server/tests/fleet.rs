//! End to end: sessiond's GSE service + agent + supervisor running the real example game
//! server binary.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sessiond_core::gse::{
    CreateAsset, CreateFleet, CreateGameServerSession, EndTarget, FleetProcesses, GameServerHost,
    GameServerSessionStatus, GseConfig, GseService, PlayerSessionQuery, PlayerSessionStatus,
    RuntimeConfiguration, ServerProcess, ServerProcessSpec, SessionQuery,
};
use sessiond_core::{AccountId, Caller, SystemClock};
use sessiond_gse_agent::{procfs, serve_agent, Supervisor, SupervisorConfig};
use sessiond_store::SqliteStore;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const GAME_SERVER: &str = env!("CARGO_BIN_EXE_example-game-server");
const HEALTH_INTERVAL: Duration = Duration::from_millis(300);

struct Harness {
    dir: tempfile::TempDir,
    service: Arc<GseService>,
    supervisor: Supervisor,
    caller: Caller,
    asset_id: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A service with one asset `build/` holding the game server binary plus `extra` scripts.
async fn harness(extra: &[(&str, &str)]) -> Harness {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical tempdir");
    let assets = root.join("assets");
    let build = assets.join("build");
    std::fs::create_dir_all(&build).expect("mkdir build");
    std::fs::copy(GAME_SERVER, build.join("example-game-server")).expect("copy game server");
    for (name, body) in extra {
        write_script(&build.join(name), body);
    }

    let store = SqliteStore::open(&root.join("sessiond.db")).expect("store");
    let config = GseConfig {
        asset_roots: vec![assets.clone()],
        end_grace: Duration::from_secs(3),
        ..GseConfig::default()
    };
    let service =
        GseService::open(config, Arc::new(store), Arc::new(SystemClock)).expect("service");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind agent");
    let agent_addr = listener.local_addr().expect("addr").to_string();
    let supervisor = Supervisor::new(
        service.clone(),
        SupervisorConfig {
            agent_addr,
            log_dir: root.join("logs"),
            health_interval: HEALTH_INTERVAL,
        },
    )
    .expect("supervisor");
    service.attach_host(Arc::new(supervisor.clone()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_agent(
        listener,
        service.clone(),
        Some(supervisor.clone()),
        async move {
            let _ = rx.await;
        },
    ));
    service.start().await.expect("start");

    let caller = Caller {
        account: AccountId("100000000001".into()),
        region: "ap-shanghai".into(),
    };
    let asset = service
        .create_asset(
            &caller,
            CreateAsset {
                bucket_key: Some("build".into()),
                name: "build".into(),
                version: "1".into(),
                operating_system: "Linux".into(),
                ..CreateAsset::default()
            },
        )
        .await
        .expect("asset");
    Harness {
        dir,
        service,
        supervisor,
        caller,
        asset_id: asset.id,
        _shutdown: tx,
    }
}

impl Harness {
    async fn fleet(&self, launch_path: &str, parameters: &str, count: u32) -> String {
        let fleet = self
            .service
            .create_fleet(
                &self.caller,
                CreateFleet {
                    asset_id: Some(self.asset_id.clone()),
                    name: Some("test".into()),
                    runtime: Some(RuntimeConfiguration {
                        server_processes: vec![ServerProcess {
                            launch_path: launch_path.into(),
                            parameters: parameters.into(),
                            concurrent_executions: count,
                        }],
                        activation_timeout_seconds: 60,
                        max_concurrent_activations: 10,
                    }),
                    ..CreateFleet::default()
                },
            )
            .await
            .expect("fleet");
        fleet.id
    }

    fn ready_pids(&self, fleet_id: &str) -> Vec<u32> {
        self.service
            .fleet_processes_now(&self.caller, fleet_id)
            .expect("processes")
            .into_iter()
            .filter(|p| p.ready)
            .map(|p| p.pid)
            .collect()
    }

    fn session_status(&self, id: &str) -> GameServerSessionStatus {
        let page = self
            .service
            .describe_game_server_sessions(
                &self.caller,
                &SessionQuery {
                    session_id: Some(id.into()),
                    ..SessionQuery::default()
                },
            )
            .expect("describe sessions");
        page.items[0].session.status
    }

    fn player_status(&self, id: &str) -> PlayerSessionStatus {
        let page = self
            .service
            .describe_player_sessions(
                &self.caller,
                &PlayerSessionQuery {
                    player_session_id: Some(id.into()),
                    ..PlayerSessionQuery::default()
                },
            )
            .expect("describe player sessions");
        page.items[0].status
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        let mut stack = vec![self.dir.path().join("logs")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push_str(&format!("--- {}\n", path.display()));
                    out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
                }
            }
        }
        out
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
async fn eventually<T>(
    h: &Harness,
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}\nprocess logs:\n{}", h.logs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn running(pid: u32) -> bool {
    procfs::read_stat(pid).is_some_and(|s| !s.exited())
}

async fn send_player(port: u16, player_session_id: &str) -> (String, BufReader<TcpStream>) {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect player");
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(format!("{player_session_id}\n").as_bytes())
        .await
        .expect("send id");
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .expect("reply in time")
        .expect("read reply");
    (line, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_runs_health_checks_sessions_and_players() {
    let h = harness(&[]).await;
    let fleet_id = h
        .fleet("/local/game/example-game-server", "--port 0", 2)
        .await;

    // Both processes start and call ProcessReady.
    let pids = eventually(&h, "2 ready processes", Duration::from_secs(20), || {
        let pids = h.ready_pids(&fleet_id);
        (pids.len() == 2).then_some(pids)
    })
    .await;
    assert_eq!(h.supervisor.fleet_pids(&fleet_id), pids);

    // Health checks pass for several intervals.
    tokio::time::sleep(HEALTH_INTERVAL * 5).await;
    for pid in &pids {
        let process = h.service.process(*pid).expect("process known");
        assert!(process.healthy, "process {pid} should be healthy");
    }

    // A game server session is placed on a process and activated by it.
    let session = h
        .service
        .create_game_server_session(
            &h.caller,
            CreateGameServerSession {
                fleet_id: Some(fleet_id.clone()),
                max_players: 4,
                name: Some("match".into()),
                ..CreateGameServerSession::default()
            },
        )
        .await
        .expect("create session");
    eventually(&h, "session ACTIVE", Duration::from_secs(10), || {
        (h.session_status(&session.id) == GameServerSessionStatus::Active).then_some(())
    })
    .await;
    let host_pid = session.pid.expect("session has a process");
    let client_port = h
        .service
        .process(host_pid)
        .and_then(|p| p.client_port)
        .expect("client port");
    assert_eq!(session.port, client_port);

    // A player joins with its player session id, then leaves.
    let players = h
        .service
        .join_game_server_session(&h.caller, &session.id, vec![("player-1".into(), None)])
        .await
        .expect("join");
    let psess = players[0].id.clone();
    assert_eq!(h.player_status(&psess), PlayerSessionStatus::Reserved);
    let (reply, connection) = send_player(client_port, &psess).await;
    assert_eq!(reply, "OK\n");
    assert_eq!(h.player_status(&psess), PlayerSessionStatus::Active);
    drop(connection);
    eventually(
        &h,
        "player session COMPLETED",
        Duration::from_secs(10),
        || (h.player_status(&psess) == PlayerSessionStatus::Completed).then_some(()),
    )
    .await;

    // An unknown player session is refused.
    let (reply, _connection) = send_player(client_port, "psess-unknown").await;
    assert!(reply.starts_with("ERR "), "unexpected reply {reply:?}");

    // A stopped process fails its health checks and becomes unhealthy; resumed, it recovers.
    let idle_pid = *pids.iter().find(|p| **p != host_pid).expect("idle process");
    kill(Pid::from_raw(idle_pid as i32), Signal::SIGSTOP).expect("SIGSTOP");
    eventually(&h, "process unhealthy", Duration::from_secs(10), || {
        h.service
            .process(idle_pid)
            .filter(|p| !p.healthy)
            .map(|_| ())
    })
    .await;
    kill(Pid::from_raw(idle_pid as i32), Signal::SIGCONT).expect("SIGCONT");
    eventually(&h, "process healthy again", Duration::from_secs(10), || {
        h.service
            .process(idle_pid)
            .filter(|p| p.healthy)
            .map(|_| ())
    })
    .await;

    // Ending the session and its process: the process gets OnProcessTerminate, ends its
    // session, calls ProcessEnding and exits; the supervisor launches a replacement.
    h.service
        .end_game_server_session_and_process(&h.caller, EndTarget::Session(session.id.to_string()))
        .await
        .expect("end session and process");
    eventually(
        &h,
        "the ended process to exit",
        Duration::from_secs(10),
        || (!running(host_pid)).then_some(()),
    )
    .await;
    let replaced = eventually(&h, "a replacement process", Duration::from_secs(20), || {
        let now = h.ready_pids(&fleet_id);
        (now.len() == 2 && !now.contains(&host_pid)).then_some(now)
    })
    .await;
    assert!(replaced.contains(&idle_pid));
    assert_eq!(
        h.session_status(&session.id),
        GameServerSessionStatus::Terminated
    );

    // Deleting the fleet ends its processes and stops relaunching them.
    h.service
        .delete_fleet(&h.caller, &fleet_id)
        .await
        .expect("delete fleet");
    eventually(&h, "all processes gone", Duration::from_secs(20), || {
        (replaced.iter().all(|p| !running(*p)) && h.supervisor.fleet_pids(&fleet_id).is_empty())
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.supervisor.fleet_pids(&fleet_id).is_empty());
    assert!(!h.service.has_process(replaced[0]));
    println!("process logs:\n{}", h.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_server_started_by_a_wrapper_script_is_identified() {
    // The script does not exec: the game server is its child, and calls the agent with its
    // own pid, which sessiond did not launch.
    let h = harness(&[(
        "run.sh",
        "#!/bin/sh\ncd \"$(dirname \"$0\")\"\n./example-game-server \"$@\"\n",
    )])
    .await;
    let fleet_id = h.fleet("/local/game/run.sh", "--port 0", 1).await;
    let pids = eventually(&h, "wrapper process ready", Duration::from_secs(20), || {
        let pids = h.ready_pids(&fleet_id);
        (pids.len() == 1).then_some(pids)
    })
    .await;
    // The process sessiond knows is the wrapper (it launched it).
    assert_eq!(h.supervisor.fleet_pids(&fleet_id), pids);
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", pids[0])).unwrap_or_default();
    assert_eq!(comm.trim(), "run.sh");

    // Stopping the fleet ends the whole process group.
    h.service
        .delete_fleet(&h.caller, &fleet_id)
        .await
        .expect("delete fleet");
    eventually(&h, "wrapper gone", Duration::from_secs(20), || {
        (!running(pids[0]) && h.supervisor.fleet_pids(&fleet_id).is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_process_is_relaunched_with_backoff() {
    let h = harness(&[("crash.sh", "#!/bin/sh\necho crashing\nexit 3\n")]).await;
    let fleet_id = h.fleet("/local/game/crash.sh", "", 1).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // Immediate, immediate, +1 s, +2 s: about 4 launches in 3.5 s, not hundreds.
    let launches = std::fs::read_dir(h.dir.path().join("logs").join(&fleet_id))
        .expect("log dir")
        .count();
    assert!((2..=6).contains(&launches), "{launches} launches");
    let log = h.logs();
    assert!(log.contains("crashing"), "process output is logged: {log}");
    h.service
        .delete_fleet(&h.caller, &fleet_id)
        .await
        .expect("delete fleet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_process_is_adopted_only_with_its_start_time() {
    let h = harness(&[]).await;
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let pid = child.id();
    let ticks = procfs::start_ticks(pid).expect("start ticks");
    let fleet = "fleet-00000000-00000000";
    assert!(!h.supervisor.adopt_process(pid, ticks + 1, fleet, None));
    assert!(!h.supervisor.adopt_process(4_000_000, ticks, fleet, None));
    assert!(h.supervisor.adopt_process(pid, ticks, fleet, None));
    assert_eq!(h.supervisor.fleet_pids(fleet), vec![pid]);

    // Its exit is noticed by polling (it is not the supervisor's child).
    child.kill().expect("kill");
    eventually(
        &h,
        "adopted process forgotten",
        Duration::from_secs(5),
        || h.supervisor.fleet_pids(fleet).is_empty().then_some(()),
    )
    .await;
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopted_processes_count_toward_the_fleet_and_stubborn_ones_are_killed() {
    // A process that ignores SIGTERM (and so do its children, which inherit the disposition).
    let h = harness(&[(
        "stubborn.sh",
        "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 1; done\n",
    )])
    .await;
    let build = h
        .dir
        .path()
        .canonicalize()
        .expect("dir")
        .join("assets/build");
    let executable = build.join("stubborn.sh");
    let fleet = "fleet-11111111-11111111";
    let spec = |count: u32| FleetProcesses {
        fleet_id: fleet.into(),
        asset_dir: build.clone(),
        processes: vec![ServerProcessSpec {
            executable: executable.clone(),
            parameters: String::new(),
            concurrent_executions: count,
        }],
    };

    // A process from "before the restart", in its own process group.
    let mut previous = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .expect("spawn sleep")
    };
    let pid = previous.id();
    let ticks = procfs::start_ticks(pid).expect("start ticks");
    assert!(h.supervisor.adopt_process(pid, ticks, fleet, None));

    // One process wanted, one adopted: nothing is launched.
    h.supervisor.run_fleet(spec(1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(h.supervisor.fleet_pids(fleet), vec![pid]);

    // Two wanted: one more is launched.
    h.supervisor.run_fleet(spec(2));
    let pids = eventually(&h, "a second process", Duration::from_secs(10), || {
        let pids = h.supervisor.fleet_pids(fleet);
        (pids.len() == 2).then_some(pids)
    })
    .await;
    let launched = *pids.iter().find(|p| **p != pid).expect("launched pid");

    // Stopping: no gRPC port known, so after the grace SIGTERM (the adopted sleep dies),
    // then SIGKILL 5 s later (the stubborn script).
    h.supervisor.stop_fleet(fleet);
    eventually(
        &h,
        "adopted process terminated",
        Duration::from_secs(9),
        || matches!(previous.try_wait(), Ok(Some(_))).then_some(()),
    )
    .await;
    assert!(running(launched), "the stubborn process survives SIGTERM");
    eventually(
        &h,
        "stubborn process killed",
        Duration::from_secs(10),
        || (!running(launched) && h.supervisor.fleet_pids(fleet).is_empty()).then_some(()),
    )
    .await;
}

#[test]
fn the_binary_rejects_unknown_arguments() {
    let out = std::process::Command::new(GAME_SERVER)
        .arg("--bogus")
        .env("SESSIOND_AGENT_ADDR", "127.0.0.1:9")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown argument"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_ends_every_process_and_relaunches_nothing() {
    let h = harness(&[]).await;
    let fleet_id = h.fleet("/local/game/example-game-server", "", 2).await;
    let pids = eventually(&h, "2 ready processes", Duration::from_secs(20), || {
        let pids = h.ready_pids(&fleet_id);
        (pids.len() == 2).then_some(pids)
    })
    .await;
    let started = tokio::time::Instant::now();
    h.supervisor.stop_all(Duration::from_secs(10)).await;
    // The game servers end on OnProcessTerminate, well before SIGTERM would be sent.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(pids.iter().all(|p| !running(*p)));
    assert!(h.supervisor.pids().is_empty());
    assert!(pids.iter().all(|p| !h.service.has_process(*p)));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(h.supervisor.pids().is_empty(), "nothing relaunched");
}
