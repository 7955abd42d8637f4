#![forbid(unsafe_code)]
//! The GameSparks player runtime: WebSocket player connections held by this node.
//!
//! Game clients connect to [`protocol::PATH`] on sessiond's API listener (the HTTP server
//! hands the upgraded socket to [`RuntimeDialect`]), say `hello` with the stage's GameKey and,
//! when returning, their player token, and are kept alive with pings. The connections are soft
//! state of this node; [`Runtime`] implements core's
//! [`ConnectionRegistry`](sessiond_core::gamesparks::ConnectionRegistry), which the API asks
//! for GetPlayerConnectionStatus and DisconnectPlayer. The protocol is documented in
//! docs/runtime-protocol.md.

mod connection;
pub mod protocol;
pub mod registry;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use sessiond_api_common::server::HandlerFuture;
use sessiond_api_common::{Dialect, HttpResponse};
use sessiond_core::gamesparks::{
    ConnectionRegistry, DisconnectOutcome, DisconnectReason, GameSparksService, PlayerConnection,
    RegistryFuture, StageRef,
};
use tokio::sync::oneshot;

use crate::protocol::{Close, PATH, PROTOCOL};
use crate::registry::{CloseCommand, Registry, Taken};

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// A connection idle this long gets a WebSocket ping.
    pub keepalive_interval: Duration,
    /// A connection that sends nothing (not even the pong) this long after a ping is dropped.
    pub keepalive_timeout: Duration,
    /// Time a new connection has to send its `hello`.
    pub hello_timeout: Duration,
    /// Time a close frame has to be written (DisconnectPlayer reports the connections whose
    /// close did not go out in this time as failures, and drops them).
    pub disconnect_timeout: Duration,
    /// Connections one player may hold on one stage at once.
    pub max_connections_per_player: usize,
    /// Largest message (and frame) a client may send.
    pub max_message_bytes: usize,
    /// Read buffer of each connection (the WebSocket library's default is 128 KiB; a small one
    /// keeps idle connections cheap).
    pub read_buffer_bytes: usize,
    /// Player tokens older than this are refused (None: they do not expire).
    pub token_max_age_seconds: Option<u64>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(2),
            max_connections_per_player: 10,
            max_message_bytes: 4096,
            read_buffer_bytes: 1024,
            token_max_age_seconds: None,
        }
    }
}

pub(crate) struct Shared {
    pub(crate) config: RuntimeConfig,
    pub(crate) service: Arc<GameSparksService>,
    pub(crate) registry: Registry,
}

/// The runtime of this node: the WebSocket endpoint and the registry of its connections.
pub struct Runtime {
    shared: Arc<Shared>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 with milliseconds and `Z`.
pub(crate) fn format_time(ms: i64) -> String {
    sessiond_api_common::timefmt::rfc3339_millis(ms)
}

impl Runtime {
    pub fn new(service: Arc<GameSparksService>, config: RuntimeConfig) -> Arc<Runtime> {
        let registry = Registry::new(config.max_connections_per_player);
        Arc::new(Runtime {
            shared: Arc::new(Shared {
                config,
                service,
                registry,
            }),
        })
    }

    /// The dialect that takes WebSocket upgrades on [`PATH`].
    pub fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::new(RuntimeDialect {
            shared: self.shared.clone(),
        })
    }

    /// Live connections on this node.
    pub fn connection_count(&self) -> usize {
        self.shared.registry.count()
    }

    /// Closes every connection with 1001 (going away), for a graceful stop.
    pub async fn shutdown(&self) {
        let taken = self.shared.registry.take_where(None);
        let n = taken.len();
        close_all(
            taken,
            Close::GOING_AWAY,
            self.shared.config.disconnect_timeout,
        )
        .await;
        if n > 0 {
            tracing::info!(connections = n, "closed the player connections");
        }
    }
}

/// Sends the close command to each connection and waits for them (bounded in time).
async fn close_all(taken: Vec<Taken>, close: Close, timeout: Duration) -> DisconnectOutcome {
    let mut waiting = Vec::with_capacity(taken.len());
    let mut outcome = DisconnectOutcome::default();
    for t in taken {
        let (ack_tx, ack_rx) = oneshot::channel();
        match t.close.send(CloseCommand { close, ack: ack_tx }) {
            Ok(()) => waiting.push((t.id, ack_rx)),
            // The task already ended: the connection is gone.
            Err(_) => outcome.successes.push(t.id.to_string()),
        }
    }
    // The task bounds its own write by `timeout`; allow a little more for scheduling.
    let deadline = tokio::time::Instant::now() + timeout + Duration::from_millis(250);
    for (id, ack) in waiting {
        match tokio::time::timeout_at(deadline, ack).await {
            Ok(Ok(true)) | Ok(Err(_)) => outcome.successes.push(id.to_string()),
            Ok(Ok(false)) | Err(_) => outcome.failures.push(id.to_string()),
        }
    }
    outcome
}

impl ConnectionRegistry for Runtime {
    fn player_connections(
        &self,
        stage: &StageRef,
        player_id: &str,
    ) -> RegistryFuture<Vec<PlayerConnection>> {
        let list = self
            .shared
            .registry
            .list(&stage.game_key, player_id)
            .into_iter()
            .map(|(id, created_ms)| PlayerConnection {
                id: id.to_string(),
                created_ms,
            })
            .collect();
        Box::pin(async move { Ok(list) })
    }

