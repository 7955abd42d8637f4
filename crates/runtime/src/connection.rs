//! One task per player connection: the `hello` exchange, then keepalive, application pings and
//! the close command. The task owns the socket; nothing else writes to it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use sessiond_core::gamesparks::{new_player_id, StageRef};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::protocol::{ClientMessage, Close, ServerMessage, PROTOCOL};
use crate::registry::{CloseCommand, PlayerKey};
use crate::{format_time, now_ms, token, Shared};

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// How long the server waits for the client's close frame after sending its own.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

pub(crate) fn ws_config(shared: &Shared) -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = shared.config.read_buffer_bytes;
    config.write_buffer_size = 0;
    config.max_write_buffer_size = 64 * 1024;
    config.max_message_size = Some(shared.config.max_message_bytes);
    config.max_frame_size = Some(shared.config.max_message_bytes);
    config
}

/// Sends a close frame, bounded in time; true if it was written.
async fn close_with(ws: &mut Ws, close: Close, write_timeout: Duration) -> bool {
    let frame = CloseFrame {
        code: CloseCode::from(close.code),
        reason: close.reason.into(),
    };
    matches!(
        tokio::time::timeout(write_timeout, ws.close(Some(frame))).await,
        Ok(Ok(()))
    )
}

/// Reads until the client's close frame or the linger time.
async fn linger(ws: &mut Ws) {
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
        }
    })
    .await;
}

async fn send(ws: &mut Ws, msg: &ServerMessage, timeout: Duration) -> bool {
    let Ok(text) = serde_json::to_string(msg) else {
        return false;
    };
    matches!(
        tokio::time::timeout(timeout, ws.send(Message::text(text))).await,
        Ok(Ok(()))
    )
}

/// Removes the connection from the registry when the task ends, however it ends.
struct Registered<'a> {
    shared: &'a Shared,
    key: PlayerKey,
    id: uuid::Uuid,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.registry.unregister(&self.key, self.id);
    }
}

/// What the hello exchange settled.
struct Authenticated {
    stage: StageRef,
    player_id: String,
    player_token: String,
    new_player: bool,
}

async fn read_hello(ws: &mut Ws) -> Result<(String, Option<String>), Close> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return match serde_json::from_str::<ClientMessage>(text.as_str()) {
                    Ok(ClientMessage::Hello {
                        game_key,
                        player_token,
                    }) => Ok((game_key, player_token)),
                    _ => Err(Close::BAD_HELLO),
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => return Err(Close::BAD_HELLO),
            Some(Ok(Message::Close(_))) | None => return Err(Close::INTERNAL),
            Some(Err(WsError::Capacity(_))) => return Err(Close::TOO_BIG),
            Some(Err(_)) => return Err(Close::INTERNAL),
        }
    }
}

fn authenticate(
    shared: &Shared,
    game_key: &str,
    player_token: Option<&str>,
) -> Result<Authenticated, Close> {
    let stage = shared
        .service
        .stage_by_game_key(game_key)
        .ok_or(Close::UNKNOWN_GAME_KEY)?;
    let key = shared.service.token_key();
    let now = now_ms() / 1000;
    match player_token {
        Some(t) => {
            let player_id = token::verify(key, &stage, t, now, shared.config.token_max_age_seconds)
                .map_err(|_| Close::BAD_TOKEN)?;
            // A fresh token with every welcome: a player who keeps coming back keeps its
            // identity even when tokens have a maximum age.
            let player_token = token::issue(key, &stage, &player_id, now);
            Ok(Authenticated {
                stage,
                player_id,
                player_token,
                new_player: false,
            })
        }
        None => {
            let player_id = new_player_id();
            let player_token = token::issue(key, &stage, &player_id, now);
            Ok(Authenticated {
                stage,
                player_id,
                player_token,
                new_player: true,
            })
        }
    }
}

