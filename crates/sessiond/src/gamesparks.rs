//! Wiring of GameSparks (AWS): games, stages and the WebSocket player runtime.

use std::sync::Arc;

use anyhow::Result;
use serde::Deserialize;
use sessiond_api_common::Dialect;

/// The `[gamesparks]` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameSparksSection {}

/// Starts the service; returns the dialects it serves on the API listener.
pub async fn start(
    _section: &GameSparksSection,
    _wiring: &crate::Wiring,
) -> Result<Vec<Arc<dyn Dialect>>> {
    Ok(Vec::new())
}
