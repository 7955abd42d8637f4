//! The runtime protocol `sessiond.gamesparks.v1` (docs/runtime-protocol.md): JSON text
//! messages with a `type`, and close codes that say why the server closed.

use serde::{Deserialize, Serialize};

/// The version in the path and the subprotocol name a client may offer.
pub const PROTOCOL: &str = "sessiond.gamesparks.v1";
/// Where game clients connect (WebSocket upgrade of a GET).
pub const PATH: &str = "/gamesparks/runtime/v1";

/// Messages a game client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    /// The first message: the stage's GameKey, and the player token of a returning player.
    #[serde(rename_all = "camelCase")]
    Hello {
        game_key: String,
        #[serde(default)]
        player_token: Option<String>,
    },
    /// Application-level ping (for clients that cannot send WebSocket pings); answered with
    /// a `pong` carrying the same `id`.
    Ping {
        #[serde(default)]
        id: Option<serde_json::Value>,
    },
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    /// The answer to `hello`: who the player is and which connection this is.
    #[serde(rename_all = "camelCase")]
    Welcome {
        protocol: &'static str,
        player_id: String,
        player_token: String,
        new_player: bool,
        connection_id: String,
        created: String,
        keepalive_interval_seconds: u64,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
    },
    /// A message the server could not act on; the connection stays open.
    Error { code: &'static str, message: String },
}

/// Why the server closes a connection: a close code and the reason text of the close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

impl Close {
    /// DisconnectPlayer was called for this player.
    pub const DISCONNECT_PLAYER: Close = Close {
        code: 4000,
        reason: "DisconnectPlayer: the player was disconnected by the game's operator",
    };
    /// The stage was deleted.
    pub const STAGE_DELETED: Close = Close {
        code: 4001,
        reason: "the stage was deleted",
    };
    /// The first message was not a valid `hello`.
    pub const BAD_HELLO: Close = Close {
        code: 4400,
        reason: "the first message must be {\"type\":\"hello\",\"gameKey\":...}",
    };
    /// No stage has this GameKey.
    pub const UNKNOWN_GAME_KEY: Close = Close {
        code: 4401,
        reason: "authentication failed: no stage has this GameKey",
    };
    /// The player token is forged, malformed, expired, or belongs to another stage.
    pub const BAD_TOKEN: Close = Close {
        code: 4403,
        reason: "authentication failed: the player token is not valid for this stage",
    };
    /// No `hello` within the configured time.
    pub const HELLO_TIMEOUT: Close = Close {
        code: 4408,
        reason: "no hello message in time",
    };
    /// The player already holds the most connections allowed.
    pub const TOO_MANY_CONNECTIONS: Close = Close {
        code: 4429,
        reason: "this player already holds the most connections allowed",
    };
    /// No frame from the client (not even a pong) in time: the peer is considered dead.
    pub const KEEPALIVE_TIMEOUT: Close = Close {
        code: 4008,
        reason: "no pong in time",
    };
    /// sessiond is stopping.
    pub const GOING_AWAY: Close = Close {
        code: 1001,
        reason: "sessiond is shutting down; reconnect later",
    };
    /// A message larger than the limit.
    pub const TOO_BIG: Close = Close {
        code: 1009,
        reason: "message too big",
    };
    pub const INTERNAL: Close = Close {
        code: 1011,
        reason: "internal error",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let hello: ClientMessage =
            serde_json::from_str(r#"{"type":"hello","gameKey":"k","extra":1}"#).unwrap();
        assert_eq!(
            hello,
            ClientMessage::Hello {
                game_key: "k".into(),
                player_token: None
            }
        );
        let hello: ClientMessage =
            serde_json::from_str(r#"{"type":"hello","gameKey":"k","playerToken":"t"}"#).unwrap();
        assert!(matches!(hello, ClientMessage::Hello { player_token: Some(t), .. } if t == "t"));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"nope"}"#).is_err());
        let welcome = serde_json::to_value(ServerMessage::Welcome {
            protocol: PROTOCOL,
            player_id: "p".into(),
            player_token: "t".into(),
            new_player: true,
            connection_id: "c".into(),
            created: "x".into(),
            keepalive_interval_seconds: 30,
        })
        .unwrap();
        assert_eq!(welcome["type"], "welcome");
        assert_eq!(welcome["playerId"], "p");
        assert_eq!(welcome["keepaliveIntervalSeconds"], 30);
        let pong = serde_json::to_string(&ServerMessage::Pong { id: None }).unwrap();
        assert_eq!(pong, r#"{"type":"pong"}"#);
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        for c in [
            Close::DISCONNECT_PLAYER,
            Close::STAGE_DELETED,
            Close::BAD_HELLO,
            Close::UNKNOWN_GAME_KEY,
            Close::BAD_TOKEN,
            Close::HELLO_TIMEOUT,
            Close::TOO_MANY_CONNECTIONS,
            Close::KEEPALIVE_TIMEOUT,
            Close::GOING_AWAY,
            Close::TOO_BIG,
            Close::INTERNAL,
        ] {
            assert!(c.reason.len() <= 123, "{}", c.reason);
        }
    }
}
