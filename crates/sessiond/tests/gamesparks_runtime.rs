//! The GameSparks player runtime on the real binary, with real WebSocket clients: several
//! players with several connections, GetPlayerConnectionStatus, DisconnectPlayer closing exactly
//! one player's connections with a close frame that states the reason, tokens (reconnect,
//! forged, foreign), keepalive and dead peers, stage deletion, limits, restarts.

mod support;

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{json, Value};
use sessiond_load::client::Target;
use sessiond_load::gamesparks::{open_socket, AwsSigner, Event, GsClient, Player, Refused};
use support::*;
use tokio_tungstenite::tungstenite::Message;

const REGION: &str = "us-east-1";

/// A short hello timeout; keepalive long enough that clients which are not reading at the
/// moment (most of them, in these tests) are not taken for dead peers.
const RUNTIME: &str = r#"[gamesparks]
keepalive_interval_seconds = 10
keepalive_timeout_seconds = 10
hello_timeout_seconds = 1
max_connections_per_player = 4
"#;

/// Keepalive observable in well under a second.
const FAST_KEEPALIVE: &str = r#"[gamesparks]
keepalive_interval_seconds = 0.3
keepalive_timeout_seconds = 0.6
"#;

async fn api(server: &Sessiond, key: (&str, &str)) -> GsClient {
    let target = Target::from_endpoint(&server.endpoint(), REGION)
        .await
        .unwrap();
    GsClient::new(
        target,
        AwsSigner::new(key.0, key.1, REGION),
        Duration::from_secs(10),
    )
}

/// A game and a stage; returns the GameKey.
async fn stage(client: &mut GsClient, game: &str, stage: &str) -> String {
    client.create_game(game).await.unwrap();
    let s = client.create_stage(game, stage).await.unwrap();
    s["GameKey"].as_str().unwrap().to_string()
}

