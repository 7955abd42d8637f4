//! Wiring of GameSparks (AWS): games, stages and the WebSocket player runtime.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sessiond_api_aws::{GameSparksApi, RateLimits};
use sessiond_api_common::Dialect;
use sessiond_core::gamesparks::{GameSparksConfig, GameSparksService};
use sessiond_core::SystemClock;
use sessiond_runtime::{Runtime, RuntimeConfig};

/// The `[gamesparks]` section of the config file; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameSparksSection {
    /// The AWS region served (credential scopes must name it). Default `us-east-1`.
    pub region: Option<String>,
    /// Requests per second per access key for each game, stage and tag operation. Default 50.
    pub control_plane_rate_limit: Option<u32>,
    /// Requests per second per access key for DisconnectPlayer and GetPlayerConnectionStatus.
    /// Default 1000.
    pub runtime_rate_limit: Option<u32>,
    /// Idle time after which a player connection gets a ping. Default 30.
    pub keepalive_interval_seconds: Option<f64>,
    /// Time after a ping within which the client must send something (the pong). Default 10.
    pub keepalive_timeout_seconds: Option<f64>,
    /// Time a new connection has to say hello. Default 10.
    pub hello_timeout_seconds: Option<f64>,
    /// Time a close frame has to go out (DisconnectPlayer reports slower ones as failures).
    /// Default 2.
    pub disconnect_timeout_seconds: Option<f64>,
    /// Connections one player may hold on one stage. Default 10.
    pub max_connections_per_player: Option<usize>,
    /// Largest message a game client may send, bytes. Default 4096.
    pub max_message_bytes: Option<usize>,
    /// Read buffer per connection, bytes. Default 1024.
    pub read_buffer_bytes: Option<usize>,
    /// Player tokens older than this are refused. Default: tokens do not expire.
    pub player_token_max_age_seconds: Option<u64>,
    /// Games per account. Default 100.
    pub max_games_per_account: Option<usize>,
    /// Stages per game. Default 50.
    pub max_stages_per_game: Option<usize>,
}

fn seconds(key: &str, value: Option<f64>, default: Duration) -> Result<Duration> {
    match value {
        None => Ok(default),
        Some(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
        Some(v) => bail!("gamesparks.{key}: {v} is not a number of seconds between 0 and 86400"),
    }
}

fn positive(key: &str, value: Option<usize>, default: usize, max: usize) -> Result<usize> {
    match value {
        None => Ok(default),
        Some(v) if (1..=max).contains(&v) => Ok(v),
        Some(v) => bail!("gamesparks.{key}: {v} must be between 1 and {max}"),
    }
}

impl GameSparksSection {
    fn runtime_config(&self) -> Result<RuntimeConfig> {
        let d = RuntimeConfig::default();
        Ok(RuntimeConfig {
            keepalive_interval: seconds(
                "keepalive_interval_seconds",
                self.keepalive_interval_seconds,
                d.keepalive_interval,
            )?,
            keepalive_timeout: seconds(
                "keepalive_timeout_seconds",
                self.keepalive_timeout_seconds,
                d.keepalive_timeout,
            )?,
            hello_timeout: seconds(
                "hello_timeout_seconds",
                self.hello_timeout_seconds,
                d.hello_timeout,
            )?,
            disconnect_timeout: seconds(
                "disconnect_timeout_seconds",
                self.disconnect_timeout_seconds,
                d.disconnect_timeout,
            )?,
            max_connections_per_player: positive(
                "max_connections_per_player",
                self.max_connections_per_player,
                d.max_connections_per_player,
                10_000,
            )?,
            max_message_bytes: positive(
                "max_message_bytes",
                self.max_message_bytes,
                d.max_message_bytes,
                1 << 20,
            )?,
            read_buffer_bytes: positive(
                "read_buffer_bytes",
                self.read_buffer_bytes,
                d.read_buffer_bytes,
                1 << 20,
            )?,
            token_max_age_seconds: self.player_token_max_age_seconds,
        })
    }
}

/// Starts the service; returns the dialects it serves on the API listener: the WebSocket
/// runtime (its own path) and the AWS rest-json API.
pub async fn start(
    section: &GameSparksSection,
    wiring: &crate::Wiring,
) -> Result<Vec<Arc<dyn Dialect>>> {
    let runtime_config = section.runtime_config()?;
    let service_config = GameSparksConfig {
        max_games_per_account: positive(
            "max_games_per_account",
            section.max_games_per_account,
            GameSparksConfig::default().max_games_per_account,
            100_000,
        )?,
        max_stages_per_game: positive(
            "max_stages_per_game",
            section.max_stages_per_game,
            GameSparksConfig::default().max_stages_per_game,
            10_000,
        )?,
    };
    let region = section
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".to_string());
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        bail!("gamesparks.region: {region:?} is not a region name (like us-east-1)");
    }
    let defaults = RateLimits::default();
    let limits = RateLimits {
        control_plane: section
            .control_plane_rate_limit
            .unwrap_or(defaults.control_plane),
        runtime: section.runtime_rate_limit.unwrap_or(defaults.runtime),
        overrides: wiring
            .rate_limits
            .iter()
            .filter(|(k, _)| k.starts_with("gamesparks."))
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    };

    let service =
        GameSparksService::open(service_config, wiring.store.clone(), Arc::new(SystemClock))
            .await
            .context("cannot load the GameSparks games and stages")?;
    let runtime = Runtime::new(service.clone(), runtime_config.clone());
    service.attach_registry(runtime.clone());
    tracing::info!(
        %region,
        keepalive_interval_s = runtime_config.keepalive_interval.as_secs_f64(),
        read_buffer_bytes = runtime_config.read_buffer_bytes,
        path = sessiond_runtime::protocol::PATH,
        "GameSparks served"
    );

    // A graceful stop says goodbye to the players (close 1001) instead of dropping sockets.
    let for_shutdown = runtime.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        for_shutdown.shutdown().await;
    });

    let api = GameSparksApi::new(
        service,
        wiring.credentials.clone(),
        limits,
        wiring.metrics.clone(),
        region,
    );
    Ok(vec![runtime.dialect(), Arc::new(api)])
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_parses_and_checks_values() {
        let section: GameSparksSection = toml::from_str(
            "keepalive_interval_seconds = 0.2\nmax_connections_per_player = 3\nregion = \"eu-west-1\"",
        )
        .unwrap();
        let rc = section.runtime_config().unwrap();
        assert_eq!(rc.keepalive_interval, Duration::from_millis(200));
        assert_eq!(rc.max_connections_per_player, 3);
        assert_eq!(rc.read_buffer_bytes, 1024);
        let bad: GameSparksSection = toml::from_str("keepalive_interval_seconds = -1.0").unwrap();
        assert!(bad.runtime_config().is_err());
        assert!(toml::from_str::<GameSparksSection>("nope = 1").is_err());
    }
}
