//! Test harness: runs the real `sessiond` binary on free ports with a private data folder and
//! asset root (holding the real example game server), and talks to it with a signed client.
#![allow(dead_code)]

pub mod mariadb;
pub mod redis;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use sessiond_load::client::{api_error_code, ApiClient, Target};
use sessiond_load::sign::Signer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// Account A has two keys, account B one.
pub const KEY_A: (&str, &str) = ("AKIDaccountA1", "secretA1");
pub const KEY_A2: (&str, &str) = ("AKIDaccountA2", "secretA2");
pub const KEY_B: (&str, &str) = ("AKIDaccountB1", "secretB1");
pub const ACCOUNT_A: &str = "100000000001";

/// For tests that poll a lot: the documented 20/s of the Describe actions would throttle them.
pub const POLLING_LIMITS: &str = r#"[rate_limits]
"gse.DescribePlayerSessions" = 1000
"gse.DescribeGameServerSessions" = 1000
"#;

pub fn sessiond_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sessiond"))
}

/// The example game server, built into the same target folder as sessiond.
pub fn game_server_bin() -> PathBuf {
    let path = sessiond_bin().with_file_name("example-game-server");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p example-game-server; scripts/test does)",
        path.display()
    );
    path
}

/// A private installation: data folder, asset root with the example build, config file.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub asset_root: PathBuf,
    pub data_dir: PathBuf,
}

impl Env {
    /// `extra` is appended to the config (e.g. a `[gse]` section must then be complete).
    pub fn new(gse_section: &str, extra: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let asset_root = dir.path().join("assets");
        let build = asset_root.join("example");
        std::fs::create_dir_all(&build).unwrap();
        std::fs::copy(game_server_bin(), build.join("example-game-server")).unwrap();
        let data_dir = dir.path().join("data");
        let config = dir.path().join("sessiond.toml");
        // The agent keeps its address across restarts (game servers that outlive a crash call
        // the address they were given), so pick a free port once instead of port 0.
        let agent_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let text = format!(
            r#"data_dir = "{data}"
public_ip = "127.0.0.1"

[listen]
api = "127.0.0.1:0"
agent = "127.0.0.1:{agent_port}"

[[credentials]]
access_key_id = "{a1}"
secret_access_key = "{s1}"
account_id = "{ACCOUNT_A}"

[[credentials]]
access_key_id = "{a2}"
secret_access_key = "{s2}"
account_id = "{ACCOUNT_A}"

[[credentials]]
access_key_id = "{b1}"
secret_access_key = "{s3}"
account_id = "100000000002"

[gse]
asset_roots = ["{root}"]
health_check_interval_seconds = 1
{gse_section}

{extra}
"#,
            data = data_dir.display(),
            root = asset_root.display(),
            a1 = KEY_A.0,
            s1 = KEY_A.1,
            a2 = KEY_A2.0,
            s2 = KEY_A2.1,
            b1 = KEY_B.0,
            s3 = KEY_B.1,
        );
        std::fs::write(&config, text).unwrap();
        Env {
            dir,
            config,
            asset_root,
            data_dir,
        }
    }

    pub fn start(&self) -> Sessiond {
        Sessiond::start(&self.config).expect("sessiond starts")
    }

    /// Pids of game servers launched from this installation's asset root.
    pub fn game_server_pids(&self) -> Vec<u32> {
        let root = self
            .asset_root
            .canonicalize()
            .unwrap_or(self.asset_root.clone());
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(exe) = std::fs::read_link(entry.path().join("exe")) {
                if exe.starts_with(&root) {
                    pids.push(pid);
                }
            }
        }
        pids.sort();
        pids
    }
}

