#![forbid(unsafe_code)]
//! An example GSE game server, written against the GSE game-server gRPC protocol the way a
//! studio would write one.
//!
//! Start-up:
//! 1. serves `GameServerGrpcSdkService` on `127.0.0.1:<any free port>` (the grpcPort);
//! 2. listens for players on `0.0.0.0:<--port N>` (default 0 = any free port; the clientPort);
//! 3. calls `ProcessReady(logPathsToUpload=[], clientPort, grpcPort)` on the agent at
//!    `$SESSIOND_AGENT_ADDR` (default `127.0.0.1:5758`). Every call to the agent carries the
//!    metadata `pid` (this process's pid) and `requestId` (unique per call).
//!
//! Agent callbacks:
//! - `OnHealthCheck` → `healthStatus = true`;
//! - `OnStartGameServerSession` → remembers the session and calls
//!   `ActivateGameServerSession(id, maxPlayers of the request)`;
//! - `OnProcessTerminate` → replies, then ends: `TerminateGameServerSession` (if it hosts
//!   one), `ProcessEnding`, exit 0. SIGTERM and SIGINT end it the same way.
//!
//! Player protocol (TCP, on the client port; lines end with `\n`):
//! 1. the client sends one line: `<playerSessionId>`;
//! 2. the server calls `AcceptPlayerSession(gameServerSessionId, playerSessionId)` and replies
//!    `OK` (the player is in; the connection stays open, anything further the client sends is
//!    ignored) or `ERR <message>` and closes the connection;
//! 3. when the client closes the connection the server calls `RemovePlayerSession`.
//!
//! The first line must arrive within 30 s and be at most 1024 bytes.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sessiond_gse_agent::proto::game_server_grpc_sdk_service_server::{
    GameServerGrpcSdkService, GameServerGrpcSdkServiceServer,
};
use sessiond_gse_agent::proto::gse_grpc_sdk_service_client::GseGrpcSdkServiceClient;
use sessiond_gse_agent::proto::{
    gse_response, AcceptPlayerSessionRequest, ActivateGameServerSessionRequest, GseResponse,
    HealthCheckRequest, HealthCheckResponse, ProcessEndingRequest, ProcessReadyRequest,
    ProcessTerminateRequest, RemovePlayerSessionRequest, StartGameServerSessionRequest,
    TerminateGameServerSessionRequest,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

const DEFAULT_AGENT_ADDR: &str = "127.0.0.1:5758";
const AGENT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_LINE: u64 = 1024;

/// The game server's state and its connection to the agent.
struct Game {
    agent: GseGrpcSdkServiceClient<Channel>,
    pid: u32,
    calls: AtomicU64,
    /// The game server session this process hosts.
    session: Mutex<Option<String>>,
    /// Asks `main` to end the process.
    end: mpsc::Sender<&'static str>,
}

impl Game {
    /// A request to the agent with the metadata GSE requires.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seq = self.calls.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{}-{nanos:x}-{seq}", self.pid);
        if let Ok(v) = self.pid.to_string().parse() {
            request.metadata_mut().insert("pid", v);
        }
        if let Ok(v) = request_id.parse() {
            request.metadata_mut().insert("requestid", v);
        }
        request.set_timeout(AGENT_TIMEOUT);
        request
    }

    fn session_id(&self) -> Option<String> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    async fn activate(&self, id: String, max_players: i32) {
        let req = self.request(ActivateGameServerSessionRequest {
            game_server_session_id: id.clone(),
            max_players,
        });
        match call(self.agent.clone().activate_game_server_session(req)).await {
            Ok(()) => tracing::info!(session = %id, max_players, "game server session activated"),
            Err(err) => {
                tracing::error!(session = %id, error = %err, "ActivateGameServerSession failed")
            }
        }
    }

    async fn accept(&self, session: &str, player_session: &str) -> Result<(), String> {
        let req = self.request(AcceptPlayerSessionRequest {
            game_server_session_id: session.to_string(),
            player_session_id: player_session.to_string(),
        });
        call(self.agent.clone().accept_player_session(req)).await
    }

    async fn remove(&self, session: &str, player_session: &str) -> Result<(), String> {
        let req = self.request(RemovePlayerSessionRequest {
            game_server_session_id: session.to_string(),
            player_session_id: player_session.to_string(),
        });
        call(self.agent.clone().remove_player_session(req)).await
    }

    /// The ending sequence: end the session, tell the agent the process ends.
    async fn finish(&self) {
        let session = self.session.lock().ok().and_then(|mut s| s.take());
        if let Some(id) = session {
            let req = self.request(TerminateGameServerSessionRequest {
                game_server_session_id: id.clone(),
            });
            match call(self.agent.clone().terminate_game_server_session(req)).await {
                Ok(()) => tracing::info!(session = %id, "game server session terminated"),
                Err(err) => {
                    tracing::warn!(session = %id, error = %err, "TerminateGameServerSession failed")
                }
            }
        }
        let req = self.request(ProcessEndingRequest {});
        match call(self.agent.clone().process_ending(req)).await {
            Ok(()) => tracing::info!("ProcessEnding sent"),
            Err(err) => tracing::warn!(error = %err, "ProcessEnding failed"),
        }
    }
}

