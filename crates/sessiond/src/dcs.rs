//! Wiring of DCS (Huawei): declared Redis instances and nodes, client sessions.

use std::sync::Arc;

use anyhow::Result;
use serde::Deserialize;
use sessiond_api_common::Dialect;

/// The `[dcs]` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcsSection {}

/// Starts the service; returns the dialects it serves on the API listener.
pub async fn start(
    _section: &DcsSection,
    _wiring: &crate::Wiring,
) -> Result<Vec<Arc<dyn Dialect>>> {
    Ok(Vec::new())
}