impl Drop for Env {
    /// Game servers outlive a killed sessiond by design; do not leave any behind.
    fn drop(&mut self) {
        for pid in self.game_server_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

pub struct Sessiond {
    child: Option<Child>,
    pub api: SocketAddr,
    pub agent: SocketAddr,
}

impl Sessiond {
    pub fn start(config: &Path) -> Result<Sessiond> {
        let mut child = Command::new(sessiond_bin())
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("SESSIOND_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning sessiond")?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut api, mut agent) = (None, None);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .map_err(|_| anyhow!("sessiond did not print ready within 30 s"))?;
            if let Some(rest) = line.strip_prefix("sessiond: api listening on http://") {
                api = Some(rest.parse()?);
            } else if let Some(rest) = line.strip_prefix("sessiond: agent listening on ") {
                agent = Some(rest.parse()?);
            } else if line == "sessiond: ready" {
                break;
            }
        }
        Ok(Sessiond {
            child: Some(child),
            api: api.ok_or_else(|| anyhow!("no api line"))?,
            agent: agent.ok_or_else(|| anyhow!("no agent line"))?,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (graceful stop ends the game servers).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.api)
    }

    pub async fn client(&self, key: (&str, &str)) -> ApiClient {
        let target = Target::from_endpoint(&self.endpoint(), "ap-shanghai")
            .await
            .unwrap();
        ApiClient::new(
            target,
            Signer::new(key.0, key.1, "gse"),
            Duration::from_secs(10),
        )
    }
}

impl Drop for Sessiond {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Calls an action; Err is `(code, message)` for an API error (other failures panic).
pub async fn call(
    client: &mut ApiClient,
    action: &'static str,
    params: Value,
) -> Result<Value, (String, String)> {
    match client.call(action, &params).await {
        Ok(v) => {
            assert!(v["RequestId"].is_string(), "{action}: no RequestId in {v}");
            Ok(v)
        }
        Err(err) => match api_error_code(&err) {
            Some(code) => Err((code.to_string(), format!("{err:#}"))),
            None => panic!("{action}: {err:#}"),
        },
    }
}

pub async fn ok(client: &mut ApiClient, action: &'static str, params: Value) -> Value {
    match call(client, action, params).await {
        Ok(v) => v,
        Err((code, message)) => panic!("{action} failed: {code}: {message}"),
    }
}

/// Asserts the call fails with `code`; returns the message.
pub async fn fails(
    client: &mut ApiClient,
    action: &'static str,
    params: Value,
    code: &str,
) -> String {
    match call(client, action, params.clone()).await {
        Ok(v) => panic!("{action} {params} succeeded, expected {code}: {v}"),
        Err((got, message)) => {
            assert_eq!(got, code, "{action} {params}: {message}");
            message
        }
    }
}

pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CreateAsset + CreateFleet running `processes` example game servers.
pub async fn fleet(client: &mut ApiClient, processes: u32) -> String {
    let asset = ok(
        client,
        "CreateAsset",
        json!({"BucketKey": "example.zip", "AssetName": format!("example-{}", rand_suffix()), "AssetVersion": "1",
               "AssetRegion": "ap-shanghai", "OperateSystem": "CentOS7.16"}),
    )
    .await;
    let fleet = ok(
        client,
        "CreateFleet",
        json!({"AssetId": asset["AssetId"], "Name": "test",
               "RuntimeConfiguration": {"ServerProcesses": [{"LaunchPath": "/local/game/example-game-server",
                   "Parameters": "", "ConcurrentExecutions": processes}]}}),
    )
    .await;
    fleet["FleetAttributes"]["FleetId"]
        .as_str()
        .unwrap()
        .to_string()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// CreateGameServerSession (retrying while processes become ready), then waits for ACTIVE.
pub async fn active_session(
    client: &mut ApiClient,
    fleet_id: &str,
    max_players: u32,
    extra: Value,
) -> Value {
    let mut params = json!({"FleetId": fleet_id, "MaximumPlayerSessionCount": max_players});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let created = loop {
        match call(client, "CreateGameServerSession", params.clone()).await {
            Ok(v) => break v,
            Err((code, _)) if code == "ResourceInsufficient" && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err((code, message)) => panic!("CreateGameServerSession: {code}: {message}"),
        }
    };
    let id = created["GameServerSession"]["GameServerSessionId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(created["GameServerSession"]["Status"], "ACTIVATING");
    wait_session_status(client, &id, "ACTIVE").await
}

pub async fn describe_session(client: &mut ApiClient, id: &str) -> Value {
    let v = ok(
        client,
        "DescribeGameServerSessions",
        json!({"GameServerSessionId": id}),
    )
    .await;
    v["GameServerSessions"][0].clone()
}

pub async fn wait_session_status(client: &mut ApiClient, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = describe_session(client, id).await;
        if s["Status"] == status {
            return s;
        }
        if Instant::now() > deadline {
            panic!("session {id} never became {status}: {s}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn player_sessions(client: &mut ApiClient, gss: &str) -> Vec<Value> {
    let v = ok(
        client,
        "DescribePlayerSessions",
        json!({"GameServerSessionId": gss, "Limit": 100}),
    )
    .await;
    v["PlayerSessions"].as_array().cloned().unwrap_or_default()
}

pub async fn wait_player_status(client: &mut ApiClient, psess: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = ok(
            client,
            "DescribePlayerSessions",
            json!({"PlayerSessionId": psess}),
        )
        .await;
        let p = v["PlayerSessions"][0].clone();
        if p["Status"] == status {
            return p;
        }
        if Instant::now() > deadline {
            panic!("player session {psess} never became {status}: {p}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A player connecting to the game server with its player session id; returns the open
/// connection after the server's answer line.
pub async fn connect_player(session: &Value) -> Result<(tokio::net::TcpStream, String)> {
    let addr = format!(
        "{}:{}",
        session["IpAddress"].as_str().unwrap(),
        session["Port"]
    );
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&addr),
    )
    .await??;
    stream
        .write_all(format!("{}\n", session["PlayerSessionId"].as_str().unwrap()).as_bytes())
        .await?;
    let mut reader = tokio::io::BufReader::new(&mut stream);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await??;
    if line.is_empty() {
        bail!("the game server closed the connection without answering");
    }
    Ok((stream, line.trim_end().to_string()))
}
