//! Private Redis servers for the DCS tests: `redis-server` on a free port, bound to 127.0.0.1
//! and ::1, no persistence, in a temporary folder, killed on drop (also when a test fails).
//! Plus a blocking RESP helper for checks (`CLIENT LIST`, `INFO`) and a sessiond
//! installation with a `[dcs]` section.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Sessiond;

pub const REDIS_BIN: &str = "/usr/bin/redis-server";

/// The redis-server binary; `None` (with a printed reason) when it is missing outside CI. In CI
/// (CI=true) a missing binary fails the test.
pub fn redis_server_bin() -> Option<PathBuf> {
    let path = std::env::var_os("REDIS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(REDIS_BIN));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{} is missing: the DCS tests need redis-server (apt-get install redis-server)",
            path.display()
        );
    }
    eprintln!(
        "skipping: {} is missing (install redis-server; in CI this fails)",
        path.display()
    );
    None
}

#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    pub password: Option<String>,
    /// An ACL user: (name, password, rules such as `+@all` or `+ping +client +info`).
    pub acl_user: Option<(String, String, String)>,
    pub maxclients: Option<u32>,
    /// `host port` of a master to replicate.
    pub replica_of: Option<SocketAddr>,
}

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub options: RedisOptions,
}

fn free_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if std::net::TcpListener::bind(("::1", port)).is_ok() {
            return port;
        }
    }
}