/// Awaits an agent call with a timeout; a non-OK reply (gRPC status or response status) is
/// an error.
async fn call<F>(future: F) -> Result<(), String>
where
    F: Future<Output = Result<Response<GseResponse>, Status>>,
{
    match tokio::time::timeout(AGENT_TIMEOUT, future).await {
        Err(_) => Err("the agent did not reply in time".into()),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Ok(Ok(reply)) => {
            let reply = reply.into_inner();
            if reply.status == gse_response::Status::Ok as i32 {
                Ok(())
            } else {
                Err(format!("status {}: {}", reply.status, reply.error_message))
            }
        }
    }
}

fn ok() -> Result<Response<GseResponse>, Status> {
    Ok(Response::new(GseResponse::default()))
}

fn refused(message: &str) -> Result<Response<GseResponse>, Status> {
    Ok(Response::new(GseResponse {
        status: gse_response::Status::Error400 as i32,
        response_data: String::new(),
        error_message: message.to_string(),
    }))
}

/// Serves the agent's calls.
struct Callbacks(Arc<Game>);

#[tonic::async_trait]
impl GameServerGrpcSdkService for Callbacks {
    async fn on_health_check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            health_status: true,
        }))
    }

    async fn on_start_game_server_session(
        &self,
        request: Request<StartGameServerSessionRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let Some(session) = request.into_inner().game_server_session else {
            return refused("gameServerSession is missing");
        };
        let id = session.game_server_session_id;
        {
            let Ok(mut current) = self.0.session.lock() else {
                return refused("internal error");
            };
            if let Some(existing) = current.as_ref() {
                return refused(&format!("already hosting game server session {existing}"));
            }
            *current = Some(id.clone());
        }
        tracing::info!(session = %id, max_players = session.max_players, "game server session started");
        // Reply first, activate after: the agent may be waiting for this reply.
        let game = self.0.clone();
        tokio::spawn(async move { game.activate(id, session.max_players).await });
        ok()
    }

    async fn on_process_terminate(
        &self,
        request: Request<ProcessTerminateRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let when = request.into_inner().termination_time;
        tracing::info!(termination_time = when, "OnProcessTerminate received");
        let _ = self.0.end.try_send("OnProcessTerminate");
        ok()
    }
}

