//! sessiond's GameSparks API through the official Rust SDK, aws-sdk-gamesparks 0.33.0, unchanged:
//! games, stages and tags, GetPlayerConnectionStatus and DisconnectPlayer on real WebSocket
//! connections, typed errors, SigV4 failures and throttling (retries are off: the config is
//! built with `Config::builder()`, which leaves them off).
//!
//! The tests run the real `sessiond` binary: `SESSIOND_BIN`, or `target/<profile>/sessiond`
//! next to this test executable (build it with `cargo build -p sessiond`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_gamesparks::config::Region;
use aws_sdk_gamesparks::error::ProvideErrorMetadata;
use aws_sdk_gamesparks::Client;
use sessiond_load::gamesparks::{Event, Player};

const REGION: &str = "us-east-1";
const KEY: (&str, &str) = ("AKIDsdkconformanceA", "sdk-conformance-secret-A");
const KEY_B: (&str, &str) = ("AKIDsdkconformanceB", "sdk-conformance-secret-B");
const ACCOUNT: &str = "123456789012";

fn sessiond_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SESSIOND_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "SESSIOND_BIN={} is not a file", p.display());
        return p;
    }
    // target/<profile>/deps/<this test> -> target/<profile>/sessiond
    let exe = std::env::current_exe().expect("the test executable's path");
    let candidate = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("sessiond"));
    match candidate {
        Some(p) if p.is_file() => p,
        other => panic!(
            "the sessiond binary is not built (looked for {}): run `cargo build -p sessiond` first, or set SESSIOND_BIN",
            other.map(|p| p.display().to_string()).unwrap_or_default()
        ),
    }
}

struct Sessiond {
    child: Child,
    api: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Sessiond {
    fn start(extra: &str) -> Sessiond {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sessiond.toml");
        std::fs::write(
            &config,
            format!(
                r#"data_dir = "{data}"

[listen]
api = "127.0.0.1:0"
agent = "127.0.0.1:0"

[[credentials]]
access_key_id = "{k1}"
secret_access_key = "{s1}"
account_id = "{ACCOUNT}"

[[credentials]]
access_key_id = "{k2}"
secret_access_key = "{s2}"
account_id = "210987654321"

[gamesparks]
keepalive_interval_seconds = 5
{extra}
"#,
                data = dir.path().join("data").display(),
                k1 = KEY.0,
                s1 = KEY.1,
                k2 = KEY_B.0,
                s2 = KEY_B.1,
            ),
        )
        .unwrap();
        let mut child = Command::new(sessiond_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env("SESSIOND_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning sessiond");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut api = None;
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("sessiond prints ready within 30 s");
            if let Some(rest) = line.strip_prefix("sessiond: api listening on http://") {
                api = Some(rest.parse().unwrap());
            }
            if line == "sessiond: ready" {
                break;
            }
        }
        Sessiond {
            child,
            api: api.expect("the api line"),
            _dir: dir,
        }
    }

    fn client(&self, key: (&str, &str)) -> Client {
        let connector = aws_smithy_client::hyper_ext::Adapter::builder()
            .build(hyper014::client::HttpConnector::new());
        let config = aws_sdk_gamesparks::Config::builder()
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(key.0, key.1, None, None, "static"))
            .endpoint_url(format!("http://{}", self.api))
            .http_connector(connector)
            .build();
        Client::from_conf(config)
    }
}

impl Drop for Sessiond {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ROLE: &str = "arn:aws:iam::123456789012:role/GameSparks";

#[tokio::test]
async fn games_stages_and_tags() {
    let sd = Sessiond::start("");
    let gs = sd.client(KEY);

    let out = gs
        .create_game()
        .game_name("Arena")
        .description("first")
        .tags("team", "red")
        .send()
        .await
        .unwrap();
    let game = out.game().unwrap();
    assert_eq!(game.name(), Some("Arena"));
    assert_eq!(
        game.arn(),
        Some(format!("arn:aws:gamesparks:{REGION}:{ACCOUNT}:game/Arena").as_str())
    );
    assert_eq!(game.state().map(|s| s.as_str()), Some("ACTIVE"));
    assert!(game.created().is_some() && game.last_updated().is_some());
    assert_eq!(game.tags().unwrap()["team"], "red");

    let err = gs
        .create_game()
        .game_name("Arena")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_conflict_exception(), "{err:?}");

