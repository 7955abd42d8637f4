//! Private MariaDB servers for the DCDB tests: `mariadb-install-db` into a temporary folder,
//! then `mariadbd` on a free port bound to 127.0.0.1 (never the system server on 3306), users
//! created over its private socket, killed on drop (also when a test fails). Plus the DCDB
//! helpers: config sections for sessiond, a signed DCDB client, flow polling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sessiond_backends::mariadb::mysql_async::{self, prelude::Queryable, Conn, OptsBuilder};
use sessiond_load::client::api_error_code;
use sessiond_load::dcdb::DcdbClient;

use super::Sessiond;

pub const MARIADBD: &str = "/usr/sbin/mariadbd";
pub const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";

/// sessiond's database user: may see and kill every session.
pub const ADMIN: (&str, &str) = ("sessiond", "sessiond-Pw1");
/// An application user (the sessions that get killed).
pub const APP: (&str, &str) = ("app", "app-Pw1");
/// A user the tests declare protected.
pub const REPL: (&str, &str) = ("repl", "repl-Pw1");
/// A user without PROCESS or CONNECTION ADMIN.
pub const WEAK: (&str, &str) = ("weak", "weak-Pw1");
/// Like ADMIN but only over TLS (`REQUIRE SSL`; created on TLS servers only).
pub const TLS_ADMIN: (&str, &str) = ("tlsadmin", "tls-Pw1");

fn bin(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// `(mariadbd, mariadb-install-db)`; `None` (with a printed reason) when missing outside CI.
/// In CI (CI=true) a missing binary fails the test.
pub fn mariadb_bins() -> Option<(PathBuf, PathBuf)> {
    let server = bin("MARIADBD_BIN", MARIADBD);
    let install = bin("MARIADB_INSTALL_DB_BIN", INSTALL_DB);
    for path in [&server, &install] {
        if !path.exists() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "{} is missing: the DCDB tests need MariaDB (apt-get install mariadb-server)",
                    path.display()
                );
            }
            eprintln!(
                "skipping: {} is missing (install mariadb-server; in CI this fails)",
                path.display()
            );
            return None;
        }
    }
    Some((server, install))
}

#[derive(Debug, Clone)]
pub struct MariaDbOptions {
    pub max_connections: u32,
    /// Serve TLS with a private CA (its certificate is `MariaDb::ca_file`).
    pub tls: bool,
    /// Run the event scheduler (its `event_scheduler` daemon thread must never be killed).
    pub event_scheduler: bool,
}

impl Default for MariaDbOptions {
    fn default() -> Self {
        MariaDbOptions {
            max_connections: 200,
            tls: false,
            event_scheduler: false,
        }
    }
}

pub struct MariaDb {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    /// The CA that signed the server certificate (TLS servers only).
    pub ca_file: Option<PathBuf>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA and a server certificate for 127.0.0.1 / localhost (openssl CLI).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    std::fs::write(
        p("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=sessiond test CA"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem")),
        "openssl (CA)",
    );
    run(
        Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
            ])
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")),
        "openssl (server key)",
    );
    run(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("san.ext"))
            .arg("-out")
            .arg(p("server.pem")),
        "openssl (server certificate)",
    );
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