/// Handles one player connection (see the crate documentation for the protocol).
async fn serve_player(game: Arc<Game>, stream: TcpStream, peer: SocketAddr) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let first = tokio::time::timeout(
        FIRST_LINE_TIMEOUT,
        (&mut reader).take(MAX_LINE).read_line(&mut line),
    )
    .await;
    if !matches!(first, Ok(Ok(n)) if n > 0) {
        let _ = write
            .write_all(b"ERR expected one line with the player session id\n")
            .await;
        return;
    }
    let player_session = line.trim().to_string();
    let Some(session) = game.session_id() else {
        let _ = write
            .write_all(b"ERR this server hosts no game server session\n")
            .await;
        return;
    };
    if let Err(err) = game.accept(&session, &player_session).await {
        tracing::info!(%peer, player_session, error = %err, "player refused");
        let message = err.replace(['\r', '\n'], " ");
        let _ = write.write_all(format!("ERR {message}\n").as_bytes()).await;
        return;
    }
    tracing::info!(%peer, player_session, "player joined");
    if write.write_all(b"OK\n").await.is_ok() {
        // Keep the player until the connection closes.
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }
    tracing::info!(%peer, player_session, "player left");
    if let Err(err) = game.remove(&session, &player_session).await {
        tracing::warn!(player_session, error = %err, "RemovePlayerSession failed");
    }
}

struct Args {
    port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { port: 0 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value =
            match arg.as_str() {
                "--port" => it.next().ok_or("--port needs a value")?,
                s if s.starts_with("--port=") => s["--port=".len()..].to_string(),
                "-h" | "--help" => return Err(
                    "usage: example-game-server [--port N]   (agent address: $SESSIOND_AGENT_ADDR)"
                        .into(),
                ),
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; usage: example-game-server [--port N]"
                    ))
                }
            };
        args.port = value
            .parse()
            .map_err(|_| format!("--port {value:?} is not a port number"))?;
    }
    Ok(args)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let agent_addr =
        std::env::var("SESSIOND_AGENT_ADDR").unwrap_or_else(|_| DEFAULT_AGENT_ADDR.to_string());
    let pid = std::process::id();

    let players = TcpListener::bind(("0.0.0.0", args.port))
        .await
        .map_err(|e| format!("cannot listen for players on port {}: {e}", args.port))?;
    let client_port = players.local_addr().map_err(|e| e.to_string())?.port();
    let grpc = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen for the agent: {e}"))?;
    let grpc_port = grpc.local_addr().map_err(|e| e.to_string())?.port();

    let channel = Endpoint::from_shared(format!("http://{agent_addr}"))
        .map_err(|e| format!("bad SESSIOND_AGENT_ADDR {agent_addr:?}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy();
    let (end_tx, mut end_rx) = mpsc::channel(4);
    let game = Arc::new(Game {
        agent: GseGrpcSdkServiceClient::new(channel),
        pid,
        calls: AtomicU64::new(0),
        session: Mutex::new(None),
        end: end_tx,
    });

    let server = tonic::transport::Server::builder()
        .add_service(GameServerGrpcSdkServiceServer::new(Callbacks(game.clone())))
        .serve_with_incoming(TcpIncoming::from(grpc).with_nodelay(Some(true)));
    let server_end = game.end.clone();
    tokio::spawn(async move {
        if let Err(err) = server.await {
            tracing::error!(error = %err, "gRPC server failed");
        }
        let _ = server_end.try_send("gRPC server stopped");
    });

    // Tell the agent we are ready, retrying while it is not reachable yet.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let req = game.request(ProcessReadyRequest {
            log_paths_to_upload: Vec::new(),
            client_port: i32::from(client_port),
            grpc_port: i32::from(grpc_port),
        });
        match call(game.agent.clone().process_ready(req)).await {
            Ok(()) => break,
            Err(err) if attempt < 10 => {
                tracing::warn!(attempt, error = %err, "ProcessReady failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => return Err(format!("ProcessReady failed: {err}")),
        }
    }
    tracing::info!(pid, client_port, grpc_port, agent = %agent_addr, "ready");

    let acceptor = game.clone();
    tokio::spawn(async move {
        loop {
            match players.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_player(acceptor.clone(), stream, peer));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a player failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let reason = tokio::select! {
        r = end_rx.recv() => r.unwrap_or("shutdown"),
        _ = sigterm.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    };
    tracing::info!(reason, "ending");
    game.finish().await;
    // Let the reply to OnProcessTerminate reach the agent before exiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}