    for name in ["B", "C", "D"] {
        gs.create_game().game_name(name).send().await.unwrap();
    }
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = gs
            .list_games()
            .max_results(3)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        names.extend(
            page.games()
                .unwrap_or_default()
                .iter()
                .map(|g| g.name().unwrap().to_string()),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["Arena", "B", "C", "D"]);

    let out = gs
        .update_game()
        .game_name("Arena")
        .description("second")
        .send()
        .await
        .unwrap();
    assert_eq!(out.game().unwrap().description(), Some("second"));
    let out = gs.get_game().game_name("Arena").send().await.unwrap();
    assert_eq!(out.game().unwrap().description(), Some("second"));

    let stage = gs
        .create_stage()
        .game_name("Arena")
        .stage_name("Dev")
        .role(ROLE)
        .send()
        .await
        .unwrap();
    let key = stage.stage().unwrap().game_key().unwrap().to_string();
    assert!(!key.is_empty());
    gs.create_stage()
        .game_name("Arena")
        .stage_name("Prod")
        .role(ROLE)
        .send()
        .await
        .unwrap();
    let page = gs
        .list_stages()
        .game_name("Arena")
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.stages().unwrap()[0].name(), Some("Dev"));
    assert_eq!(page.stages().unwrap()[0].game_key(), Some(key.as_str()));
    let page = gs
        .list_stages()
        .game_name("Arena")
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.stages().unwrap()[0].name(), Some("Prod"));
    assert!(page.next_token().is_none());
    let out = gs
        .update_stage()
        .game_name("Arena")
        .stage_name("Dev")
        .description("dev stage")
        .send()
        .await
        .unwrap();
    assert_eq!(out.stage().unwrap().description(), Some("dev stage"));
    let out = gs
        .get_stage()
        .game_name("Arena")
        .stage_name("Dev")
        .send()
        .await
        .unwrap();
    assert_eq!(out.stage().unwrap().game_key(), Some(key.as_str()));

    // Tags on a stage ARN (':' and '/' in a URI label).
    let arn = out.stage().unwrap().arn().unwrap().to_string();
    gs.tag_resource()
        .resource_arn(&arn)
        .tags("a", "1")
        .tags("b", "2")
        .send()
        .await
        .unwrap();
    gs.untag_resource()
        .resource_arn(&arn)
        .tag_keys("a")
        .send()
        .await
        .unwrap();
    let tags = gs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    let tags = tags.tags().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags["b"], "2");

    let err = gs
        .get_stage()
        .game_name("Arena")
        .stage_name("Nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let err = gs
        .delete_game()
        .game_name("Arena")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_conflict_exception(), "stages remain: {err:?}");
    for s in ["Dev", "Prod"] {
        gs.delete_stage()
            .game_name("Arena")
            .stage_name(s)
            .send()
            .await
            .unwrap();
    }
    gs.delete_game().game_name("Arena").send().await.unwrap();
    let err = gs
        .get_game()
        .game_name("Arena")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // Another account sees none of it.
    let other = sd.client(KEY_B);
    let err = other
        .get_game()
        .game_name("B")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