/// Serves one upgraded connection until it closes.
pub(crate) async fn serve(shared: Arc<Shared>, upgrade: hyper::upgrade::OnUpgrade) {
    let upgraded = match upgrade.await {
        Ok(u) => u,
        Err(err) => {
            tracing::debug!(%err, "WebSocket upgrade failed");
            return;
        }
    };
    let mut ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(ws_config(&shared)),
    )
    .await;
    let config = &shared.config;

    // 1. hello
    let hello = match tokio::time::timeout(config.hello_timeout, read_hello(&mut ws)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(close)) => {
            close_with(&mut ws, close, config.disconnect_timeout).await;
            linger(&mut ws).await;
            return;
        }
        Err(_) => {
            close_with(&mut ws, Close::HELLO_TIMEOUT, config.disconnect_timeout).await;
            linger(&mut ws).await;
            return;
        }
    };
    let auth = match authenticate(&shared, &hello.0, hello.1.as_deref()) {
        Ok(a) => a,
        Err(close) => {
            tracing::debug!(code = close.code, "player connection refused");
            close_with(&mut ws, close, config.disconnect_timeout).await;
            linger(&mut ws).await;
            return;
        }
    };
    drop(hello);

    // 2. register, then check the stage still exists (a DeleteStage that ran meanwhile has
    // already swept the registry; this connection must not outlive it).
    let id = uuid::Uuid::new_v4();
    let created_ms = now_ms();
    let key: PlayerKey = (
        Arc::from(auth.stage.game_key.as_str()),
        Box::from(auth.player_id.as_str()),
    );
    let (close_tx, mut close_rx) = oneshot::channel::<CloseCommand>();
    if !shared.registry.register(&key, id, created_ms, close_tx) {
        close_with(
            &mut ws,
            Close::TOO_MANY_CONNECTIONS,
            config.disconnect_timeout,
        )
        .await;
        linger(&mut ws).await;
        return;
    }
    let _registered = Registered {
        shared: &shared,
        key,
        id,
    };
    if !shared.service.stage_exists(&auth.stage) {
        close_with(&mut ws, Close::STAGE_DELETED, config.disconnect_timeout).await;
        return;
    }
    let welcome = ServerMessage::Welcome {
        protocol: PROTOCOL,
        player_id: auth.player_id,
        player_token: auth.player_token,
        new_player: auth.new_player,
        connection_id: id.to_string(),
        created: format_time(created_ms),
        keepalive_interval_seconds: config.keepalive_interval.as_secs().max(1),
    };
    if !send(&mut ws, &welcome, config.disconnect_timeout).await {
        return;
    }
    drop(welcome);
    drop(auth.stage);

    // 3. serve: keepalive pings when idle, pongs to application pings, the close command.
    let mut last_seen = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    let keepalive = tokio::time::sleep_until(last_seen + config.keepalive_interval);
    tokio::pin!(keepalive);
    loop {
        tokio::select! {
            biased;
            command = &mut close_rx => {
                match command {
                    Ok(command) => {
                        let sent = close_with(&mut ws, command.close, config.disconnect_timeout).await;
                        let _ = command.ack.send(sent);
                        if sent {
                            linger(&mut ws).await;
                        }
                    }
                    Err(_) => {
                        close_with(&mut ws, Close::INTERNAL, config.disconnect_timeout).await;
                    }
                }
                return;
            }
            frame = ws.next() => {
                last_seen = Instant::now();
                ping_sent = None;
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        let reply = match serde_json::from_str::<ClientMessage>(text.as_str()) {
                            Ok(ClientMessage::Ping { id }) => ServerMessage::Pong { id },
                            Ok(ClientMessage::Hello { .. }) => ServerMessage::Error {
                                code: "AlreadyAuthenticated",
                                message: "this connection has already said hello".into(),
                            },
                            Err(_) => ServerMessage::Error {
                                code: "UnknownMessage",
                                message: "not a message of sessiond.gamesparks.v1 (known types: ping)".into(),
                            },
                        };
                        if !send(&mut ws, &reply, config.disconnect_timeout).await {
                            return;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let reply = ServerMessage::Error {
                            code: "UnknownMessage",
                            message: "binary messages are not used by sessiond.gamesparks.v1".into(),
                        };
                        if !send(&mut ws, &reply, config.disconnect_timeout).await {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) => {
                        // tungstenite answers the close frame; flush it out.
                        let _ = tokio::time::timeout(config.disconnect_timeout, ws.flush()).await;
                        return;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(WsError::Capacity(_))) => {
                        close_with(&mut ws, Close::TOO_BIG, config.disconnect_timeout).await;
                        return;
                    }
                    Some(Err(_)) | None => return,
                }
                keepalive.as_mut().reset(last_seen + config.keepalive_interval);
            }
            () = &mut keepalive => {
                if ping_sent.is_some() {
                    tracing::debug!("player connection dropped: no pong in time");
                    let _ = tokio::time::timeout(
                        Duration::from_millis(100),
                        close_with(&mut ws, Close::KEEPALIVE_TIMEOUT, Duration::from_millis(100)),
                    )
                    .await;
                    return;
                }
                let now = Instant::now();
                let ok = matches!(
                    tokio::time::timeout(config.disconnect_timeout, ws.send(Message::Ping(Default::default()))).await,
                    Ok(Ok(()))
                );
                if !ok {
                    return;
                }
                ping_sent = Some(now);
                keepalive.as_mut().reset(now + config.keepalive_timeout);
            }
        }
    }
}