impl MariaDb {
    /// Installs and starts a server and creates the test users; `None` if MariaDB is missing
    /// outside CI.
    pub async fn start(options: MariaDbOptions) -> Option<MariaDb> {
        let (server, install) = mariadb_bins()?;
        let dir = tempfile::Builder::new().prefix("mdb").tempdir().unwrap();
        let data = dir.path().join("data");
        // A private tmpdir: servers bootstrapped side by side must not share /tmp's temp tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        {
            let data = data.clone();
            let tmp = tmp.clone();
            tokio::task::spawn_blocking(move || {
                run(
                    Command::new(&install)
                        .arg("--no-defaults")
                        .arg(format!("--datadir={}", data.display()))
                        .arg(format!("--tmpdir={}", tmp.display()))
                        .args([
                            "--auth-root-authentication-method=normal",
                            "--skip-test-db",
                            "--user=root",
                            "--innodb-log-file-size=4M",
                        ]),
                    "mariadb-install-db",
                )
            })
            .await
            .unwrap();
        }
        let tls = options.tls.then(|| make_certs(dir.path()));
        let socket = dir.path().join("mariadb.sock");
        let log = dir.path().join("error.log");
        let mut db = MariaDb {
            child: None,
            port: 0,
            socket: socket.clone(),
            ca_file: tls.as_ref().map(|t| t.0.clone()),
            dir,
        };
        let mut last_error = String::new();
        // A free port can be taken by someone else before mariadbd binds it: try a few.
        for _attempt in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(&server);
            cmd.arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .arg(format!("--port={port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--max-connections={}", options.max_connections))
                .arg(format!(
                    "--pid-file={}",
                    db.dir.path().join("mariadb.pid").display()
                ))
                .arg(format!("--log-error={}", log.display()))
                .args([
                    "--user=root",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                    "--innodb-buffer-pool-size=16M",
                    "--innodb-log-file-size=4M",
                    "--performance-schema=OFF",
                ])
                .arg(format!(
                    "--event-scheduler={}",
                    if options.event_scheduler { "ON" } else { "OFF" }
                ));
            if let Some((ca, cert, key)) = &tls {
                cmd.arg(format!("--ssl-ca={}", ca.display()))
                    .arg(format!("--ssl-cert={}", cert.display()))
                    .arg(format!("--ssl-key={}", key.display()));
            }
            db.port = port;
            db.child = Some(
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn mariadbd"),
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(status) = db.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    last_error = format!(
                        "mariadbd exited ({status}): {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    break;
                }
                if let Ok(mut root) = db.try_root().await {
                    db.create_users(&mut root, options.tls).await;
                    let _ = root.disconnect().await;
                    return Some(db);
                }
                if Instant::now() > deadline {
                    panic!(
                        "mariadbd did not accept connections within 60 s: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            db.stop();
        }
        panic!("mariadbd did not start: {last_error}");
    }

    async fn try_root(&self) -> Result<Conn, mysql_async::Error> {
        let opts = OptsBuilder::default()
            .socket(Some(self.socket.display().to_string()))
            .user(Some("root"))
            .prefer_socket(true);
        Conn::new(opts).await
    }

    async fn create_users(&self, root: &mut Conn, tls: bool) {
        let mut statements = vec![
            format!("CREATE USER '{}'@'%' IDENTIFIED BY '{}'", ADMIN.0, ADMIN.1),
            format!(
                "GRANT PROCESS, CONNECTION ADMIN ON *.* TO '{}'@'%'",
                ADMIN.0
            ),
            format!("CREATE USER '{}'@'%' IDENTIFIED BY '{}'", APP.0, APP.1),
            format!("CREATE USER '{}'@'%' IDENTIFIED BY '{}'", REPL.0, REPL.1),
            format!("CREATE USER '{}'@'%' IDENTIFIED BY '{}'", WEAK.0, WEAK.1),
        ];
        if tls {
            statements.push(format!(
                "CREATE USER '{}'@'%' IDENTIFIED BY '{}' REQUIRE SSL",
                TLS_ADMIN.0, TLS_ADMIN.1
            ));
            statements.push(format!(
                "GRANT PROCESS, CONNECTION ADMIN ON *.* TO '{}'@'%'",
                TLS_ADMIN.0
            ));
        }
        for sql in statements {
            root.query_drop(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    /// root over the private socket (for checks: it sees every thread).
    pub async fn root(&self) -> Conn {
        self.try_root().await.expect("root connection")
    }

    pub fn client_opts(&self, user: (&str, &str)) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some(user.0))
            .pass(Some(user.1))
            .prefer_socket(false)
    }

    /// `n` client connections over TCP with their thread ids.
    pub async fn clients(&self, user: (&str, &str), n: usize) -> Vec<(u64, Conn)> {
        sessiond_load::dcdb::open_clients(self.client_opts(user), n)
            .await
            .expect("client connections")
    }

    /// Every thread of the server: id -> (user, command), as root sees them (root's own
    /// checking connection excluded).
    pub async fn threads(&self) -> BTreeMap<u64, (String, String)> {
        let mut root = self.root().await;
        let rows: Vec<(u64, Option<String>, Option<String>)> = root
            .query(
                "SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()",
            )
            .await
            .expect("processlist");
        let _ = root.disconnect().await;
        rows.into_iter()
            .map(|(id, u, c)| (id, (u.unwrap_or_default(), c.unwrap_or_default())))
            .collect()
    }

    /// SIGKILL the server (a shard that goes down) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A `[[dcdb.instances.shards]]` entry whose master is this server.
    pub fn shard_toml(&self, shard_id: &str, serial: &str, user: (&str, &str)) -> String {
        format!(
            "[[dcdb.instances.shards]]\nshard_instance_id = \"{shard_id}\"\nshard_serial_id = \"{serial}\"\n\
             master = {{ host = \"127.0.0.1\", port = {}, user = \"{}\", password = \"{}\" }}\n",
            self.port, user.0, user.1
        )
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Did the client's connection die? (A query on it fails.)
pub async fn client_dead(conn: &mut Conn) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), conn.query_drop("SELECT 1")).await,
        Ok(Err(_))
    )
}

