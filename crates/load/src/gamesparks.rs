//! GameSparks: a SigV4-signing rest-json client, a WebSocket game client speaking
//! `sessiond.gamesparks.v1`, and the runtime benchmark (`gamesparks-bench`: hold many idle
//! player connections, measure sessiond's memory per connection and DisconnectPlayer latency
//! from the API call to the close frame at the client; `gamesparks-hold`: a child process that
//! holds a share of the connections from its own loopback source address).

use crate::sign::hmac;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::Request;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::client::{connect, Sender, Target};

pub const SERVICE: &str = "gamesparks";
pub const RUNTIME_PATH: &str = "/gamesparks/runtime/v1";

// ---- SigV4 (client side) --------------------------------------------------------------------

fn encode_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Percent-encodes a URI label or query value (everything but `A-Za-z0-9-_.~`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    encode_into(s.as_bytes(), &mut out);
    out
}

/// `YYYYMMDD'T'HHMMSS'Z'` of Unix seconds.
pub fn amz_date(unix: i64) -> String {
    sessiond_api_common::timefmt::format_compact(unix)
}

/// Signs rest-json requests like botocore does: path segments encoded twice (once when the
/// path is built, once in the canonical request), sorted query, `host;x-amz-date` (+
/// `content-type` with a body).
#[derive(Clone)]
pub struct AwsSigner {
    pub access_key: String,
    secret: String,
    pub region: String,
}

impl AwsSigner {
    pub fn new(access_key: &str, secret: &str, region: &str) -> Self {
        AwsSigner {
            access_key: access_key.into(),
            secret: secret.into(),
            region: region.into(),
        }
    }

    /// The Authorization header value for a request whose `path` is already encoded once.
    pub fn authorization(
        &self,
        method: &str,
        path: &str,
        query: &str,
        signed: &[(&str, &str)],
        body: &[u8],
        date: &str,
    ) -> String {
        let mut canonical_uri = String::new();
        for (i, seg) in path.split('/').enumerate() {
            if i > 0 {
                canonical_uri.push('/');
            }
            encode_into(seg.as_bytes(), &mut canonical_uri);
        }
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        pairs.sort();
        let canonical_query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut names: Vec<(String, &str)> = signed
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim()))
            .collect();
        names.sort();
        let headers: String = names.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed_names = names
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical = format!(
            "{method}\n{canonical_uri}\n{canonical_query}\n{headers}\n{signed_names}\n{}",
            hex::encode(Sha256::digest(body))
        );
        let day = &date[..8];
        let scope = format!("{day}/{}/{SERVICE}/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let k = hmac(format!("AWS4{}", self.secret).as_bytes(), day.as_bytes());
        let k = hmac(&k, self.region.as_bytes());
        let k = hmac(&k, SERVICE.as_bytes());
        let k = hmac(&k, b"aws4_request");
        let signature = hex::encode(hmac(&k, to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_names}, Signature={signature}",
            self.access_key
        )
    }
}

// ---- rest-json client -----------------------------------------------------------------------

/// An answer of the API: status, the headers that matter, the JSON body.
#[derive(Debug, Clone)]
pub struct GsResponse {
    pub status: u16,
    pub error_type: Option<String>,
    pub request_id: Option<String>,
    pub date: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl GsResponse {
    /// The body on 200, else an error naming the code and message.
    pub fn ok(self) -> anyhow::Result<Value> {
        if self.status == 200 {
            Ok(self.body)
        } else {
            bail!(
                "HTTP {} {}: {}",
                self.status,
                self.error_type.unwrap_or_default(),
                self.body["message"].as_str().unwrap_or("")
            )
        }
    }
}

/// A sequential signed client over one keep-alive connection.
pub struct GsClient {
    pub target: Target,
    pub signer: AwsSigner,
    sender: Option<Sender>,
    timeout: Duration,
    /// Added to the clock when signing (tests of the time window).
    pub skew_seconds: i64,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl GsClient {
    pub fn new(target: Target, signer: AwsSigner, timeout: Duration) -> Self {
        GsClient {
            target,
            signer,
            sender: None,
            timeout,
            skew_seconds: 0,
        }
    }

    /// A signed request: `path` encoded once (labels through [`encode`]), `query` pairs raw.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<GsResponse> {
        let query: String = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let date = amz_date(unix_now() + self.skew_seconds);
        let host = self.target.host.clone();
        let mut signed: Vec<(&str, &str)> = vec![("host", &host), ("x-amz-date", &date)];
        if !body.is_empty() {
            signed.push(("content-type", "application/json"));
        }
        let authorization = self
            .signer
            .authorization(method, path, &query, &signed, &body, &date);
        let uri = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", HeaderValue::from_str(&host)?)
            .header("x-amz-date", HeaderValue::from_str(&date)?)
            .header("authorization", HeaderValue::from_str(&authorization)?);
        if !body.is_empty() {
            builder = builder.header("content-type", "application/json");
        }
        let req = builder.body(Full::new(Bytes::from(body)))?;
        self.send(req).await
    }

