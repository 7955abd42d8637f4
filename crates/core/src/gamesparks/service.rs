//! The GameSparks service: games, stages and tags under one lock, persisted as one store batch
//! per operation (applied to memory and queued to the store while the lock is held, answered
//! once durable, as in GSE); player connections through the [`ConnectionRegistry`].

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sessiond_store::{Store, Write};

use super::error::GameSparksError;
use super::model::*;
use super::registry::{
    ConnectionRegistry, DisconnectOutcome, DisconnectReason, PlayerConnection, StageRef,
};
use crate::{AccountId, Caller, Clock};

const GAMES: &str = "gamesparks.games";
const STAGES: &str = "gamesparks.stages";
const KEYS: &str = "gamesparks.keys";
/// The row holding the key that signs player tokens.
const TOKEN_KEY_ROW: &str = "player-token-key";

/// Page size when the caller gives none, and the largest page served (MaxResults 1-100).
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 100;

/// Tags per resource (the TagMap shape allows 50).
const MAX_TAGS: usize = 50;
/// Page tokens are `n1.<last name of the previous page>`.
const TOKEN_PREFIX: &str = "n1.";

#[derive(Debug, Clone)]
pub struct GameSparksConfig {
    pub max_games_per_account: usize,
    pub max_stages_per_game: usize,
}