/// Rate limits for tests that poll DescribeFlow and call KillSession often.
pub const DCDB_LIMITS: &str = r#"[rate_limits]
"dcdb.KillSession" = 1000
"dcdb.DescribeFlow" = 1000
"dcdb.DescribeDCDBInstances" = 1000
"dcdb.DescribeDCDBShards" = 1000
"dcdb.DescribeDCDBInstanceNodeInfo" = 1000
"#;

/// A DCDB client for a running sessiond, signed with `key`.
pub async fn dcdb(server: &Sessiond, key: (&str, &str)) -> DcdbClient {
    DcdbClient::new(&server.endpoint(), key.0, key.1, Duration::from_secs(30))
        .await
        .unwrap()
}

/// Calls an action (TC3 POST JSON); `Err((code, message))` on an API error.
pub async fn dcdb_call(
    client: &mut DcdbClient,
    action: &str,
    params: Value,
) -> Result<Value, (String, String)> {
    match client.call(action, &params).await {
        Ok(v) => Ok(v),
        Err(err) => match api_error_code(&err) {
            Some(code) => Err((code.to_string(), format!("{err:#}"))),
            None => panic!("{action}: {err:#}"),
        },
    }
}

pub async fn dcdb_ok(client: &mut DcdbClient, action: &str, params: Value) -> Value {
    match dcdb_call(client, action, params.clone()).await {
        Ok(v) => v,
        Err((code, message)) => panic!("{action} {params} failed: {code}: {message}"),
    }
}

/// Asserts the call fails with `code`; returns the message.
pub async fn dcdb_fails(
    client: &mut DcdbClient,
    action: &str,
    params: Value,
    code: &str,
) -> String {
    match dcdb_call(client, action, params.clone()).await {
        Ok(v) => panic!("{action} {params} succeeded, expected {code}: {v}"),
        Err((got, message)) => {
            assert_eq!(got, code, "{action} {params}: {message}");
            message
        }
    }
}

/// KillSession; returns the TaskId.
pub async fn kill(client: &mut DcdbClient, params: Value) -> u64 {
    let v = dcdb_ok(client, "KillSession", params).await;
    v["TaskId"]
        .as_u64()
        .unwrap_or_else(|| panic!("TaskId in {v}"))
}

/// DescribeFlow until the task is no longer running (Status 2); returns the Response.
pub async fn wait_flow(client: &mut DcdbClient, task: u64, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let v = dcdb_ok(client, "DescribeFlow", json!({ "FlowId": task })).await;
        if v["Status"] != 2 {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "flow {task} still running after {timeout:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// KillSession, then DescribeFlow until it ends; returns the final DescribeFlow Response.
pub async fn kill_and_wait(client: &mut DcdbClient, params: Value) -> Value {
    let task = kill(client, params).await;
    wait_flow(client, task, Duration::from_secs(20)).await
}
