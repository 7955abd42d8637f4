//! Wire shapes of the served operations: typed inputs (read from the validated input object)
//! and outputs (serialised with the model's member names).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sessiond_core::gamesparks::{Game, GameState, PlayerConnection, Stage, StageState};

/// `2022-03-23T12:34:56.123Z`: RFC 3339 with milliseconds and `Z` (the Rust SDK refuses a time
/// without an offset, and an epoch number).
pub fn format_time(ms: i64) -> String {
    sessiond_api_common::timefmt::rfc3339_millis(ms)
}

/// ARN of a game or a stage.
pub fn game_arn(region: &str, account: &str, game: &str) -> String {
    format!("arn:aws:gamesparks:{region}:{account}:game/{game}")
}

pub fn stage_arn(region: &str, account: &str, game: &str, stage: &str) -> String {
    format!("arn:aws:gamesparks:{region}:{account}:game/{game}/stage/{stage}")
}

// ---- inputs ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGameInput {
    pub game_name: String,
    pub description: Option<String>,
    pub client_token: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GameNameInput {
    pub game_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PagedInput {
    pub game_name: Option<String>,
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateGameInput {
    pub game_name: String,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStageInput {
    pub game_name: String,
    pub stage_name: String,
    pub role: String,
    pub description: Option<String>,
    pub client_token: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StageNameInput {
    pub game_name: String,
    pub stage_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStageInput {
    pub game_name: String,
    pub stage_name: String,
    pub description: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlayerInput {
    pub game_name: String,
    pub stage_name: String,
    pub player_id: String,
}

#[derive(Debug, Deserialize)]
pub struct TagResourceInput {
    #[serde(rename = "ResourceArn")]
    pub resource_arn: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct UntagResourceInput {
    #[serde(rename = "ResourceArn")]
    pub resource_arn: String,
    #[serde(rename = "tagKeys")]
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ResourceArnInput {
    #[serde(rename = "ResourceArn")]
    pub resource_arn: String,
}

// ---- outputs --------------------------------------------------------------------------------

fn game_state(s: GameState) -> &'static str {
    match s {
        GameState::Active => "ACTIVE",
        GameState::Deleting => "DELETING",
    }
}

fn stage_state(s: StageState) -> &'static str {
    match s {
        StageState::Active => "ACTIVE",
        StageState::Deleting => "DELETING",
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GameDetails {
    pub arn: String,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub enable_termination_protection: bool,
    pub last_updated: String,
    pub name: String,
    pub state: &'static str,
    pub tags: BTreeMap<String, String>,
}

impl From<&Game> for GameDetails {
    fn from(g: &Game) -> Self {
        GameDetails {
            arn: game_arn(&g.region, &g.account.0, &g.name),
            created: format_time(g.created_ms),
            description: g.description.clone(),
            enable_termination_protection: false,
            last_updated: format_time(g.last_updated_ms),
            name: g.name.clone(),
            state: game_state(g.state),
            tags: g.tags.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GameSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub name: String,
    pub state: &'static str,
    pub tags: BTreeMap<String, String>,
}

impl From<&Game> for GameSummary {
    fn from(g: &Game) -> Self {
        GameSummary {
            description: g.description.clone(),
            name: g.name.clone(),
            state: game_state(g.state),
            tags: g.tags.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StageDetails {
    pub arn: String,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub game_key: String,
    pub last_updated: String,
    pub name: String,
    pub role: String,
    pub state: &'static str,
    pub tags: BTreeMap<String, String>,
}

impl From<&Stage> for StageDetails {
    fn from(s: &Stage) -> Self {
        StageDetails {
            arn: stage_arn(&s.region, &s.account.0, &s.game, &s.name),
            created: format_time(s.created_ms),
            description: s.description.clone(),
            game_key: s.game_key.clone(),
            last_updated: format_time(s.last_updated_ms),
            name: s.name.clone(),
            role: s.role.clone(),
            state: stage_state(s.state),
            tags: s.tags.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StageSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub game_key: String,
    pub name: String,
    pub state: &'static str,
    pub tags: BTreeMap<String, String>,
}

impl From<&Stage> for StageSummary {
    fn from(s: &Stage) -> Self {
        StageSummary {
            description: s.description.clone(),
            game_key: s.game_key.clone(),
            name: s.name.clone(),
            state: stage_state(s.state),
            tags: s.tags.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GameOutput {
    pub game: GameDetails,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StageOutput {
    pub stage: StageDetails,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGamesOutput {
    pub games: Vec<GameSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStagesOutput {
    pub stages: Vec<StageSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TagsOutput {
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConnectionShape {
    pub created: String,
    pub id: String,
}

impl From<&PlayerConnection> for ConnectionShape {
    fn from(c: &PlayerConnection) -> Self {
        ConnectionShape {
            created: format_time(c.created_ms),
            id: c.id.clone(),
        }
    }
}

/// Both lists always present (a missing list is `None` in the Rust SDK).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConnectionsOutput {
    pub connections: Vec<ConnectionShape>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DisconnectOutput {
    pub disconnect_failures: Vec<String>,
    pub disconnect_successes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_with_millis_and_z() {
        assert_eq!(format_time(1_648_038_896_123), "2022-03-23T12:34:56.123Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn disconnect_output_always_has_both_lists() {
        let out = serde_json::to_string(&DisconnectOutput {
            disconnect_failures: vec![],
            disconnect_successes: vec![],
        })
        .unwrap();
        assert_eq!(out, r#"{"DisconnectFailures":[],"DisconnectSuccesses":[]}"#);
        let out = serde_json::to_string(&ConnectionsOutput {
            connections: vec![],
        })
        .unwrap();
        assert_eq!(out, r#"{"Connections":[]}"#);
    }
}