#[tokio::test]
async fn player_connections_and_disconnect_player() {
    let sd = Sessiond::start("");
    let gs = sd.client(KEY);
    gs.create_game().game_name("Arena").send().await.unwrap();
    let key = gs
        .create_stage()
        .game_name("Arena")
        .stage_name("Dev")
        .role(ROLE)
        .send()
        .await
        .unwrap()
        .stage()
        .unwrap()
        .game_key()
        .unwrap()
        .to_string();

    let mut alice = Player::connect(sd.api, None, &key, None).await.unwrap();
    let mut alice2 = Player::connect(sd.api, None, &key, Some(&alice.player_token))
        .await
        .unwrap();
    let mut bob = Player::connect(sd.api, None, &key, None).await.unwrap();

    let status = gs
        .get_player_connection_status()
        .game_name("Arena")
        .stage_name("Dev")
        .player_id(&alice.player_id)
        .send()
        .await
        .unwrap();
    let conns = status.connections().expect("Connections is always sent");
    let mut ids: Vec<&str> = conns.iter().map(|c| c.id().unwrap()).collect();
    ids.sort();
    let mut want = vec![alice.connection_id.as_str(), alice2.connection_id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    for c in conns {
        // Parsed as a timestamp by the SDK (RFC 3339 with Z), and recent.
        let created = c.created().expect("Created parses");
        let age = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - created.secs();
        assert!((0..60).contains(&age), "{created:?}");
    }

    // The Rust SDK sends this POST with no body and no Content-Length.
    let out = gs
        .disconnect_player()
        .game_name("Arena")
        .stage_name("Dev")
        .player_id(&alice.player_id)
        .send()
        .await
        .unwrap();
    let mut ok: Vec<&str> = out
        .disconnect_successes()
        .expect("DisconnectSuccesses is always sent")
        .iter()
        .map(String::as_str)
        .collect();
    ok.sort();
    assert_eq!(ok, want);
    assert_eq!(out.disconnect_failures(), Some(&[][..]));
    for p in [&mut alice, &mut alice2] {
        match p.next_event(Duration::from_secs(5)).await {
            Event::Close { code, reason } => {
                assert_eq!(code, 4000);
                assert!(reason.contains("DisconnectPlayer"), "{reason}");
            }
            other => panic!("expected the close frame, got {other:?}"),
        }
    }
    // Bob is untouched.
    bob.send_json(&serde_json::json!({"type": "ping", "id": 1}))
        .await
        .unwrap();
    assert!(
        matches!(bob.next_event(Duration::from_secs(5)).await, Event::Text(v) if v["type"] == "pong")
    );

    // Idempotent, and fine for a player with no connections.
    for player in [alice.player_id.as_str(), "nobody"] {
        let out = gs
            .disconnect_player()
            .game_name("Arena")
            .stage_name("Dev")
            .player_id(player)
            .send()
            .await
            .unwrap();
        assert_eq!(out.disconnect_successes(), Some(&[][..]));
        assert_eq!(out.disconnect_failures(), Some(&[][..]));
        let status = gs
            .get_player_connection_status()
            .game_name("Arena")
            .stage_name("Dev")
            .player_id(player)
            .send()
            .await
            .unwrap();
        assert_eq!(status.connections(), Some(&[][..]));
    }

    // Unknown game or stage.
    for (game, stage) in [("Nope", "Dev"), ("Arena", "Nope")] {
        let err = gs
            .disconnect_player()
            .game_name(game)
            .stage_name(stage)
            .player_id("p")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_resource_not_found_exception(), "{err:?}");
    }
    // Validation (the SDK only checks that labels are set).
    let err = gs
        .disconnect_player()
        .game_name("Arena")
        .stage_name("Dev")
        .player_id("not valid!")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert_eq!(
        err.message(),
        Some("1 validation error detected: Value 'not valid!' at 'playerId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$")
    );
}

#[tokio::test]
async fn signature_errors_unserved_operations_and_throttling() {
    let sd = Sessiond::start("control_plane_rate_limit = 5");
    let wrong = sd.client((KEY.0, "not-the-secret"));
    let err = wrong
        .list_games()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    let unknown = sd.client(("AKIDnobody", "x"));
    let err = unknown
        .list_games()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");

    let gs = sd.client(KEY);
    let err = gs
        .get_game_configuration()
        .game_name("Arena")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("NotImplementedException"), "{err:?}");
    assert!(err.message().unwrap_or("").contains("GetGameConfiguration"));

    // 5 per second per key: a quick burst is throttled (retries are off).
    let mut calls = 0;
    let throttled = loop {
        calls += 1;
        match gs.list_games().send().await {
            Ok(_) => assert!(calls < 50, "never throttled"),
            Err(e) => break e.into_service_error(),
        }
    };
    assert!(throttled.is_throttling_exception(), "{throttled:?}");
    assert!(calls > 5, "throttled after {calls} calls");
}
