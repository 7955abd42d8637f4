//! The live connections of this node, by (GameKey, player). Each entry holds the one-shot
//! channel that tells its connection task to close: whoever takes it (DisconnectPlayer, a
//! deleted stage, shutdown) is the only one who closes the connection.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::protocol::Close;

/// Sent to a connection task: close with `close`, then report whether the close frame went
/// out in time.
#[derive(Debug)]
pub struct CloseCommand {
    pub close: Close,
    pub ack: oneshot::Sender<bool>,
}

struct Entry {
    id: uuid::Uuid,
    created_ms: i64,
    close: oneshot::Sender<CloseCommand>,
}

/// (GameKey, player id)
pub type PlayerKey = (Arc<str>, Box<str>);

const SHARDS: usize = 32;

pub struct Registry {
    shards: Vec<Mutex<HashMap<PlayerKey, Vec<Entry>>>>,
    max_per_player: usize,
}

/// A connection taken out of the registry, to be closed.
pub struct Taken {
    pub id: uuid::Uuid,
    pub close: oneshot::Sender<CloseCommand>,
}

impl Registry {
    pub fn new(max_per_player: usize) -> Registry {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_player: max_per_player.max(1),
        }
    }

    fn shard(&self, game_key: &str, player: &str) -> &Mutex<HashMap<PlayerKey, Vec<Entry>>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        game_key.hash(&mut h);
        player.hash(&mut h);
        &self.shards[h.finish() as usize % SHARDS]
    }

    /// Adds a connection; false if the player already holds the most allowed.
    pub fn register(
        &self,
        key: &PlayerKey,
        id: uuid::Uuid,
        created_ms: i64,
        close: oneshot::Sender<CloseCommand>,
    ) -> bool {
        let mut shard = self.shard(&key.0, &key.1).lock();
        let entries = shard.entry(key.clone()).or_default();
        if entries.len() >= self.max_per_player {
            return false;
        }
        entries.push(Entry {
            id,
            created_ms,
            close,
        });
        true
    }

    /// Removes a connection (its task ended); no-op if it was already taken.
    pub fn unregister(&self, key: &PlayerKey, id: uuid::Uuid) {
        let mut shard = self.shard(&key.0, &key.1).lock();
        if let Some(entries) = shard.get_mut(key) {
            entries.retain(|e| e.id != id);
            if entries.is_empty() {
                shard.remove(key);
            }
        }
    }

    /// (id, created) of a player's connections, oldest first.
    pub fn list(&self, game_key: &str, player: &str) -> Vec<(uuid::Uuid, i64)> {
        let shard = self.shard(game_key, player).lock();
        let key: PlayerKey = (Arc::from(game_key), Box::from(player));
        let mut out: Vec<(uuid::Uuid, i64)> = shard
            .get(&key)
            .map(|entries| entries.iter().map(|e| (e.id, e.created_ms)).collect())
            .unwrap_or_default();
        out.sort_by_key(|(id, created)| (*created, *id));
        out
    }

    /// Takes every connection of a player out of the registry.
    pub fn take_player(&self, game_key: &str, player: &str) -> Vec<Taken> {
        let key: PlayerKey = (Arc::from(game_key), Box::from(player));
        let entries = self.shard(game_key, player).lock().remove(&key);
        let mut entries = entries.unwrap_or_default();
        entries.sort_by_key(|e| (e.created_ms, e.id));
        entries
            .into_iter()
            .map(|e| Taken {
                id: e.id,
                close: e.close,
            })
            .collect()
    }

    /// Takes every connection of a stage (or of every stage) out of the registry.
    pub fn take_where(&self, game_key: Option<&str>) -> Vec<Taken> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock();
            let keys: Vec<PlayerKey> = shard
                .keys()
                .filter(|(k, _)| game_key.is_none_or(|g| &**k == g))
                .cloned()
                .collect();
            for key in keys {
                if let Some(entries) = shard.remove(&key) {
                    out.extend(entries.into_iter().map(|e| Taken {
                        id: e.id,
                        close: e.close,
                    }));
                }
            }
        }
        out
    }

    pub fn count_stage(&self, game_key: &str) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .iter()
                    .filter(|((k, _), _)| &**k == game_key)
                    .map(|(_, v)| v.len())
                    .sum::<usize>()
            })
            .sum()
    }

    pub fn count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().values().map(Vec::len).sum::<usize>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(g: &str, p: &str) -> PlayerKey {
        (Arc::from(g), Box::from(p))
    }

    #[test]
    fn register_list_take() {
        let r = Registry::new(2);
        let a = key("K", "p1");
        let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::new_v4()).collect();
        assert!(r.register(&a, ids[0], 2, oneshot::channel().0));
        assert!(r.register(&a, ids[1], 1, oneshot::channel().0));
        assert!(
            !r.register(&a, ids[2], 3, oneshot::channel().0),
            "limit of 2"
        );
        assert!(r.register(&key("K", "p2"), ids[2], 3, oneshot::channel().0));
        assert!(r.register(
            &key("L", "p1"),
            uuid::Uuid::new_v4(),
            3,
            oneshot::channel().0
        ));
        let listed = r.list("K", "p1");
        assert_eq!(listed, [(ids[1], 1), (ids[0], 2)], "oldest first");
        assert_eq!(r.count_stage("K"), 3);
        assert_eq!(r.count(), 4);
        let taken = r.take_player("K", "p1");
        assert_eq!(
            taken.iter().map(|t| t.id).collect::<Vec<_>>(),
            [ids[1], ids[0]]
        );
        assert!(r.list("K", "p1").is_empty());
        assert!(r.take_player("K", "p1").is_empty());
        r.unregister(&key("K", "p2"), ids[2]);
        assert_eq!(r.count_stage("K"), 0);
        assert_eq!(r.take_where(Some("L")).len(), 1);
        assert_eq!(r.count(), 0);
    }
}