impl RedisServer {
    /// Starts a server; `None` if redis-server is missing outside CI.
    pub fn start(options: RedisOptions) -> Option<RedisServer> {
        let bin = redis_server_bin()?;
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "::1"])
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(dir.path().join("redis.log"))
                .args(["--daemonize", "no"])
                .arg("--maxclients")
                .arg(options.maxclients.unwrap_or(1000).to_string());
            if let Some(pw) = &options.password {
                cmd.arg("--requirepass").arg(pw);
            }
            if let Some((user, pw, rules)) = &options.acl_user {
                cmd.arg("--user").arg(user).arg("on").arg(format!(">{pw}"));
                cmd.arg("~*").arg("&*");
                cmd.args(rules.split_whitespace());
            }
            if let Some(master) = options.replica_of {
                cmd.arg("--replicaof")
                    .arg(master.ip().to_string())
                    .arg(master.port().to_string());
                if let Some(pw) = &options.password {
                    cmd.arg("--masterauth").arg(pw);
                }
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut server = RedisServer {
                child: Some(child),
                port,
                dir,
                options: options.clone(),
            };
            if server.wait_ready(Duration::from_secs(10)) {
                return Some(server);
            }
            server.kill();
        }
        panic!("redis-server did not start (5 attempts)");
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            if let Ok(reply) = self.admin(&["PING"]) {
                if reply == "PONG" {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn v4(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn v6(&self) -> SocketAddr {
        format!("[::1]:{}", self.port).parse().unwrap()
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// SIGSTOP: the server keeps its socket (connects are accepted by the kernel) but answers
    /// nothing, as a hung node.
    pub fn pause(&self) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGSTOP,
            );
        }
    }

    pub fn resume(&self) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGCONT,
            );
        }
    }

    /// SIGKILL: the node is down.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.resume();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One command on a fresh connection, authenticated like an administrator would be; the
    /// reply as text (`Err` for an error reply).
    pub fn admin(&self, args: &[&str]) -> Result<String, String> {
        // The default user: no password unless requirepass is set (ACL users are for sessiond).
        let auth: Vec<&str> = match &self.options.password {
            Some(pw) => vec!["AUTH", pw],
            None => vec![],
        };
        let mut cmds: Vec<&[&str]> = Vec::new();
        if !auth.is_empty() {
            cmds.push(&auth);
        }
        cmds.push(args);
        let replies = command(self.v4(), &cmds)?;
        replies.into_iter().last().ok_or_else(|| "no reply".into())
    }

    /// `CLIENT LIST` as (id, addr, name) triples.
    pub fn client_list(&self) -> Vec<(u64, String, String)> {
        let text = self.admin(&["CLIENT", "LIST"]).expect("CLIENT LIST");
        text.lines()
            .map(|line| {
                let field = |k: &str| {
                    line.split(' ')
                        .find_map(|f| f.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                        .unwrap_or("")
                        .to_string()
                };
                (
                    field("id").parse().unwrap_or(0),
                    field("addr"),
                    field("name"),
                )
            })
            .collect()
    }

    pub fn addrs(&self) -> Vec<String> {
        self.client_list().into_iter().map(|(_, a, _)| a).collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends the commands in one go on a new connection and reads one reply each (2 s bound).
pub fn command(addr: SocketAddr, commands: &[&[&str]]) -> Result<Vec<String>, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = Vec::new();
    for args in commands {
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in *args {
            buf.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    stream.write_all(&buf).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut out = Vec::new();
    for _ in commands {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let line = line.trim_end().to_string();
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" | ":" => out.push(rest.to_string()),
            "-" => return Err(rest.to_string()),
            "$" => {
                let n: i64 = rest.parse().map_err(|_| line.clone())?;
                if n < 0 {
                    out.push(String::new());
                } else {
                    let mut data = vec![0u8; n as usize + 2];
                    reader.read_exact(&mut data).map_err(|e| e.to_string())?;
                    data.truncate(n as usize);
                    out.push(String::from_utf8_lossy(&data).into_owned());
                }
            }
            _ => return Err(format!("unexpected reply {line:?}")),
        }
    }
    Ok(out)
}

/// Project A (two keys) and project B (one key), as in the GSE tests' accounts.
pub const DCS_KEY_A: (&str, &str) = ("HWAKprojectA1", "hw-secret-a1");
pub const DCS_KEY_A2: (&str, &str) = ("HWAKprojectA2", "hw-secret-a2");
pub const DCS_KEY_B: (&str, &str) = ("HWAKprojectB1", "hw-secret-b1");
pub const PROJECT_A: &str = "0605767a3300d5762fb7c0186d9e1779";
pub const PROJECT_B: &str = "1705767a3300d5762fb7c0186d9e1780";

/// A node declared in the `[dcs]` section.
pub struct NodeDecl<'a> {
    pub node_id: &'a str,
    pub role: &'a str,
    pub group: &'a str,
    pub address: String,
    /// Raw TOML lines added to the node (password, user, ...).
    pub extra: String,
}

impl<'a> NodeDecl<'a> {
    pub fn new(node_id: &'a str, role: &'a str, group: &'a str, server: &RedisServer) -> Self {
        let mut extra = String::new();
        if let Some(pw) = &server.options.password {
            extra.push_str(&format!("password = \"{pw}\"\n"));
        } else if let Some((u, pw, _)) = &server.options.acl_user {
            extra.push_str(&format!("user = \"{u}\"\npassword = \"{pw}\"\n"));
        }
        NodeDecl {
            node_id,
            role,
            group,
            address: server.v4().to_string(),
            extra,
        }
    }
}

/// A `[[dcs.instances]]` block.
pub fn instance_toml(id: &str, name: &str, project: &str, nodes: &[NodeDecl<'_>]) -> String {
    let mut out = format!(
        "\n[[dcs.instances]]\ninstance_id = \"{id}\"\nname = \"{name}\"\nproject_id = \"{project}\"\n"
    );
    for n in nodes {
        out.push_str(&format!(
            "\n[[dcs.instances.nodes]]\nnode_id = \"{}\"\nrole = \"{}\"\ngroup = \"{}\"\naddress = \"{}\"\n{}",
            n.node_id, n.role, n.group, n.address, n.extra
        ));
    }
    out
}

/// A sessiond installation for DCS: credentials of two projects, a `[dcs]` section.
pub struct DcsEnv {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl DcsEnv {
    /// `dcs` is the body of the `[dcs]` section plus instance blocks; `extra` more sections.
    pub fn new(dcs: &str, extra: &str) -> DcsEnv {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sessiond.toml");
        let text = format!(
            r#"data_dir = "{data}"

[listen]
api = "127.0.0.1:0"
agent = "127.0.0.1:0"

[[credentials]]
access_key_id = "{a1}"
secret_access_key = "{s1}"
account_id = "{PROJECT_A}"

[[credentials]]
access_key_id = "{a2}"
secret_access_key = "{s2}"
account_id = "{PROJECT_A}"

[[credentials]]
access_key_id = "{b1}"
secret_access_key = "{s3}"
account_id = "{PROJECT_B}"

{extra}

[dcs]
{dcs}
"#,
            data = dir.path().join("data").display(),
            a1 = DCS_KEY_A.0,
            s1 = DCS_KEY_A.1,
            a2 = DCS_KEY_A2.0,
            s2 = DCS_KEY_A2.1,
            b1 = DCS_KEY_B.0,
            s3 = DCS_KEY_B.1,
        );
        std::fs::write(&config, text).unwrap();
        DcsEnv { dir, config }
    }

    pub fn start(&self) -> Sessiond {
        Sessiond::start(&self.config).expect("sessiond starts")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }
}

impl Sessiond {
    pub async fn dcs(&self, key: (&str, &str), project: &str) -> sessiond_load::dcs::DcsClient {
        let mut c = sessiond_load::dcs::DcsClient::new(&self.endpoint(), key.0, key.1, project)
            .await
            .unwrap();
        c.timeout = Duration::from_secs(20);
        c
    }
}

/// Asserts an error answer: status, `error_code`, `X-Request-Id`; returns `error_msg`.
pub fn expect_error(resp: &sessiond_load::dcs::DcsResponse, status: u16, code: &str) -> String {
    let body = resp.json();
    assert_eq!(
        (resp.status, body["error_code"].as_str().unwrap_or("")),
        (status, code),
        "{}",
        String::from_utf8_lossy(&resp.body)
    );
    assert!(resp.request_id.is_some(), "no X-Request-Id");
    body["error_msg"].as_str().unwrap_or("").to_string()
}

/// Asserts a 200 answer with `X-Request-Id`; returns the JSON body.
pub fn expect_ok(resp: &sessiond_load::dcs::DcsResponse) -> serde_json::Value {
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert!(resp.request_id.is_some(), "no X-Request-Id");
    resp.json()
}

/// Polls ShowJobInfo until the job is no longer RUNNING.
pub async fn wait_job(
    client: &mut sessiond_load::dcs::DcsClient,
    job_id: &str,
    timeout: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let job = expect_ok(
            &client
                .call("GET", &format!("jobs/{job_id}"), &[], None)
                .await
                .unwrap(),
        );
        if job["status"] != "RUNNING" {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} still RUNNING: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