impl Default for GameSparksConfig {
    fn default() -> Self {
        GameSparksConfig {
            max_games_per_account: 100,
            max_stages_per_game: 50,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct CreateGame {
    pub name: String,
    pub description: Option<String>,
    pub client_token: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateGame {
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateStage {
    pub name: String,
    pub role: String,
    pub description: Option<String>,
    pub client_token: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateStage {
    pub description: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// The key that signs player tokens: 32 random bytes, created once and kept in the store so
/// tokens survive restarts (and, with a shared store, are valid on every node).
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

type GameKeyOf = (AccountId, String);
type StageKeyOf = (AccountId, String, String);

#[derive(Default)]
struct State {
    /// (account, game name) -> game; a BTreeMap so listings come in name order.
    games: BTreeMap<GameKeyOf, Game>,
    /// (account, game name, stage name) -> stage.
    stages: BTreeMap<StageKeyOf, Stage>,
    /// GameKey -> its stage.
    by_game_key: HashMap<String, StageKeyOf>,
}

impl State {
    fn game(&self, caller: &Caller, name: &str) -> Result<&Game, GameSparksError> {
        match self.games.get(&(caller.account.clone(), name.to_string())) {
            Some(g) if g.region == caller.region => Ok(g),
            _ => Err(game_not_found(name)),
        }
    }

    fn stage(&self, caller: &Caller, game: &str, stage: &str) -> Result<&Stage, GameSparksError> {
        self.game(caller, game)?;
        match self
            .stages
            .get(&(caller.account.clone(), game.to_string(), stage.to_string()))
        {
            Some(s) if s.region == caller.region => Ok(s),
            _ => Err(GameSparksError::NotFound {
                kind: "stage",
                name: format!("{stage} of game {game}"),
            }),
        }
    }

    fn stage_count(&self, account: &AccountId, game: &str) -> usize {
        self.stages
            .range(stage_range(account, game))
            .filter(|((a, g, _), _)| a == account && g == game)
            .count()
    }

    fn insert_stage(&mut self, stage: Stage) {
        let key = (
            stage.account.clone(),
            stage.game.clone(),
            stage.name.clone(),
        );
        self.by_game_key.insert(stage.game_key.clone(), key.clone());
        self.stages.insert(key, stage);
    }
}

fn game_not_found(name: &str) -> GameSparksError {
    GameSparksError::NotFound {
        kind: "game",
        name: name.to_string(),
    }
}

fn stage_range(account: &AccountId, game: &str) -> (Bound<StageKeyOf>, Bound<StageKeyOf>) {
    (
        Bound::Included((account.clone(), game.to_string(), String::new())),
        Bound::Unbounded,
    )
}

fn encode<T: Serialize>(table: &'static str, key: &str, value: &T) -> Write {
    // Serialising plain structs to JSON cannot fail.
    Write::put(table, key, serde_json::to_vec(value).unwrap_or_default())
}

fn game_row(account: &AccountId, game: &str) -> String {
    format!("{account}/{game}")
}

fn stage_row(account: &AccountId, game: &str, stage: &str) -> String {
    format!("{account}/{game}/{stage}")
}

fn stage_ref(stage: &Stage) -> StageRef {
    StageRef {
        account: stage.account.clone(),
        game: stage.game.clone(),
        stage: stage.name.clone(),
        game_key: stage.game_key.clone(),
    }
}

/// The first name after the page token (exclusive), or none.
fn parse_token(token: &Option<String>) -> Result<Option<String>, GameSparksError> {
    match token.as_deref() {
        None => Ok(None),
        Some(t) => match t.strip_prefix(TOKEN_PREFIX) {
            Some(name) if is_valid_name(name) => Ok(Some(name.to_string())),
            _ => Err(GameSparksError::InvalidValue(format!(
                "NextToken {t:?} was not issued by this service; pass the NextToken of the previous page"
            ))),
        },
    }
}

fn page_of<T>(items: Vec<(String, T)>, limit: Option<u32>) -> Page<T> {
    let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
    let more = items.len() > limit;
    let mut items: Vec<(String, T)> = items.into_iter().take(limit).collect();
    let next_token = if more {
        items
            .last()
            .map(|(name, _)| format!("{TOKEN_PREFIX}{name}"))
    } else {
        None
    };
    Page {
        items: items.drain(..).map(|(_, t)| t).collect(),
        next_token,
    }
}

fn merged_tags(
    current: &BTreeMap<String, String>,
    add: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, GameSparksError> {
    let mut tags = current.clone();
    tags.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
    if tags.len() > MAX_TAGS {
        return Err(GameSparksError::InvalidValue(format!(
            "a resource can have at most {MAX_TAGS} tags; this request would leave it with {}",
            tags.len()
        )));
    }
    Ok(tags)
}

pub struct GameSparksService {
    config: GameSparksConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    registry: OnceLock<Arc<dyn ConnectionRegistry>>,
    token_key: TokenKey,
    state: Mutex<State>,
}

impl GameSparksService {
    /// Loads games and stages from the store; creates the player-token key on first start.
    pub async fn open(
        config: GameSparksConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<GameSparksService>, GameSparksError> {
        let token_key = match store.get(KEYS, TOKEN_KEY_ROW)? {
            Some(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    GameSparksError::Internal(format!(
                        "corrupt record {KEYS}/{TOKEN_KEY_ROW}: {} bytes, expected 32",
                        bytes.len()
                    ))
                })?;
                TokenKey(key)
            }
            None => {
                let mut key = [0u8; 32];
                rand::rng().fill(&mut key[..]);
                store
                    .commit(vec![Write::put(KEYS, TOKEN_KEY_ROW, key.to_vec())])
                    .await?;
                TokenKey(key)
            }
        };
        let service = GameSparksService {
            config,
            store,
            clock,
            registry: OnceLock::new(),
            token_key,
            state: Mutex::new(State::default()),
        };
        let loaded = service.load()?;
        *service.state.lock() = loaded;
        Ok(Arc::new(service))
    }

    fn load_rows<T: DeserializeOwned>(&self, table: &str) -> Result<Vec<T>, GameSparksError> {
        let rows = self.store.load_table(table)?;
        rows.into_iter()
            .map(|(key, value)| {
                serde_json::from_slice(&value).map_err(|e| {
                    GameSparksError::Internal(format!("corrupt record {table}/{key}: {e}"))
                })
            })
            .collect()
    }

    fn load(&self) -> Result<State, GameSparksError> {
        let mut state = State::default();
        for game in self.load_rows::<Game>(GAMES)? {
            state
                .games
                .insert((game.account.clone(), game.name.clone()), game);
        }
        for stage in self.load_rows::<Stage>(STAGES)? {
            state.insert_stage(stage);
        }
        Ok(state)
    }

    /// Attaches the runtime that holds player connections (once).
    pub fn attach_registry(&self, registry: Arc<dyn ConnectionRegistry>) {
        let _ = self.registry.set(registry);
    }

    fn registry(&self) -> Result<&Arc<dyn ConnectionRegistry>, GameSparksError> {
        self.registry
            .get()
            .ok_or_else(|| GameSparksError::Internal("no player runtime is attached".into()))
    }

    /// The key player tokens are signed with.
    pub fn token_key(&self) -> &TokenKey {
        &self.token_key
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Applies `change` and persists its writes; see [`crate::durable::apply`].
    async fn apply<R>(
        &self,
        change: impl FnOnce(&mut State, i64, &mut Vec<Write>) -> Result<R, GameSparksError>,
    ) -> Result<R, GameSparksError> {
        crate::durable::apply(&self.state, &*self.store, self.now(), change, |err| {
            tracing::error!(error = %err, "GameSparks change not persisted; reloading from the store");
            match self.load() {
                Ok(fresh) => *self.state.lock() = fresh,
                Err(load_err) => {
                    tracing::error!(error = %load_err, "reloading GameSparks state failed")
                }
            }
        })
        .await
    }

    // ---- games -----------------------------------------------------------------------------

    pub async fn create_game(
        &self,
        caller: &Caller,
        req: CreateGame,
    ) -> Result<Game, GameSparksError> {
        let caller = caller.clone();
        let max_games = self.config.max_games_per_account;
        self.apply(move |state, now, writes| {
            let key = (caller.account.clone(), req.name.clone());
            if let Some(existing) = state.games.get(&key) {
                if existing.client_token.is_some() && existing.client_token == req.client_token {
                    return Ok(existing.clone());
                }
                return Err(GameSparksError::AlreadyExists {
                    kind: "game",
                    name: req.name,
                });
            }
            let count = state
                .games
                .range((caller.account.clone(), String::new())..)
                .take_while(|((a, _), _)| a == &caller.account)
                .count();
            if count >= max_games {
                return Err(GameSparksError::LimitExceeded(format!(
                    "account {} already has {count} games, the most allowed ({max_games}); delete one first",
                    caller.account
                )));
            }
            let game = Game {
                account: caller.account.clone(),
                region: caller.region.clone(),
                name: req.name,
                description: req.description,
                created_ms: now,
                last_updated_ms: now,
                state: GameState::Active,
                tags: req.tags,
                client_token: req.client_token,
            };
            writes.push(encode(GAMES, &game_row(&game.account, &game.name), &game));
            state.games.insert(key, game.clone());
            Ok(game)
        })
        .await
    }

    pub fn game(&self, caller: &Caller, name: &str) -> Result<Game, GameSparksError> {
        self.state.lock().game(caller, name).cloned()
    }

    /// Games of the caller's account in name order.
    pub fn list_games(
        &self,
        caller: &Caller,
        limit: Option<u32>,
        next_token: &Option<String>,
    ) -> Result<Page<Game>, GameSparksError> {
        let after = parse_token(next_token)?;
        let state = self.state.lock();
        let start = match &after {
            Some(name) => Bound::Excluded((caller.account.clone(), name.clone())),
            None => Bound::Included((caller.account.clone(), String::new())),
        };
        let want = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize + 1;
        let items: Vec<(String, Game)> = state
            .games
            .range((start, Bound::Unbounded))
            .take_while(|((a, _), _)| a == &caller.account)
            .filter(|(_, g)| g.region == caller.region)
            .take(want)
            .map(|((_, name), g)| (name.clone(), g.clone()))
            .collect();
        Ok(page_of(items, limit))
    }

    pub async fn update_game(
        &self,
        caller: &Caller,
        name: &str,
        req: UpdateGame,
    ) -> Result<Game, GameSparksError> {
        let caller = caller.clone();
        self.apply(move |state, now, writes| {
            state.game(&caller, name)?;
            let game = state
                .games
                .get_mut(&(caller.account.clone(), name.to_string()))
                .ok_or_else(|| game_not_found(name))?;
            if let Some(description) = req.description {
                game.description = Some(description);
                game.last_updated_ms = now;
                writes.push(encode(GAMES, &game_row(&game.account, &game.name), game));
            }
            Ok(game.clone())
        })
        .await
    }

    /// Deletes a game that has no stages left.
    pub async fn delete_game(&self, caller: &Caller, name: &str) -> Result<(), GameSparksError> {
        let caller = caller.clone();
        self.apply(move |state, _, writes| {
            state.game(&caller, name)?;
            let stages = state.stage_count(&caller.account, name);
            if stages > 0 {
                return Err(GameSparksError::InUse(format!(
                    "game {name} still has {stages} stage(s); delete them first"
                )));
            }
            state
                .games
                .remove(&(caller.account.clone(), name.to_string()));
            writes.push(Write::delete(GAMES, game_row(&caller.account, name)));
            Ok(())
        })
        .await
    }

    // ---- stages ----------------------------------------------------------------------------

    pub async fn create_stage(
        &self,
        caller: &Caller,
        game: &str,
        req: CreateStage,
    ) -> Result<Stage, GameSparksError> {
        let caller = caller.clone();
        let max_stages = self.config.max_stages_per_game;
        self.apply(move |state, now, writes| {
            state.game(&caller, game)?;
            let key = (caller.account.clone(), game.to_string(), req.name.clone());
            if let Some(existing) = state.stages.get(&key) {
                if existing.client_token.is_some() && existing.client_token == req.client_token {
                    return Ok(existing.clone());
                }
                return Err(GameSparksError::AlreadyExists {
                    kind: "stage",
                    name: format!("{} of game {game}", req.name),
                });
            }
            let count = state.stage_count(&caller.account, game);
            if count >= max_stages {
                return Err(GameSparksError::LimitExceeded(format!(
                    "game {game} already has {count} stages, the most allowed ({max_stages}); delete one first"
                )));
            }
            let mut game_key = new_game_key();
            while state.by_game_key.contains_key(&game_key) {
                game_key = new_game_key();
            }
            let stage = Stage {
                account: caller.account.clone(),
                region: caller.region.clone(),
                game: game.to_string(),
                name: req.name,
                description: req.description,
                role: req.role,
                game_key,
                created_ms: now,
                last_updated_ms: now,
                state: StageState::Active,
                tags: req.tags,
                client_token: req.client_token,
            };
            writes.push(encode(
                STAGES,
                &stage_row(&stage.account, &stage.game, &stage.name),
                &stage,
            ));
            state.insert_stage(stage.clone());
            Ok(stage)
        })
        .await
    }

    pub fn stage(
        &self,
        caller: &Caller,
        game: &str,
        stage: &str,
    ) -> Result<Stage, GameSparksError> {
        self.state.lock().stage(caller, game, stage).cloned()
    }

    /// Stages of a game in name order.
    pub fn list_stages(
        &self,
        caller: &Caller,
        game: &str,
        limit: Option<u32>,
        next_token: &Option<String>,
    ) -> Result<Page<Stage>, GameSparksError> {
        let after = parse_token(next_token)?;
        let state = self.state.lock();
        state.game(caller, game)?;
        let start = match &after {
            Some(name) => Bound::Excluded((caller.account.clone(), game.to_string(), name.clone())),
            None => Bound::Included((caller.account.clone(), game.to_string(), String::new())),
        };
        let want = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize + 1;
        let items: Vec<(String, Stage)> = state
            .stages
            .range((start, Bound::Unbounded))
            .take_while(|((a, g, _), _)| a == &caller.account && g == game)
            .take(want)
            .map(|((_, _, name), s)| (name.clone(), s.clone()))
            .collect();
        Ok(page_of(items, limit))
    }

    pub async fn update_stage(
        &self,
        caller: &Caller,
        game: &str,
        stage: &str,
        req: UpdateStage,
    ) -> Result<Stage, GameSparksError> {
        let caller = caller.clone();
        self.apply(move |state, now, writes| {
            state.stage(&caller, game, stage)?;
            let key = (caller.account.clone(), game.to_string(), stage.to_string());
            let Some(s) = state.stages.get_mut(&key) else {
                return Err(game_not_found(game));
            };
            if req.description.is_some() || req.role.is_some() {
                if let Some(description) = req.description {
                    s.description = Some(description);
                }
                if let Some(role) = req.role {
                    s.role = role;
                }
                s.last_updated_ms = now;
                writes.push(encode(STAGES, &stage_row(&s.account, &s.game, &s.name), s));
            }
            Ok(s.clone())
        })
        .await
    }

    /// Deletes a stage that has no live player connections; connections that slip in while it
    /// is deleted are closed right after.
    pub async fn delete_stage(
        &self,
        caller: &Caller,
        game: &str,
        stage: &str,
    ) -> Result<(), GameSparksError> {
        let target = stage_ref(&self.stage(caller, game, stage)?);
        let live = self
            .registry()?
            .stage_connection_count(&target)
            .await
            .map_err(|e| GameSparksError::Internal(e.to_string()))?;
        if live > 0 {
            return Err(GameSparksError::InUse(format!(
                "stage {stage} of game {game} has {live} live player connection(s); disconnect them (DisconnectPlayer) before deleting the stage"
            )));
        }
        let caller = caller.clone();
        let key_of_target = target.game_key.clone();
        self.apply(move |state, _, writes| {
            let current = state.stage(&caller, game, stage)?;
            if current.game_key != key_of_target {
                // Deleted and created again meanwhile: this is another stage now.
                return Err(GameSparksError::InUse(format!(
                    "stage {stage} of game {game} changed while it was being deleted; try again"
                )));
            }
            state
                .stages
                .remove(&(caller.account.clone(), game.to_string(), stage.to_string()));
            state.by_game_key.remove(&key_of_target);
            writes.push(Write::delete(
                STAGES,
                stage_row(&caller.account, game, stage),
            ));
            Ok(())
        })
        .await?;
        if let Err(err) = self.registry()?.stage_removed(&target).await {
            tracing::warn!(%err, game, stage, "closing the connections of a deleted stage failed");
        }
        Ok(())
    }

    // ---- tags ------------------------------------------------------------------------------

    fn tags_mut<'a>(
        state: &'a mut State,
        caller: &Caller,
        resource: &ResourceRef,
    ) -> Result<&'a mut BTreeMap<String, String>, GameSparksError> {
        match resource {
            ResourceRef::Game { game } => {
                state.game(caller, game)?;
                state
                    .games
                    .get_mut(&(caller.account.clone(), game.clone()))
                    .map(|g| &mut g.tags)
                    .ok_or_else(|| game_not_found(game))
            }
            ResourceRef::Stage { game, stage } => {
                state.stage(caller, game, stage)?;
                state
                    .stages
                    .get_mut(&(caller.account.clone(), game.clone(), stage.clone()))
                    .map(|s| &mut s.tags)
                    .ok_or_else(|| game_not_found(game))
            }
        }
    }

    /// The record of a resource after a tag change, as a store write.
    fn record_write(state: &State, caller: &Caller, resource: &ResourceRef) -> Option<Write> {
        match resource {
            ResourceRef::Game { game } => state
                .games
                .get(&(caller.account.clone(), game.clone()))
                .map(|g| encode(GAMES, &game_row(&g.account, &g.name), g)),
            ResourceRef::Stage { game, stage } => state
                .stages
                .get(&(caller.account.clone(), game.clone(), stage.clone()))
                .map(|s| encode(STAGES, &stage_row(&s.account, &s.game, &s.name), s)),
        }
    }

    /// Adds or overwrites tags.
    pub async fn tag_resource(
        &self,
        caller: &Caller,
        resource: &ResourceRef,
        tags: BTreeMap<String, String>,
    ) -> Result<(), GameSparksError> {
        let caller = caller.clone();
        self.apply(move |state, _, writes| {
            let current = Self::tags_mut(state, &caller, resource)?;
            let merged = merged_tags(current, &tags)?;
            *current = merged;
            writes.extend(Self::record_write(state, &caller, resource));
            Ok(())
        })
        .await
    }

    /// Removes tags by key; keys the resource does not have are ignored.
    pub async fn untag_resource(
        &self,
        caller: &Caller,
        resource: &ResourceRef,
        keys: Vec<String>,
    ) -> Result<(), GameSparksError> {
        let caller = caller.clone();
        self.apply(move |state, _, writes| {
            let current = Self::tags_mut(state, &caller, resource)?;
            let before = current.len();
            for key in &keys {
                current.remove(key);
            }
            if current.len() != before {
                writes.extend(Self::record_write(state, &caller, resource));
            }
            Ok(())
        })
        .await
    }

    pub fn tags(
        &self,
        caller: &Caller,
        resource: &ResourceRef,
    ) -> Result<BTreeMap<String, String>, GameSparksError> {
        let state = self.state.lock();
        match resource {
            ResourceRef::Game { game } => Ok(state.game(caller, game)?.tags.clone()),
            ResourceRef::Stage { game, stage } => {
                Ok(state.stage(caller, game, stage)?.tags.clone())
            }
        }
    }

    // ---- runtime ---------------------------------------------------------------------------

    /// Live connections of a player on a stage (empty for a player who is not connected).
    pub async fn player_connections(
        &self,
        caller: &Caller,
        game: &str,
        stage: &str,
        player_id: &str,
    ) -> Result<Vec<PlayerConnection>, GameSparksError> {
        let target = stage_ref(&self.stage(caller, game, stage)?);
        self.registry()?
            .player_connections(&target, player_id)
            .await
            .map_err(|e| GameSparksError::Internal(e.to_string()))
    }

    /// Closes every live connection of a player on a stage. Idempotent: a player with no
    /// connections gets two empty lists.
    pub async fn disconnect_player(
        &self,
        caller: &Caller,
        game: &str,
        stage: &str,
        player_id: &str,
    ) -> Result<DisconnectOutcome, GameSparksError> {
        let target = stage_ref(&self.stage(caller, game, stage)?);
        self.registry()?
            .disconnect_player(&target, player_id, DisconnectReason::DisconnectPlayer)
            .await
            .map_err(|e| GameSparksError::Internal(e.to_string()))
    }

    /// The stage a GameKey belongs to (how game clients name a stage).
    pub fn stage_by_game_key(&self, game_key: &str) -> Option<StageRef> {
        let state = self.state.lock();
        let key = state.by_game_key.get(game_key)?;
        state.stages.get(key).map(stage_ref)
    }

    /// Whether the stage still exists (and is the same stage: same GameKey).
    pub fn stage_exists(&self, stage: &StageRef) -> bool {
        self.state
            .lock()
            .by_game_key
            .get(&stage.game_key)
            .is_some_and(|(a, g, s)| a == &stage.account && g == &stage.game && s == &stage.stage)
    }
}

#[cfg(test)]
mod tests;
