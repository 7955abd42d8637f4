//! Wiring of DCDB (Tencent): declared instances and shards, KillSession on real MariaDB/MySQL.

use std::sync::Arc;

use anyhow::Result;
use serde::Deserialize;
use sessiond_api_common::Dialect;

/// The `[dcdb]` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcdbSection {}

/// Starts the service; returns the dialects it serves on the API listener.
pub async fn start(
    _section: &DcdbSection,
    _wiring: &crate::Wiring,
) -> Result<Vec<Arc<dyn Dialect>>> {
    Ok(Vec::new())
}