async fn connect(server: &Sessiond, key: &str, token: Option<&str>) -> Player {
    Player::connect(server.api, None, key, token)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

async fn refused(server: &Sessiond, key: &str, token: Option<&str>) -> (u16, String) {
    match Player::connect(server.api, None, key, token).await {
        Ok(p) => panic!("connection accepted as {}", p.player_id),
        Err(Refused::Closed { code, reason }) => (code, reason),
        Err(other) => panic!("refused without a close frame: {other}"),
    }
}

fn ids(v: &Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

async fn status(client: &mut GsClient, game: &str, stage: &str, player: &str) -> Vec<Value> {
    let r = client.connection_status(game, stage, player).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["Connections"].as_array().unwrap().clone()
}

/// The connection still answers an application ping.
async fn alive(p: &mut Player) -> bool {
    if p.send_json(&json!({"type": "ping", "id": 7}))
        .await
        .is_err()
    {
        return false;
    }
    matches!(p.next_event(Duration::from_secs(5)).await, Event::Text(v) if v["type"] == "pong" && v["id"] == 7)
}

fn is_rfc3339_millis_z(s: &str) -> bool {
    // 2022-03-23T12:34:56.123Z
    s.len() == 24
        && s.ends_with('Z')
        && s.as_bytes()[10] == b'T'
        && s.as_bytes()[19] == b'.'
        && s[..4].bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test]
async fn disconnect_player_closes_exactly_that_players_connections() {
    let env = Env::new("", RUNTIME);
    let server = env.start();
    let mut gs = api(&server, KEY_A).await;
    let key = stage(&mut gs, "Arena", "Dev").await;

    // Three players, each with three connections (the first one's token opens the others).
    let mut players: Vec<Vec<Player>> = Vec::new();
    for _ in 0..3 {
        let first = connect(&server, &key, None).await;
        assert_eq!(first.welcome["newPlayer"], true);
        assert_eq!(first.welcome["protocol"], "sessiond.gamesparks.v1");
        let token = first.player_token.clone();
        let mut conns = vec![first];
        for _ in 0..2 {
            let p = connect(&server, &key, Some(&token)).await;
            assert_eq!(p.player_id, conns[0].player_id);
            assert_eq!(p.welcome["newPlayer"], false);
            conns.push(p);
        }
        players.push(conns);
    }
    let player_ids: Vec<String> = players.iter().map(|c| c[0].player_id.clone()).collect();
    assert_eq!(
        player_ids
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "distinct player ids"
    );

    // GetPlayerConnectionStatus lists each player's connections, nobody else's.
    for (i, conns) in players.iter().enumerate() {
        let listed = status(&mut gs, "Arena", "Dev", &player_ids[i]).await;
        let mut got: Vec<String> = listed
            .iter()
            .map(|c| c["Id"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        let mut want: Vec<String> = conns.iter().map(|p| p.connection_id.clone()).collect();
        want.sort();
        assert_eq!(got, want);
        for c in &listed {
            let id = c["Id"].as_str().unwrap();
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(&id[14..15], "4", "UUID v4: {id}");
            let created = c["Created"].as_str().unwrap();
            assert!(is_rfc3339_millis_z(created), "{created}");
        }
    }

    // Disconnect the middle player.
    let started = Instant::now();
    let r = gs
        .disconnect_player("Arena", "Dev", &player_ids[1])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut want: Vec<String> = players[1].iter().map(|p| p.connection_id.clone()).collect();
    want.sort();
    assert_eq!(ids(&r.body, "DisconnectSuccesses"), want);
    assert!(ids(&r.body, "DisconnectFailures").is_empty());
    for p in players[1].iter_mut() {
        match p.next_event(Duration::from_secs(5)).await {
            Event::Close { code, reason } => {
                assert_eq!(code, 4000);
                assert!(reason.contains("DisconnectPlayer"), "{reason}");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(status(&mut gs, "Arena", "Dev", &player_ids[1])
        .await
        .is_empty());

    // Everybody else is still connected and served.
    for i in [0, 2] {
        assert_eq!(
            status(&mut gs, "Arena", "Dev", &player_ids[i]).await.len(),
            3
        );
        for p in players[i].iter_mut() {
            assert!(alive(p).await, "player {i} lost a connection");
        }
    }

    // Idempotent: again, and for a player that never connected.
    for player in [player_ids[1].as_str(), "never-connected"] {
        let r = gs.disconnect_player("Arena", "Dev", player).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            json!({"DisconnectFailures": [], "DisconnectSuccesses": []})
        );
        assert!(status(&mut gs, "Arena", "Dev", player).await.is_empty());
    }

    // The disconnected player comes back with its token.
    let back = connect(&server, &key, Some(&players[1][0].player_token)).await;
    assert_eq!(back.player_id, player_ids[1]);
    assert_eq!(
        status(&mut gs, "Arena", "Dev", &player_ids[1]).await.len(),
        1
    );
}

#[tokio::test]
async fn tokens_cannot_be_forged_or_moved_and_handshakes_are_checked() {
    let env = Env::new("", RUNTIME);
    let server = env.start();
    let mut gs = api(&server, KEY_A).await;
    let key = stage(&mut gs, "Arena", "Dev").await;
    let other_key = gs.create_stage("Arena", "Prod").await.unwrap()["GameKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(key, other_key);

    let p = connect(&server, &key, None).await;
    let token = p.player_token.clone();
    // A token of this stage on another stage: refused.
    let (code, reason) = refused(&server, &other_key, Some(&token)).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("player token"), "{reason}");
    // Forged: another player id with the same MAC, a changed MAC, garbage.
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 4, "{token}");
    let forged_player = format!("v1.someone-else.{}.{}", parts[2], parts[3]);
    let mut mac = parts[3].to_string();
    let flipped = if mac.starts_with('A') { "B" } else { "A" };
    mac.replace_range(0..1, flipped);
    let forged_mac = format!("v1.{}.{}.{mac}", parts[1], parts[2]);
    for bad in [forged_player.as_str(), forged_mac.as_str(), "garbage"] {
        assert_eq!(refused(&server, &key, Some(bad)).await.0, 4403, "{bad}");
    }
    // Unknown GameKey.
    assert_eq!(refused(&server, "nope", None).await.0, 4401);
    // The first message must be a hello.
    let mut ws = open_socket(server.api, None).await.unwrap();
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    match sessiond_load::gamesparks::next_event(&mut ws, Duration::from_secs(5)).await {
        Event::Close { code, .. } => assert_eq!(code, 4400),
        other => panic!("{other:?}"),
    }
    // Saying nothing: closed after hello_timeout_seconds.
    let mut ws = open_socket(server.api, None).await.unwrap();
    let t = Instant::now();
    match sessiond_load::gamesparks::next_event(&mut ws, Duration::from_secs(5)).await {
        Event::Close { code, .. } => assert_eq!(code, 4408),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(3));
    // The original connection is unaffected and the token still works on its stage.
    let again = connect(&server, &key, Some(&token)).await;
    assert_eq!(again.player_id, p.player_id);

    // Plain HTTP on the runtime path: a clear refusal, not a hang.
    let mut sender = sessiond_load::client::connect(server.api).await.unwrap();
    let req = hyper::Request::get("/gamesparks/runtime/v1")
        .header("host", server.api.to_string())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let (status, body) = sessiond_load::client::round_trip(&mut sender, req)
        .await
        .unwrap();
    assert_eq!(status, 426, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn keepalive_keeps_live_clients_and_drops_dead_peers() {
    let env = Env::new("", FAST_KEEPALIVE);
    let server = env.start();
    let mut gs = api(&server, KEY_A).await;
    let key = stage(&mut gs, "Arena", "Dev").await;

    // A live client keeps reading (tungstenite answers pings while reading).
    let mut live = connect(&server, &key, None).await;
    // A dead peer: connected, then never reads again (its pongs never come).
    let dead = connect(&server, &key, None).await;
    let t = Instant::now();
    let mut pings = 0;
    while t.elapsed() < Duration::from_millis(2000) {
        if let Event::Close { code, reason } = live.next_event(Duration::from_millis(100)).await {
            panic!("live client closed: {code} {reason}");
        }
        pings += 1;
    }
    assert!(pings > 0);
    assert!(alive(&mut live).await);
    assert_eq!(
        status(&mut gs, "Arena", "Dev", &live.player_id).await.len(),
        1
    );
    // 0.3 s idle + 0.6 s without a pong: gone (usually before the 2 s above are over).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !status(&mut gs, "Arena", "Dev", &dead.player_id)
        .await
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the dead peer is still listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The live client is still there.
    assert!(alive(&mut live).await);
    drop(dead);
}

#[tokio::test]
async fn errors_of_the_runtime_operations() {
    let env = Env::new("", RUNTIME);
    let server = env.start();
    let mut gs = api(&server, KEY_A).await;
    let key = stage(&mut gs, "Arena", "Dev").await;
    let p = connect(&server, &key, None).await;

    // Unknown game, unknown stage: 404 for both operations.
    for (game, stage) in [("Nope", "Dev"), ("Arena", "Nope")] {
        for r in [
            gs.disconnect_player(game, stage, &p.player_id)
                .await
                .unwrap(),
            gs.connection_status(game, stage, &p.player_id)
                .await
                .unwrap(),
        ] {
            assert_eq!(r.status, 404, "{:?}", r.body);
            assert_eq!(r.error_type.as_deref(), Some("ResourceNotFoundException"));
            assert_eq!(r.body["__type"], "ResourceNotFoundException");
            assert!(r.body["message"]
                .as_str()
                .unwrap()
                .contains("does not exist"));
            assert!(r.request_id.is_some());
        }
    }
    // Another account sees nothing.
    let mut other = api(&server, KEY_B).await;
    let r = other
        .disconnect_player("Arena", "Dev", &p.player_id)
        .await
        .unwrap();
    assert_eq!(r.status, 404);

    // Validation, in the AWS style.
    let r = gs
        .disconnect_player("Arena", "Dev", "bad id!")
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type.as_deref(), Some("ValidationException"));
    assert_eq!(
        r.body["message"],
        "1 validation error detected: Value 'bad id!' at 'playerId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$"
    );
    let long = "p".repeat(45);
    let r = gs.connection_status("Arena", "Dev", &long).await.unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["message"],
        format!("1 validation error detected: Value '{long}' at 'playerId' failed to satisfy constraint: Member must have length less than or equal to 44")
    );
    let r = gs
        .disconnect_player(&"g".repeat(37), "Dev", "p")
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("at 'gameName' failed to satisfy constraint: Member must have length less than or equal to 36"));
    let r = gs.disconnect_player("Arena", "D.v", "p").await.unwrap();
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("at 'stageName'"));

    // The player is untouched by all of that.
    assert_eq!(status(&mut gs, "Arena", "Dev", &p.player_id).await.len(), 1);
}

#[tokio::test]
async fn stages_with_players_are_not_deleted_and_players_have_a_connection_limit() {
    let env = Env::new("", RUNTIME);
    let server = env.start();
    let mut gs = api(&server, KEY_A).await;
    let key = stage(&mut gs, "Arena", "Dev").await;
    let first = connect(&server, &key, None).await;
    let mut conns = vec![];
    for _ in 0..3 {
        conns.push(connect(&server, &key, Some(&first.player_token)).await);
    }
    // max_connections_per_player = 4
    let (code, _) = refused(&server, &key, Some(&first.player_token)).await;
    assert_eq!(code, 4429);

    let r = gs
        .call("DELETE", "/game/Arena/stage/Dev", &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.error_type.as_deref(), Some("ConflictException"));
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("4 live player connection"));
    let r = gs.call("DELETE", "/game/Arena", &[], None).await.unwrap();
    assert_eq!(r.status, 409, "a game with stages is not deleted");

    let r = gs
        .disconnect_player("Arena", "Dev", &first.player_id)
        .await
        .unwrap();
    assert_eq!(ids(&r.body, "DisconnectSuccesses").len(), 4);
    let r = gs
        .call("DELETE", "/game/Arena/stage/Dev", &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({}));
    // The GameKey of the deleted stage opens nothing; a new stage of the same name has
    // another key, and the old tokens do not work there.
    assert_eq!(refused(&server, &key, None).await.0, 4401);
    let new_key = gs.create_stage("Arena", "Dev").await.unwrap()["GameKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_key, key);
    assert_eq!(
        refused(&server, &new_key, Some(&first.player_token))
            .await
            .0,
        4403
    );
}

#[tokio::test]
async fn tokens_games_and_stages_survive_a_restart() {
    let env = Env::new("", RUNTIME);
    let mut server = env.start();
    let mut gs = api(&server, KEY_A).await;
    let key = stage(&mut gs, "Arena", "Dev").await;
    let mut p = connect(&server, &key, None).await;
    server.stop();
    // The client sees the server go away (close 1001 on a graceful stop, or the end).
    match p.next_event(Duration::from_secs(5)).await {
        Event::Close { code, .. } => assert_eq!(code, 1001),
        Event::Ended => {}
        other => panic!("{other:?}"),
    }
    let server = env.start();
    let mut gs = api(&server, KEY_A).await;
    let s = gs
        .call("GET", "/game/Arena/stage/Dev", &[], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(s["Stage"]["GameKey"], key.as_str());
    let back = connect(&server, &key, Some(&p.player_token)).await;
    assert_eq!(back.player_id, p.player_id);
    assert_eq!(back.welcome["newPlayer"], false);
}