    /// Sends a prepared request on the keep-alive connection.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<GsResponse> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => connect(self.target.addr).await?,
        };
        sender.ready().await?;
        let resp = tokio::time::timeout(self.timeout, sender.send_request(req))
            .await
            .map_err(|_| anyhow!("timed out after {:?}", self.timeout))??;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (status, error_type, request_id, date, content_type) = (
            resp.status().as_u16(),
            header("x-amzn-errortype"),
            header("x-amzn-requestid"),
            header("date"),
            header("content-type"),
        );
        use http_body_util::BodyExt;
        let bytes = tokio::time::timeout(self.timeout, resp.into_body().collect())
            .await
            .map_err(|_| anyhow!("body timed out"))??
            .to_bytes();
        self.sender = Some(sender);
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&bytes)))?
        };
        Ok(GsResponse {
            status,
            error_type,
            request_id,
            date,
            content_type,
            body,
        })
    }

    pub async fn create_game(&mut self, name: &str) -> anyhow::Result<Value> {
        self.call("POST", "/game", &[], Some(&json!({ "GameName": name })))
            .await?
            .ok()
    }

    /// CreateStage; returns StageDetails (with the GameKey).
    pub async fn create_stage(&mut self, game: &str, stage: &str) -> anyhow::Result<Value> {
        let body = json!({"StageName": stage, "Role": "arn:aws:iam::123456789012:role/GameSparks"});
        let v = self
            .call(
                "POST",
                &format!("/game/{}/stage", encode(game)),
                &[],
                Some(&body),
            )
            .await?
            .ok()?;
        Ok(v["Stage"].clone())
    }

    pub async fn disconnect_player(
        &mut self,
        game: &str,
        stage: &str,
        player: &str,
    ) -> anyhow::Result<GsResponse> {
        self.call(
            "POST",
            &format!(
                "/runtime/game/{}/stage/{}/player/{}/disconnect",
                encode(game),
                encode(stage),
                encode(player)
            ),
            &[],
            None,
        )
        .await
    }

    pub async fn connection_status(
        &mut self,
        game: &str,
        stage: &str,
        player: &str,
    ) -> anyhow::Result<GsResponse> {
        self.call(
            "GET",
            &format!(
                "/runtime/game/{}/stage/{}/player/{}/connection",
                encode(game),
                encode(stage),
                encode(player)
            ),
            &[],
            None,
        )
        .await
    }
}

// ---- WebSocket game client ------------------------------------------------------------------

type Ws = WebSocketStream<TcpStream>;

/// One authenticated player connection.
pub struct Player {
    pub ws: Ws,
    pub player_id: String,
    pub player_token: String,
    pub connection_id: String,
    pub welcome: Value,
}

/// What the server sent next.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Text(Value),
    Close {
        code: u16,
        reason: String,
    },
    /// The connection ended without a close frame.
    Ended,
    Timeout,
}

/// Why a connection was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Closed { code: u16, reason: String },
    Other(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Closed { code, reason } => write!(f, "closed {code}: {reason}"),
            Refused::Other(m) => f.write_str(m),
        }
    }
}

fn client_config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    c.read_buffer_size = 1024;
    c.write_buffer_size = 0;
    c
}

/// Opens a WebSocket to the runtime (from `source` if given) without saying hello.
pub async fn open_socket(addr: SocketAddr, source: Option<IpAddr>) -> anyhow::Result<Ws> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{addr}{RUNTIME_PATH}");
    let (ws, response) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(client_config())).await?;
    if response.status() != 101 {
        bail!("upgrade answered {}", response.status());
    }
    Ok(ws)
}

