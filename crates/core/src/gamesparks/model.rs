//! GameSparks resources as the domain sees them.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::AccountId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GameState {
    Active,
    Deleting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageState {
    Active,
    Deleting,
}

/// A game: the container of stages. Identified by (account, name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Game {
    pub account: AccountId,
    pub region: String,
    pub name: String,
    pub description: Option<String>,
    pub created_ms: i64,
    pub last_updated_ms: i64,
    pub state: GameState,
    pub tags: BTreeMap<String, String>,
    /// The ClientToken of the CreateGame call that created it: a retry with the same token
    /// answers with the game instead of a conflict.
    #[serde(default)]
    pub client_token: Option<String>,
}

/// A stage of a game: a runtime players connect to with its GameKey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub account: AccountId,
    pub region: String,
    pub game: String,
    pub name: String,
    pub description: Option<String>,
    pub role: String,
    /// What game clients present to connect; unique among all stages, never reused.
    pub game_key: String,
    pub created_ms: i64,
    pub last_updated_ms: i64,
    pub state: StageState,
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub client_token: Option<String>,
}

/// A taggable resource, as a tag operation names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceRef {
    Game { game: String },
    Stage { game: String, stage: String },
}

/// Player ids are 1-44 characters of `[a-zA-Z0-9_-]` (the PlayerId shape).
pub fn is_valid_player_id(id: &str) -> bool {
    is_name(id, 44)
}

/// Game and stage names are 1-36 characters of `[a-zA-Z0-9_-]`.
pub fn is_valid_name(name: &str) -> bool {
    is_name(name, 36)
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_alphanumeric(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())] as char)
        .collect()
}

/// A new GameKey: 32 random alphanumeric characters (~190 bits), within the 1-44 of the shape.
pub fn new_game_key() -> String {
    random_alphanumeric(32)
}

/// A new player id for a player's first connection: 32 lowercase hex digits (a random UUID
/// without hyphens), within the PlayerId shape.
pub fn new_player_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert!(is_valid_name("MyGame_1-x"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(37)));
        assert!(is_valid_name(&"a".repeat(36)));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("é"));
        assert!(is_valid_player_id(&"p".repeat(44)));
        assert!(!is_valid_player_id(&"p".repeat(45)));
        let id = new_player_id();
        assert!(is_valid_player_id(&id), "{id}");
        assert_ne!(id, new_player_id());
        let key = new_game_key();
        assert_eq!(key.len(), 32);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(key, new_game_key());
    }
}
