//! Player tokens: `v1.<playerId>.<issuedAtSeconds>.<mac>`, where mac is the base64url
//! HMAC-SHA256, under the key sessiond keeps in its store, of the stage the token belongs to
//! (account, game, stage and GameKey), the player id and the issue time. A token cannot be
//! forged without the key, and cannot be used on another stage (or on a stage deleted and
//! created again, which has a new GameKey).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sessiond_core::gamesparks::{is_valid_player_id, StageRef, TokenKey};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";
/// Domain separation: this key signs nothing else, but say what is signed.
const CONTEXT: &[u8] = b"sessiond/gamesparks/player-token/v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the player token is malformed")]
    Malformed,
    #[error("the player token is not valid for this stage")]
    BadSignature,
    #[error("the player token has expired; connect without a token to get a new player id")]
    Expired,
}

fn mac(key: &TokenKey, stage: &StageRef, player_id: &str, issued_at: i64) -> Vec<u8> {
    let Ok(mut m) = HmacSha256::new_from_slice(key.expose()) else {
        return Vec::new();
    };
    for part in [
        CONTEXT,
        stage.account.0.as_bytes(),
        stage.game.as_bytes(),
        stage.stage.as_bytes(),
        stage.game_key.as_bytes(),
        player_id.as_bytes(),
        issued_at.to_string().as_bytes(),
    ] {
        // Length-prefixed, so no two different tuples sign the same bytes.
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    m.finalize().into_bytes().to_vec()
}

/// A token for `player_id` on `stage`, issued at `issued_at` (Unix seconds).
pub fn issue(key: &TokenKey, stage: &StageRef, player_id: &str, issued_at: i64) -> String {
    format!(
        "{VERSION}.{player_id}.{issued_at}.{}",
        URL_SAFE_NO_PAD.encode(mac(key, stage, player_id, issued_at))
    )
}

/// The player id of a valid token for `stage`. `max_age_seconds` (if any) bounds its age.
pub fn verify(
    key: &TokenKey,
    stage: &StageRef,
    token: &str,
    now: i64,
    max_age_seconds: Option<u64>,
) -> Result<String, TokenError> {
    if token.len() > 256 {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(VERSION), Some(player_id), Some(issued), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    if !is_valid_player_id(player_id) || !issued.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed);
    }
    let issued_at: i64 = issued.parse().map_err(|_| TokenError::Malformed)?;
    let given = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    let expected = mac(key, stage, player_id, issued_at);
    if expected.is_empty() || !bool::from(expected.ct_eq(&given)) {
        return Err(TokenError::BadSignature);
    }
    if let Some(max_age) = max_age_seconds {
        if now.saturating_sub(issued_at) > i64::try_from(max_age).unwrap_or(i64::MAX) {
            return Err(TokenError::Expired);
        }
    }
    Ok(player_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::AccountId;

    fn stage(game_key: &str) -> StageRef {
        StageRef {
            account: AccountId("111".into()),
            game: "g".into(),
            stage: "s".into(),
            game_key: game_key.into(),
        }
    }

    fn key(b: u8) -> TokenKey {
        // TokenKey has no public constructor; derive one through a store-free path.
        crate::token::tests_support::key(b)
    }

    #[test]
    fn round_trip_and_binding() {
        let k = key(1);
        let s = stage("K1");
        let t = issue(&k, &s, "player_1", 1000);
        assert!(t.starts_with("v1.player_1.1000."));
        assert_eq!(verify(&k, &s, &t, 2000, None).unwrap(), "player_1");
        // Another stage (same names, new GameKey), another key, another player: refused.
        assert_eq!(
            verify(&k, &stage("K2"), &t, 2000, None),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&key(2), &s, &t, 2000, None),
            Err(TokenError::BadSignature)
        );
        let moved = t.replacen("player_1", "player_2", 1);
        assert_eq!(
            verify(&k, &s, &moved, 2000, None),
            Err(TokenError::BadSignature)
        );
        let older = t.replacen(".1000.", ".999.", 1);
        assert_eq!(
            verify(&k, &s, &older, 2000, None),
            Err(TokenError::BadSignature)
        );
        // Age.
        assert!(verify(&k, &s, &t, 1100, Some(100)).is_ok());
        assert_eq!(
            verify(&k, &s, &t, 1101, Some(100)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn malformed_tokens() {
        let k = key(1);
        let s = stage("K1");
        for bad in [
            "",
            "v1",
            "v2.p.1.AAAA",
            "v1.p.1",
            "v1.p.1.AAAA.x",
            "v1.p q.1.AAAA",
            "v1.p.-1.AAAA",
            "v1.p.1.!!!",
            &"x".repeat(300),
        ] {
            assert_eq!(
                verify(&k, &s, bad, 0, None),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify(&k, &s, "v1.p.1.AAAA", 0, None),
            Err(TokenError::BadSignature)
        );
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use std::sync::Arc;

    use sessiond_core::gamesparks::{GameSparksConfig, GameSparksService, TokenKey};
    use sessiond_core::SystemClock;
    use sessiond_store::{SqliteStore, Store, Write};

    /// A service whose token key is `[b; 32]` (written to a fresh store before it opens).
    pub fn service(b: u8) -> (tempfile::TempDir, Arc<GameSparksService>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let service = rt.block_on(async {
            store
                .commit(vec![Write::put(
                    "gamesparks.keys",
                    "player-token-key",
                    vec![b; 32],
                )])
                .await
                .unwrap();
            GameSparksService::open(GameSparksConfig::default(), store, Arc::new(SystemClock))
                .await
                .unwrap()
        });
        (dir, service)
    }

    pub fn key(b: u8) -> TokenKey {
        let (_dir, service) = service(b);
        service.token_key().clone()
    }
}