/// Reads the next server event (answering pings), within `timeout`.
pub async fn next_event(ws: &mut Ws, timeout: Duration) -> Event {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Event::Timeout,
            Ok(None) | Ok(Some(Err(_))) => return Event::Ended,
            Ok(Some(Ok(Message::Text(t)))) => {
                return Event::Text(serde_json::from_str(t.as_str()).unwrap_or(Value::Null))
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return match frame {
                    Some(f) => Event::Close {
                        code: u16::from(f.code),
                        reason: f.reason.to_string(),
                    },
                    None => Event::Close {
                        code: 1005,
                        reason: String::new(),
                    },
                }
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

impl Player {
    /// Connects and says hello; a new player when `token` is None.
    pub async fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        game_key: &str,
        token: Option<&str>,
    ) -> Result<Player, Refused> {
        let mut ws = open_socket(addr, source)
            .await
            .map_err(|e| Refused::Other(format!("{e:#}")))?;
        let mut hello = json!({"type": "hello", "gameKey": game_key});
        if let Some(t) = token {
            hello["playerToken"] = json!(t);
        }
        ws.send(Message::text(hello.to_string()))
            .await
            .map_err(|e| Refused::Other(e.to_string()))?;
        match next_event(&mut ws, Duration::from_secs(10)).await {
            Event::Text(v) if v["type"] == "welcome" => Ok(Player {
                player_id: v["playerId"].as_str().unwrap_or_default().to_string(),
                player_token: v["playerToken"].as_str().unwrap_or_default().to_string(),
                connection_id: v["connectionId"].as_str().unwrap_or_default().to_string(),
                welcome: v,
                ws,
            }),
            Event::Close { code, reason } => Err(Refused::Closed { code, reason }),
            other => Err(Refused::Other(format!(
                "unexpected answer to hello: {other:?}"
            ))),
        }
    }

    pub async fn next_event(&mut self, timeout: Duration) -> Event {
        next_event(&mut self.ws, timeout).await
    }

    pub async fn send_json(&mut self, v: &Value) -> anyhow::Result<()> {
        self.ws.send(Message::text(v.to_string())).await?;
        Ok(())
    }
}

// ---- benchmark ------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// sessiond API endpoint (http://host:port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub endpoint: String,
    #[arg(long)]
    pub access_key: String,
    #[arg(long)]
    pub secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// sessiond's pid, to read its resident memory (/proc/PID/status).
    #[arg(long)]
    pub sessiond_pid: u32,
    /// Idle player connections to hold (one player each).
    #[arg(long, default_value_t = 15_000)]
    pub connections: usize,
    /// Child processes that hold them, each from its own loopback source address
    /// (127.0.0.2, 127.0.0.3, ...).
    #[arg(long, default_value_t = 3)]
    pub processes: usize,
    /// DisconnectPlayer calls to time (each on its own probe player, held by this process).
    #[arg(long, default_value_t = 500)]
    pub disconnects: usize,
    /// Concurrent connection attempts per child.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
}

#[derive(Args, Debug)]
pub struct HoldArgs {
    #[arg(long)]
    pub addr: SocketAddr,
    #[arg(long)]
    pub game_key: String,
    #[arg(long)]
    pub connections: usize,
    #[arg(long)]
    pub source_ip: Option<IpAddr>,
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
}

fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// Holds `connections` player connections (answering pings) until stdin closes; prints
/// `ready N` once they are all up and `failed N` if some could not connect.
pub async fn hold(args: HoldArgs) -> anyhow::Result<()> {
    let semaphore =
        std::sync::Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let permit = semaphore.clone().acquire_owned().await?;
        let key = args.game_key.clone();
        let (addr, source) = (args.addr, args.source_ip);
        tasks.spawn(async move {
            let mut last = None;
            for _ in 0..5 {
                match Player::connect(addr, source, &key, None).await {
                    Ok(p) => {
                        drop(permit);
                        return Ok(p);
                    }
                    Err(e) => {
                        last = Some(e);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            drop(permit);
            Err(last.map(|e| e.to_string()).unwrap_or_default())
        });
    }
    let mut players = Vec::with_capacity(args.connections);
    let mut failed = 0usize;
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(p)) => players.push(p),
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if failed > 0 {
            writeln!(out, "failed {failed} {}", first_error.unwrap_or_default())?;
        }
        writeln!(out, "ready {}", players.len())?;
        out.flush()?;
    }
    // Keep reading each socket (pings are answered while reading).
    for mut p in players {
        tokio::spawn(async move { while let Some(Ok(_)) = p.ws.next().await {} });
    }
    // Until the parent writes a line or goes away.
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The benchmark: baseline RSS, N idle connections from child processes, RSS per connection,
/// then DisconnectPlayer latency (API call -> close frame at the client) at that load.
pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.processes == 0 || args.processes > 200 {
        bail!("--processes must be between 1 and 200");
    }
    let target = Target::from_endpoint(&args.endpoint, &args.region).await?;
    let mut api = GsClient::new(
        target.clone(),
        AwsSigner::new(&args.access_key, &args.secret_key, &args.region),
        Duration::from_secs(30),
    );
    let run = format!(
        "bench{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() % 100_000_000)
            .unwrap_or(0)
    );
    api.create_game(&run).await.context("CreateGame")?;
    let stage = api
        .create_stage(&run, "load")
        .await
        .context("CreateStage")?;
    let game_key = stage["GameKey"]
        .as_str()
        .ok_or_else(|| anyhow!("no GameKey in {stage}"))?
        .to_string();
    println!("setup: game {run}, stage load, GameKey {game_key}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    let base_kb = rss_kb(args.sessiond_pid)?;
    println!("sessiond RSS before connections: {base_kb} kB");

    let exe = std::env::current_exe()?;
    let per = args.connections.div_ceil(args.processes);
    let mut children = Vec::new();
    let started = Instant::now();
    let mut left = args.connections;
    for i in 0..args.processes {
        let n = per.min(left);
        left -= n;
        if n == 0 {
            break;
        }
        let source = format!("127.0.0.{}", 2 + i);
        let mut child = tokio::process::Command::new(&exe)
            .args([
                "gamesparks-hold",
                "--addr",
                &target.addr.to_string(),
                "--game-key",
                &game_key,
                "--connections",
                &n.to_string(),
                "--source-ip",
                &source,
                "--connect-concurrency",
                &args.connect_concurrency.to_string(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a gamesparks-hold child")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        children.push((child, tokio::io::BufReader::new(stdout).lines()));
    }
    let mut held = 0usize;
    for (_, lines) in children.iter_mut() {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(600), lines.next_line())
                .await
                .map_err(|_| anyhow!("a child did not report within 600 s"))??
                .ok_or_else(|| anyhow!("a child ended before it was ready"))?;
            if let Some(n) = line.strip_prefix("ready ") {
                held += n.trim().parse::<usize>().unwrap_or(0);
                break;
            }
            println!("child: {line}");
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    println!(
        "held: {held} idle player connections from {} processes in {connect_secs:.1} s",
        children.len()
    );
    // Let allocations settle, then read RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded_kb = rss_kb(args.sessiond_pid)?;
    let open_fds = std::fs::read_dir(format!("/proc/{}/fd", args.sessiond_pid))
        .map(|d| d.count())
        .unwrap_or(0);
    println!("sessiond open file descriptors: {open_fds}");
    let per_conn_kib = (loaded_kb.saturating_sub(base_kb)) as f64 / held.max(1) as f64;
    let total_per_conn_kib = loaded_kb as f64 / held.max(1) as f64;
    let fits_24g = (24.0 * 1024.0 * 1024.0 / per_conn_kib.max(0.001)) as u64;
    println!(
        "sessiond RSS with {held} connections: {loaded_kb} kB; {per_conn_kib:.2} KiB per connection above the baseline ({total_per_conn_kib:.2} KiB counting the whole process); 24 GiB holds ~{fits_24g} connections at that rate"
    );

    // DisconnectPlayer latency: probe players held here, one call each.
    let mut latencies_ms = Vec::with_capacity(args.disconnects);
    let mut api_ms = Vec::with_capacity(args.disconnects);
    let mut failures = 0usize;
    for _ in 0..args.disconnects {
        let mut p = Player::connect(target.addr, None, &game_key, None)
            .await
            .map_err(|e| anyhow!("probe connect: {e}"))?;
        let player_id = p.player_id.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(async move {
            let ev = p.next_event(Duration::from_secs(10)).await;
            let _ = tx.send((Instant::now(), ev));
            p
        });
        let t0 = Instant::now();
        let resp = api.disconnect_player(&run, "load", &player_id).await?;
        let t_api = t0.elapsed();
        let (t_close, ev) = rx.await.map_err(|_| anyhow!("probe reader ended"))?;
        let _ = reader.await;
        let ok = resp.status == 200
            && resp.body["DisconnectSuccesses"].as_array().map(Vec::len) == Some(1)
            && matches!(ev, Event::Close { code: 4000, .. });
        if !ok {
            failures += 1;
            if failures <= 3 {
                println!("probe failure: {} {} / {:?}", resp.status, resp.body, ev);
            }
            continue;
        }
        latencies_ms.push(t_close.duration_since(t0).as_secs_f64() * 1000.0);
        api_ms.push(t_api.as_secs_f64() * 1000.0);
    }
    latencies_ms.sort_by(f64::total_cmp);
    api_ms.sort_by(f64::total_cmp);
    let still_held = held; // the children keep theirs open throughout
    println!(
        "DisconnectPlayer -> close frame at the client, {} calls at {still_held} idle connections: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (API response p50 {:.3} ms, p99 {:.3} ms); failures {failures}",
        latencies_ms.len(),
        percentile(&latencies_ms, 0.5),
        percentile(&latencies_ms, 0.99),
        latencies_ms.last().copied().unwrap_or(f64::NAN),
        percentile(&api_ms, 0.5),
        percentile(&api_ms, 0.99),
    );
    let final_kb = rss_kb(args.sessiond_pid)?;
    println!(
        "{}",
        json!({
            "connections": held,
            "processes": children.len(),
            "connect_seconds": (connect_secs * 10.0).round() / 10.0,
            "rss_base_kb": base_kb,
            "rss_loaded_kb": loaded_kb,
            "sessiond_open_fds": open_fds,
            "rss_after_kb": final_kb,
            "kib_per_connection": (per_conn_kib * 100.0).round() / 100.0,
            "kib_per_connection_whole_process": (total_per_conn_kib * 100.0).round() / 100.0,
            "connections_in_24_gib": fits_24g,
            "disconnects": latencies_ms.len(),
            "disconnect_failures": failures,
            "close_p50_ms": percentile(&latencies_ms, 0.5),
            "close_p99_ms": percentile(&latencies_ms, 0.99),
            "close_max_ms": latencies_ms.last().copied(),
            "api_p50_ms": percentile(&api_ms, 0.5),
            "api_p99_ms": percentile(&api_ms, 0.99),
        })
    );
    for (mut child, _) in children {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"\n").await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        let _ = child.kill().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_reference_vector() {
        // shared/reference/gamesparks.md §6 golden value (DisconnectPlayer).
        let s = AwsSigner::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        );
        let auth = s.authorization(
            "POST",
            "/runtime/game/MyGame/stage/Dev/player/player-1/disconnect",
            "",
            &[
                ("host", "localhost:8080"),
                ("x-amz-date", "20220323T120000Z"),
            ],
            b"",
            "20220323T120000Z",
        );
        assert!(
            auth.ends_with(
                "Signature=fafed41a3012f396ba3f65eaabb21204796643040efaea60d8a4d4a7e87958fb"
            ),
            "{auth}"
        );
        let auth = s.authorization(
            "DELETE",
            "/tags/arn%3Aaws%3Agamesparks%3Aus-east-1%3A123456789012%3Agame%2FMyGame",
            "tagKeys=a&tagKeys=b%20c",
            &[
                ("host", "localhost:8080"),
                ("x-amz-date", "20220323T120000Z"),
            ],
            b"",
            "20220323T120000Z",
        );
        assert!(auth.ends_with(
            "Signature=820b8fa5febd008875e45eca895fb1be7fd8f2e92df617c4dc66ee0bdf5a4641"
        ));
        assert_eq!(encode("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(amz_date(1_648_036_800), "20220323T120000Z");
    }
}