    fn disconnect_player(
        &self,
        stage: &StageRef,
        player_id: &str,
        reason: DisconnectReason,
    ) -> RegistryFuture<DisconnectOutcome> {
        let taken = self.shared.registry.take_player(&stage.game_key, player_id);
        let close = match reason {
            DisconnectReason::DisconnectPlayer => Close::DISCONNECT_PLAYER,
            DisconnectReason::StageDeleted => Close::STAGE_DELETED,
        };
        let timeout = self.shared.config.disconnect_timeout;
        Box::pin(async move { Ok(close_all(taken, close, timeout).await) })
    }

    fn stage_connection_count(&self, stage: &StageRef) -> RegistryFuture<usize> {
        let n = self.shared.registry.count_stage(&stage.game_key);
        Box::pin(async move { Ok(n) })
    }

    fn stage_removed(&self, stage: &StageRef) -> RegistryFuture<()> {
        let taken = self.shared.registry.take_where(Some(&stage.game_key));
        let timeout = self.shared.config.disconnect_timeout;
        Box::pin(async move {
            close_all(taken, Close::STAGE_DELETED, timeout).await;
            Ok(())
        })
    }
}

/// Takes WebSocket upgrades on [`PATH`].
pub struct RuntimeDialect {
    shared: Arc<Shared>,
}

fn refuse(status: http::StatusCode, code: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({"error": code, "message": message}).to_string();
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn header_has_token(
    head: &http::request::Parts,
    name: http::header::HeaderName,
    token: &str,
) -> bool {
    head.headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

impl RuntimeDialect {
    fn upgrade(&self, mut head: http::request::Parts) -> HttpResponse {
        if head.method != http::Method::GET {
            let mut r = refuse(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the runtime endpoint takes a WebSocket upgrade (GET)",
            );
            r.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
            return r;
        }
        let upgrade_ok = header_has_token(&head, http::header::CONNECTION, "upgrade")
            && header_has_token(&head, http::header::UPGRADE, "websocket");
        if !upgrade_ok {
            let mut r = refuse(
                http::StatusCode::UPGRADE_REQUIRED,
                "UpgradeRequired",
                "connect with a WebSocket client (Upgrade: websocket); see docs/runtime-protocol.md",
            );
            r.headers_mut().insert(
                http::header::UPGRADE,
                http::HeaderValue::from_static("websocket"),
            );
            return r;
        }
        if head
            .headers
            .get(http::header::SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes())
            != Some(b"13")
        {
            let mut r = refuse(
                http::StatusCode::UPGRADE_REQUIRED,
                "UnsupportedVersion",
                "only WebSocket version 13 is supported",
            );
            r.headers_mut().insert(
                http::header::SEC_WEBSOCKET_VERSION,
                http::HeaderValue::from_static("13"),
            );
            return r;
        }
        let Some(key) = head.headers.get(http::header::SEC_WEBSOCKET_KEY) else {
            return refuse(
                http::StatusCode::BAD_REQUEST,
                "BadHandshake",
                "Sec-WebSocket-Key is missing",
            );
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let offered_protocol =
            header_has_token(&head, http::header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL);
        let Some(on_upgrade) = head.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return refuse(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "NoUpgrade",
                "this connection cannot be upgraded",
            );
        };
        // The request head (whose headers share the HTTP read buffer) is dropped here, before
        // the long-lived task starts.
        drop(head);
        tokio::spawn(connection::serve(self.shared.clone(), on_upgrade));

        let mut response = http::Response::new(Full::new(Bytes::new()));
        *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("Upgrade"),
        );
        headers.insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static("websocket"),
        );
        if let Ok(v) = http::HeaderValue::from_str(&accept) {
            headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
        }
        if offered_protocol {
            headers.insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                http::HeaderValue::from_static(PROTOCOL),
            );
        }
        response
    }
}

impl Dialect for RuntimeDialect {
    fn name(&self) -> &'static str {
        "gamesparks-runtime"
    }

    fn claims(&self, head: &http::request::Parts) -> bool {
        head.uri.path() == PATH
    }

    fn handle(&self, head: http::request::Parts, body: Incoming) -> HandlerFuture<'_> {
        drop(body);
        let response = self.upgrade(head);
        Box::pin(async move { response })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken() -> (Taken, oneshot::Receiver<CloseCommand>) {
        let (tx, rx) = oneshot::channel();
        (
            Taken {
                id: uuid::Uuid::new_v4(),
                close: tx,
            },
            rx,
        )
    }

    #[tokio::test]
    async fn close_all_reports_what_closed_in_time() {
        // Acknowledges the close frame.
        let (written, rx1) = taken();
        tokio::spawn(async move {
            let cmd = rx1.await.unwrap();
            assert_eq!(cmd.close, Close::DISCONNECT_PLAYER);
            let _ = cmd.ack.send(true);
        });
        // Its task already ended: the connection is gone.
        let (ended, rx2) = taken();
        drop(rx2);
        // Never answers in time (a client that stopped reading).
        let (stuck, rx3) = taken();
        let hold = tokio::spawn(async move {
            let cmd = rx3.await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(cmd);
        });
        // Could not write it.
        let (failed, rx4) = taken();
        tokio::spawn(async move {
            let _ = rx4.await.unwrap().ack.send(false);
        });
        let ids = [written.id, ended.id, stuck.id, failed.id].map(|i| i.to_string());
        let started = std::time::Instant::now();
        let out = close_all(
            vec![written, ended, stuck, failed],
            Close::DISCONNECT_PLAYER,
            Duration::from_millis(100),
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(2));
        let mut successes = out.successes.clone();
        successes.sort();
        let mut want = vec![ids[0].clone(), ids[1].clone()];
        want.sort();
        assert_eq!(successes, want);
        let mut failures = out.failures.clone();
        failures.sort();
        let mut want = vec![ids[2].clone(), ids[3].clone()];
        want.sort();
        assert_eq!(failures, want);
        hold.abort();
    }
}
