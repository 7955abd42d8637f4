//! Configuration: a TOML file (every key optional), then environment overrides, then flags.
//! Errors name the file, the key and the reason.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the durable store, process logs and the development credential live.
    pub data_dir: Option<PathBuf>,
    /// The address players use to reach this node's game servers (GSS IpAddress).
    pub public_ip: Option<String>,
    /// If set, requests naming another region get UnsupportedRegion.
    pub region: Option<String>,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    #[serde(default)]
    pub gse: GseSection,
    /// Requests per second per credential, keyed `"<service>.<Action>"`, e.g. `"gse.JoinGameServerSession"`.
    #[serde(default)]
    pub rate_limits: HashMap<String, u32>,
    #[serde(default)]
    pub dcdb: crate::dcdb::DcdbSection,
    #[serde(default)]
    pub dcs: crate::dcs::DcsSection,
    #[serde(default)]
    pub gamesparks: crate::gamesparks::GameSparksSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Cloud API (every dialect). Default 127.0.0.1:8080.
    pub api: Option<String>,
    /// GSE game-server agent (gRPC). Default 127.0.0.1:5758.
    pub agent: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub access_key_id: String,
    pub secret_access_key: Option<String>,
    /// A file holding the secret (trailing newline ignored); use instead of secret_access_key.
    pub secret_file: Option<PathBuf>,
    pub account_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GseSection {
    /// Directories under which game server builds live; default `<data_dir>/assets`.
    #[serde(default)]
    pub asset_roots: Vec<PathBuf>,
    pub player_session_reservation_seconds: Option<u64>,
    pub end_grace_seconds: Option<u64>,
    pub health_check_interval_seconds: Option<u64>,
    /// Ended game server sessions and their player sessions are deleted after this long.
    pub retention_hours: Option<u64>,
    #[serde(default)]
    pub assets: Vec<AssetConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    pub account_id: String,
    /// A directory directly under one of the asset roots.
    pub directory: String,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default = "default_region")]
    pub region: String,
}

fn default_version() -> String {
    "1.0".into()
}

fn default_region() -> String {
    "ap-shanghai".into()
}

/// Everything resolved: defaults applied, secrets read, addresses parsed.
pub struct Settings {
    pub data_dir: PathBuf,
    pub public_ip: String,
    pub region: Option<String>,
    pub api_addr: SocketAddr,
    pub agent_addr: SocketAddr,
    /// (access key id, secret, account id)
    pub credentials: Vec<(String, Vec<u8>, String)>,
    pub asset_roots: Vec<PathBuf>,
    pub reservation_seconds: u64,
    pub end_grace_seconds: u64,
    pub health_check_interval_seconds: u64,
    pub retention_hours: u64,
    pub assets: Vec<AssetConfig>,
    pub rate_limits: HashMap<String, u32>,
    pub dcdb: crate::dcdb::DcdbSection,
    pub dcs: crate::dcs::DcsSection,
    pub gamesparks: crate::gamesparks::GameSparksSection,
}

/// Shows everything but the secrets.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credentials: Vec<(&String, &String)> = self
            .credentials
            .iter()
            .map(|(id, _, account)| (id, account))
            .collect();
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("api_addr", &self.api_addr)
            .field("agent_addr", &self.agent_addr)
            .field("credentials", &credentials)
            .finish_non_exhaustive()
    }
}

pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub agent_listen: Option<String>,
    pub public_ip: Option<String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))
    }

    pub fn resolve(self, file: Option<&Path>, overrides: Overrides) -> Result<Settings> {
        let origin = file
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| "defaults".into());
        let data_dir = overrides
            .data_dir
            .or(self.data_dir)
            .unwrap_or_else(|| PathBuf::from("sessiond-data"));
        let parse_addr = |key: &str, value: &str| -> Result<SocketAddr> {
            value
                .parse()
                .map_err(|e| anyhow!("{origin}: {key} = {value:?} is not an ip:port address ({e})"))
        };
        let api_addr = parse_addr(
            "listen.api",
            overrides
                .listen
                .as_deref()
                .or(self.listen.api.as_deref())
                .unwrap_or("127.0.0.1:8080"),
        )?;
        let agent_addr = parse_addr(
            "listen.agent",
            overrides
                .agent_listen
                .as_deref()
                .or(self.listen.agent.as_deref())
                .unwrap_or("127.0.0.1:5758"),
        )?;
        let public_ip = overrides
            .public_ip
            .or(self.public_ip)
            .unwrap_or_else(|| "127.0.0.1".into());
        if public_ip.parse::<std::net::IpAddr>().is_err() {
            bail!("{origin}: public_ip = {public_ip:?} is not an IP address");
        }
        let mut credentials = Vec::new();
        for (i, c) in self.credentials.into_iter().enumerate() {
            let key = format!("credentials[{i}]");
            if c.access_key_id.trim().is_empty() {
                bail!("{origin}: {key}.access_key_id is empty");
            }
            if c.account_id.trim().is_empty() {
                bail!("{origin}: {key}.account_id is empty");
            }
            let secret = match (c.secret_access_key, c.secret_file) {
                (Some(s), None) => s,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .map_err(|e| anyhow!("{origin}: {key}.secret_file {}: {e}", f.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
                (Some(_), Some(_)) => {
                    bail!("{origin}: {key} has both secret_access_key and secret_file; keep one")
                }
                (None, None) => bail!("{origin}: {key} needs secret_access_key or secret_file"),
            };
            if secret.is_empty() {
                bail!("{origin}: {key} has an empty secret");
            }
            credentials.push((c.access_key_id, secret.into_bytes(), c.account_id));
        }
        for (key, limit) in &self.rate_limits {
            if !key.contains('.') || *limit == 0 {
                bail!("{origin}: rate_limits.{key:?} must be \"<service>.<Action>\" = requests per second (at least 1)");
            }
        }
        let seconds = |key: &str, value: Option<u64>, default: u64, max: u64| -> Result<u64> {
            let v = value.unwrap_or(default);
            if v == 0 || v > max {
                bail!("{origin}: gse.{key} = {v} must be 1 to {max}");
            }
            Ok(v)
        };
        Ok(Settings {
            reservation_seconds: seconds(
                "player_session_reservation_seconds",
                self.gse.player_session_reservation_seconds,
                60,
                86_400,
            )?,
            end_grace_seconds: seconds("end_grace_seconds", self.gse.end_grace_seconds, 30, 3_600)?,
            retention_hours: seconds("retention_hours", self.gse.retention_hours, 720, 24 * 365)?,
            health_check_interval_seconds: seconds(
                "health_check_interval_seconds",
                self.gse.health_check_interval_seconds,
                60,
                3_600,
            )?,
            asset_roots: if self.gse.asset_roots.is_empty() {
                vec![data_dir.join("assets")]
            } else {
                self.gse.asset_roots
            },
            data_dir,
            public_ip,
            region: self.region,
            api_addr,
            agent_addr,
            credentials,
            assets: self.gse.assets,
            rate_limits: self.rate_limits,
            dcdb: self.dcdb,
            dcs: self.dcs,
            gamesparks: self.gamesparks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Overrides {
        Overrides {
            data_dir: None,
            listen: None,
            agent_listen: None,
            public_ip: None,
        }
    }

    #[test]
    fn defaults_without_a_file() {
        let s = Config::default().resolve(None, none()).unwrap();
        assert_eq!(s.api_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.agent_addr.to_string(), "127.0.0.1:5758");
        assert_eq!(s.reservation_seconds, 60);
        assert_eq!(s.asset_roots, vec![PathBuf::from("sessiond-data/assets")]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = toml::from_str::<Config>("[listen]\napi = \"x\"\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
        let cfg: Config = toml::from_str("[listen]\napi = \"nope\"\n").unwrap();
        let err = cfg
            .resolve(Some(Path::new("/etc/s.toml")), none())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/s.toml") && err.contains("listen.api"),
            "{err}"
        );
        let cfg: Config =
            toml::from_str("[[credentials]]\naccess_key_id = \"a\"\naccount_id = \"1\"\n").unwrap();
        let err = cfg.resolve(None, none()).unwrap_err().to_string();
        assert!(err.contains("credentials[0]"), "{err}");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sessiond.example.toml");
        let cfg = Config::load(&path).unwrap();
        assert_eq!(cfg.gse.assets.len(), 1);
        assert_eq!(cfg.credentials.len(), 2);
    }

    #[test]
    fn overrides_win() {
        let cfg: Config = toml::from_str("[listen]\napi = \"127.0.0.1:1\"\n").unwrap();
        let s = cfg
            .resolve(
                None,
                Overrides {
                    listen: Some("127.0.0.1:2".into()),
                    ..none()
                },
            )
            .unwrap();
        assert_eq!(s.api_addr.port(), 2);
    }
}
