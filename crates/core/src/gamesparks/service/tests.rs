//! Service rules with a fake connection registry (the real runtime is exercised by the
//! integration tests).

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use sessiond_store::SqliteStore;

use super::*;
use crate::clock::ManualClock;
use crate::gamesparks::registry::{RegistryError, RegistryFuture};

#[derive(Default)]
struct FakeRegistry {
    /// (game key, player) -> connection ids
    live: Mutex<Vec<(String, String, String)>>,
    calls: Mutex<Vec<String>>,
    fail: Mutex<bool>,
}

impl ConnectionRegistry for FakeRegistry {
    fn player_connections(
        &self,
        stage: &StageRef,
        player_id: &str,
    ) -> RegistryFuture<Vec<PlayerConnection>> {
        let out = self
            .live
            .lock()
            .iter()
            .filter(|(k, p, _)| k == &stage.game_key && p == player_id)
            .map(|(_, _, id)| PlayerConnection {
                id: id.clone(),
                created_ms: 1,
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn disconnect_player(
        &self,
        stage: &StageRef,
        player_id: &str,
        reason: DisconnectReason,
    ) -> RegistryFuture<DisconnectOutcome> {
        if *self.fail.lock() {
            return Box::pin(async { Err(RegistryError("node unreachable".into())) });
        }
        self.calls
            .lock()
            .push(format!("disconnect {} {player_id} {reason:?}", stage.stage));
        let mut live = self.live.lock();
        let mut outcome = DisconnectOutcome::default();
        live.retain(|(k, p, id)| {
            let hit = k == &stage.game_key && p == player_id;
            if hit {
                outcome.successes.push(id.clone());
            }
            !hit
        });
        Box::pin(async move { Ok(outcome) })
    }

    fn stage_connection_count(&self, stage: &StageRef) -> RegistryFuture<usize> {
        let n = self
            .live
            .lock()
            .iter()
            .filter(|(k, _, _)| k == &stage.game_key)
            .count();
        Box::pin(async move { Ok(n) })
    }

    fn stage_removed(&self, stage: &StageRef) -> RegistryFuture<()> {
        self.calls.lock().push(format!("removed {}", stage.stage));
        Box::pin(async { Ok(()) })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    registry: Arc<FakeRegistry>,
    gs: Arc<GameSparksService>,
    caller: Caller,
}

fn caller(account: &str) -> Caller {
    Caller {
        account: AccountId(account.into()),
        region: "us-east-1".into(),
    }
}

async fn open(db: &Path, config: GameSparksConfig) -> Arc<GameSparksService> {
    let store = Arc::new(SqliteStore::open(db).unwrap());
    GameSparksService::open(config, store, Arc::new(ManualClock::new(1_700_000_000_000)))
        .await
        .unwrap()
}

impl Fixture {
    async fn new() -> Fixture {
        Self::with(GameSparksConfig::default()).await
    }

    async fn with(config: GameSparksConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let gs = open(&db, config).await;
        let registry = Arc::new(FakeRegistry::default());
        gs.attach_registry(registry.clone());
        Fixture {
            _dir: dir,
            db,
            registry,
            gs,
            caller: caller("111111111111"),
        }
    }

    async fn game(&self, name: &str) -> Game {
        self.gs
            .create_game(
                &self.caller,
                CreateGame {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    }

    async fn stage(&self, game: &str, name: &str) -> Stage {
        self.gs
            .create_stage(
                &self.caller,
                game,
                CreateStage {
                    name: name.into(),
                    role: "arn:aws:iam::111111111111:role/r".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn games_lifecycle_conflicts_and_client_tokens() {
    let f = Fixture::new().await;
    let g = f.game("g1").await;
    assert_eq!(g.state, GameState::Active);
    assert_eq!(g.created_ms, 1_700_000_000_000);
    let err =
        f.gs.create_game(
            &f.caller,
            CreateGame {
                name: "g1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GameSparksError::AlreadyExists { .. }),
        "{err}"
    );

    // A retry with the same ClientToken answers with the game; another token conflicts.
    let token = Some("t".repeat(40));
    let first =
        f.gs.create_game(
            &f.caller,
            CreateGame {
                name: "g2".into(),
                client_token: token.clone(),
                description: Some("d".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let again =
        f.gs.create_game(
            &f.caller,
            CreateGame {
                name: "g2".into(),
                client_token: token,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first, again);
    assert!(f
        .gs
        .create_game(
            &f.caller,
            CreateGame {
                name: "g2".into(),
                client_token: Some("u".repeat(40)),
                ..Default::default()
            },
        )
        .await
        .is_err());

    let updated =
        f.gs.update_game(
            &f.caller,
            "g1",
            UpdateGame {
                description: Some("new".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.description.as_deref(), Some("new"));
    assert_eq!(
        f.gs.game(&f.caller, "g1").unwrap().description.as_deref(),
        Some("new")
    );

    f.gs.delete_game(&f.caller, "g1").await.unwrap();
    assert!(matches!(
        f.gs.game(&f.caller, "g1"),
        Err(GameSparksError::NotFound { kind: "game", .. })
    ));
    assert!(matches!(
        f.gs.delete_game(&f.caller, "g1").await,
        Err(GameSparksError::NotFound { .. })
    ));
}

#[tokio::test]
async fn accounts_and_regions_are_isolated() {
    let f = Fixture::new().await;
    f.game("mine").await;
    f.stage("mine", "dev").await;
    let other = caller("222222222222");
    assert!(f.gs.game(&other, "mine").is_err());
    assert!(f.gs.stage(&other, "mine", "dev").is_err());
    assert!(f
        .gs
        .list_games(&other, None, &None)
        .unwrap()
        .items
        .is_empty());
    let other_region = Caller {
        region: "eu-west-1".into(),
        ..f.caller.clone()
    };
    assert!(f.gs.game(&other_region, "mine").is_err());
    assert!(f
        .gs
        .player_connections(&other, "mine", "dev", "p")
        .await
        .is_err());
    // The other account may use the same names.
    f.gs.create_game(
        &other,
        CreateGame {
            name: "mine".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        f.gs.list_games(&f.caller, None, &None).unwrap().items.len(),
        1
    );
}

#[tokio::test]
async fn listings_page_in_name_order() {
    let f = Fixture::new().await;
    for name in ["c", "a", "e", "b", "d"] {
        f.game(name).await;
    }
    f.gs.create_game(
        &caller("222222222222"),
        CreateGame {
            name: "bb".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = f.gs.list_games(&f.caller, Some(2), &token).unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|g| g.name.clone()));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);
    assert!(matches!(
        f.gs.list_games(&f.caller, None, &Some("garbage".into())),
        Err(GameSparksError::InvalidValue(_))
    ));
    // Exactly one page: no token.
    assert!(f
        .gs
        .list_games(&f.caller, Some(5), &None)
        .unwrap()
        .next_token
        .is_none());

    for name in ["s3", "s1", "s2"] {
        f.stage("a", name).await;
    }
    f.stage("b", "s0").await;
    let page = f.gs.list_stages(&f.caller, "a", Some(2), &None).unwrap();
    let names: Vec<_> = page.items.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["s1", "s2"]);
    let page =
        f.gs.list_stages(&f.caller, "a", Some(2), &page.next_token)
            .unwrap();
    let names: Vec<_> = page.items.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["s3"]);
    assert!(page.next_token.is_none());
    assert!(f.gs.list_stages(&f.caller, "zz", None, &None).is_err());
}

#[tokio::test]
async fn stages_have_unique_game_keys_and_block_game_deletion() {
    let f = Fixture::new().await;
    f.game("g").await;
    let a = f.stage("g", "a").await;
    let b = f.stage("g", "b").await;
    assert_ne!(a.game_key, b.game_key);
    let found = f.gs.stage_by_game_key(&a.game_key).unwrap();
    assert_eq!((found.game.as_str(), found.stage.as_str()), ("g", "a"));
    assert!(f.gs.stage_exists(&found));
    assert!(f.gs.stage_by_game_key("nope").is_none());
    assert!(matches!(
        f.gs.create_stage(
            &f.caller,
            "missing",
            CreateStage {
                name: "x".into(),
                role: "r".into(),
                ..Default::default()
            }
        )
        .await,
        Err(GameSparksError::NotFound { kind: "game", .. })
    ));
    assert!(matches!(
        f.gs.delete_game(&f.caller, "g").await,
        Err(GameSparksError::InUse(_))
    ));
    let updated =
        f.gs.update_stage(
            &f.caller,
            "g",
            "a",
            UpdateStage {
                role: Some("arn:aws:iam::111111111111:role/other".into()),
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.role, "arn:aws:iam::111111111111:role/other");
    assert_eq!(updated.game_key, a.game_key);

    f.gs.delete_stage(&f.caller, "g", "a").await.unwrap();
    assert!(!f.gs.stage_exists(&found));
    assert!(f.gs.stage_by_game_key(&a.game_key).is_none());
    assert!(f.registry.calls.lock().contains(&"removed a".to_string()));
    assert!(matches!(
        f.gs.delete_stage(&f.caller, "g", "a").await,
        Err(GameSparksError::NotFound { kind: "stage", .. })
    ));
    f.gs.delete_stage(&f.caller, "g", "b").await.unwrap();
    f.gs.delete_game(&f.caller, "g").await.unwrap();
}

#[tokio::test]
async fn live_connections_block_stage_deletion_and_disconnect_goes_to_the_registry() {
    let f = Fixture::new().await;
    f.game("g").await;
    let s = f.stage("g", "dev").await;
    f.registry
        .live
        .lock()
        .push((s.game_key.clone(), "p1".into(), "c1".into()));
    f.registry
        .live
        .lock()
        .push((s.game_key.clone(), "p1".into(), "c2".into()));
    let err = f.gs.delete_stage(&f.caller, "g", "dev").await.unwrap_err();
    assert!(
        matches!(&err, GameSparksError::InUse(m) if m.contains("2 live player connection")),
        "{err}"
    );
    let conns =
        f.gs.player_connections(&f.caller, "g", "dev", "p1")
            .await
            .unwrap();
    assert_eq!(conns.len(), 2);
    let out =
        f.gs.disconnect_player(&f.caller, "g", "dev", "p1")
            .await
            .unwrap();
    assert_eq!(out.successes, ["c1", "c2"]);
    assert!(out.failures.is_empty());
    // Idempotent.
    let out =
        f.gs.disconnect_player(&f.caller, "g", "dev", "p1")
            .await
            .unwrap();
    assert_eq!(out, DisconnectOutcome::default());
    assert!(matches!(
        f.gs.disconnect_player(&f.caller, "g", "nope", "p1").await,
        Err(GameSparksError::NotFound { kind: "stage", .. })
    ));
    assert!(matches!(
        f.gs.disconnect_player(&f.caller, "nope", "dev", "p1").await,
        Err(GameSparksError::NotFound { kind: "game", .. })
    ));
    *f.registry.fail.lock() = true;
    assert!(matches!(
        f.gs.disconnect_player(&f.caller, "g", "dev", "p1").await,
        Err(GameSparksError::Internal(_))
    ));
    f.gs.delete_stage(&f.caller, "g", "dev").await.unwrap();
}

#[tokio::test]
async fn tags_merge_remove_and_are_bounded() {
    let f = Fixture::new().await;
    f.game("g").await;
    f.stage("g", "s").await;
    let game = ResourceRef::Game { game: "g".into() };
    let stage = ResourceRef::Stage {
        game: "g".into(),
        stage: "s".into(),
    };
    f.gs.tag_resource(&f.caller, &game, tags(&[("a", "1"), ("b", "2")]))
        .await
        .unwrap();
    f.gs.tag_resource(&f.caller, &game, tags(&[("b", "3")]))
        .await
        .unwrap();
    assert_eq!(
        f.gs.tags(&f.caller, &game).unwrap(),
        tags(&[("a", "1"), ("b", "3")])
    );
    f.gs.untag_resource(&f.caller, &game, vec!["a".into(), "zz".into()])
        .await
        .unwrap();
    assert_eq!(f.gs.tags(&f.caller, &game).unwrap(), tags(&[("b", "3")]));
    assert!(f.gs.tags(&f.caller, &stage).unwrap().is_empty());

    let many: BTreeMap<String, String> =
        (0..50).map(|i| (format!("k{i}"), String::new())).collect();
    f.gs.tag_resource(&f.caller, &stage, many).await.unwrap();
    assert!(matches!(
        f.gs.tag_resource(&f.caller, &stage, tags(&[("one-more", "x")]))
            .await,
        Err(GameSparksError::InvalidValue(_))
    ));
    assert_eq!(f.gs.tags(&f.caller, &stage).unwrap().len(), 50);
    assert!(f
        .gs
        .tags(
            &f.caller,
            &ResourceRef::Stage {
                game: "g".into(),
                stage: "missing".into()
            }
        )
        .is_err());
}

#[tokio::test]
async fn limits() {
    let f = Fixture::with(GameSparksConfig {
        max_games_per_account: 2,
        max_stages_per_game: 1,
    })
    .await;
    f.game("a").await;
    f.game("b").await;
    assert!(matches!(
        f.gs.create_game(
            &f.caller,
            CreateGame {
                name: "c".into(),
                ..Default::default()
            }
        )
        .await,
        Err(GameSparksError::LimitExceeded(_))
    ));
    f.stage("a", "s").await;
    assert!(matches!(
        f.gs.create_stage(
            &f.caller,
            "a",
            CreateStage {
                name: "t".into(),
                role: "r".into(),
                ..Default::default()
            }
        )
        .await,
        Err(GameSparksError::LimitExceeded(_))
    ));
}

#[tokio::test]
async fn state_and_token_key_survive_a_restart() {
    let f = Fixture::new().await;
    f.game("g").await;
    let s = f.stage("g", "s").await;
    f.gs.tag_resource(
        &f.caller,
        &ResourceRef::Game { game: "g".into() },
        tags(&[("k", "v")]),
    )
    .await
    .unwrap();
    let key = *f.gs.token_key().expose();
    assert_eq!(format!("{:?}", f.gs.token_key()), "TokenKey(***)");
    let reopened = open(&f.db, GameSparksConfig::default()).await;
    assert_eq!(reopened.token_key().expose(), &key);
    assert_eq!(reopened.stage(&f.caller, "g", "s").unwrap(), s);
    assert_eq!(
        reopened.game(&f.caller, "g").unwrap().tags,
        tags(&[("k", "v")])
    );
    assert!(reopened.stage_by_game_key(&s.game_key).is_some());
    // Without a registry, runtime calls fail cleanly.
    assert!(matches!(
        reopened.disconnect_player(&f.caller, "g", "s", "p").await,
        Err(GameSparksError::Internal(_))
    ));
}
