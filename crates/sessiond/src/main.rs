#![forbid(unsafe_code)]
//! sessiond: a self-hosted, single-binary session control plane.

mod config;
mod dcdb;
mod dcs;
mod gamesparks;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rand::Rng;
use sessiond_api_common::{serve, Credential, Credentials, Dialect, Metrics, Router, Secret};
use sessiond_api_tencent::{RateLimits, TencentApi};
use sessiond_core::gse::{GseConfig, GseService};
use sessiond_core::{AccountId, SystemClock};
use sessiond_gse_agent::{serve_agent, Supervisor, SupervisorConfig};
use sessiond_store::SqliteStore;
use tokio::net::TcpListener;

use crate::config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "sessiond",
    version,
    about = "A self-hosted session control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the cloud APIs and the game-server agent.
    Serve {
        /// TOML configuration file (every key optional).
        #[arg(long, env = "SESSIOND_CONFIG")]
        config: Option<PathBuf>,
        /// Data folder (store, logs, development credential). Default ./sessiond-data.
        #[arg(long, env = "SESSIOND_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Cloud API address, ip:port (port 0 picks a free port). Default 127.0.0.1:8080.
        #[arg(long, env = "SESSIOND_LISTEN")]
        listen: Option<String>,
        /// Game-server agent address, ip:port. Default 127.0.0.1:5758.
        #[arg(long, env = "SESSIOND_AGENT_LISTEN")]
        agent_listen: Option<String>,
        /// The IP address players use to reach game servers on this host. Default 127.0.0.1.
        #[arg(long, env = "SESSIOND_PUBLIC_IP")]
        public_ip: Option<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SESSIOND_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve {
            config,
            data_dir,
            listen,
            agent_listen,
            public_ip,
        } => {
            let file_config = match &config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            let settings = file_config.resolve(
                config.as_deref(),
                Overrides {
                    data_dir,
                    listen,
                    agent_listen,
                    public_ip,
                },
            )?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(run(settings))
        }
    }
}

/// Raises the open-files soft limit to the hard limit: every player connection and game server
/// pipe is a file descriptor.
fn raise_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard {
                if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                    tracing::warn!(%err, soft, hard, "cannot raise the open-files limit");
                }
            }
            let effective = getrlimit(Resource::RLIMIT_NOFILE)
                .map(|(s, _)| s)
                .unwrap_or(soft);
            tracing::info!(open_files_limit = effective, "file descriptor limit");
        }
        Err(err) => tracing::warn!(%err, "cannot read the open-files limit"),
    }
}

/// The development credential: created on first start when the config names none.
fn dev_credential(data_dir: &Path) -> Result<(String, Vec<u8>, String, bool)> {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Dev {
        access_key_id: String,
        secret_access_key: String,
        account_id: String,
    }
    let path = data_dir.join("dev-credential.toml");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let dev: Dev =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        return Ok((
            dev.access_key_id,
            dev.secret_access_key.into_bytes(),
            dev.account_id,
            false,
        ));
    }
    let mut rng = rand::rng();
    let alphabet: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect()
    };
    let dev = Dev {
        access_key_id: format!("AKID{}", pick(32)),
        secret_access_key: pick(32),
        account_id: format!("1000{:08}", rand::rng().random_range(0..100_000_000u32)),
    };
    let text = toml::to_string(&dev)?;
    write_private(&path, text.as_bytes())?;
    Ok((
        dev.access_key_id,
        dev.secret_access_key.into_bytes(),
        dev.account_id,
        true,
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn print_dev_snippet(id: &str, secret: &[u8], account: &str, api: &str) {
    let secret = String::from_utf8_lossy(secret);
    println!(
        "sessiond: created a development credential (account {account}); it is saved in the data folder.\n\
         \n  SecretId:  {id}\n  SecretKey: {secret}\n\n\
         Python SDK (pip install tencentcloud-sdk-python-gse):\n\n\
         from tencentcloud.common import credential\n\
         from tencentcloud.common.profile.client_profile import ClientProfile\n\
         from tencentcloud.common.profile.http_profile import HttpProfile\n\
         from tencentcloud.gse.v20191112 import gse_client, models\n\
         hp = HttpProfile(endpoint=\"{api}\", protocol=\"http\")\n\
         client = gse_client.GseClient(credential.Credential(\"{id}\", \"{secret}\"), \"ap-shanghai\", ClientProfile(httpProfile=hp))\n\
         print(client.ListFleets(models.ListFleetsRequest()).to_json_string())\n"
    );
}

/// What every service's wiring gets: the shared store, credentials, limits and metrics.
pub struct Wiring {
    pub store: Arc<SqliteStore>,
    pub credentials: Arc<Credentials>,
    pub metrics: Arc<Metrics>,
    pub rate_limits: std::collections::HashMap<String, u32>,
    pub data_dir: PathBuf,
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

async fn run(settings: config::Settings) -> Result<()> {
    raise_file_limit();
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            settings.data_dir.display()
        )
    })?;
    let store = Arc::new(
        SqliteStore::open(&settings.data_dir.join("sessiond.db"))
            .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))?,
    );

    let mut credential_list = settings.credentials.clone();
    let mut created_dev = None;
    if credential_list.is_empty() {
        let (id, secret, account, created) = dev_credential(&settings.data_dir)?;
        if created {
            created_dev = Some((id.clone(), secret.clone(), account.clone()));
        } else {
            println!(
                "sessiond: using the development credential {id} (account {account}) from {}",
                settings.data_dir.join("dev-credential.toml").display()
            );
        }
        credential_list.push((id, secret, account));
    }
    let credentials = Arc::new(Credentials::new(
        credential_list
            .into_iter()
            .map(|(id, secret, account)| Credential {
                access_key_id: id,
                secret: Secret::new(secret),
                account: AccountId(account),
            })
            .collect(),
    ));

    let mut asset_roots = Vec::new();
    for root in &settings.asset_roots {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create asset root {}", root.display()))?;
        asset_roots.push(root.canonicalize()?);
    }
    let gse = GseService::open(
        GseConfig {
            public_ip: settings.public_ip.clone(),
            asset_roots,
            reservation_timeout: Duration::from_secs(settings.reservation_seconds),
            end_grace: Duration::from_secs(settings.end_grace_seconds),
            retention: Duration::from_secs(settings.retention_hours * 3600),
            ..GseConfig::default()
        },
        store.clone(),
        Arc::new(SystemClock),
    )?;

    let api_listener = TcpListener::bind(settings.api_addr)
        .await
        .with_context(|| format!("cannot listen on {} (listen.api)", settings.api_addr))?;
    let agent_listener = TcpListener::bind(settings.agent_addr)
        .await
        .with_context(|| format!("cannot listen on {} (listen.agent)", settings.agent_addr))?;
    let api_addr = api_listener.local_addr()?;
    let agent_addr = agent_listener.local_addr()?;

    let supervisor = Supervisor::new(
        gse.clone(),
        SupervisorConfig {
            agent_addr: agent_addr.to_string(),
            log_dir: settings.data_dir.join("logs"),
            health_interval: Duration::from_secs(settings.health_check_interval_seconds),
        },
    )?;
    gse.attach_host(Arc::new(supervisor.clone()));

    for asset in &settings.assets {
        gse.declare_asset(
            &AccountId(asset.account_id.clone()),
            &asset.region,
            &asset.directory,
            &asset.version,
        )
        .await
        .with_context(|| format!("gse.assets: directory {:?}", asset.directory))?;
    }
    gse.start().await?;
    let timers = gse.spawn_timers();

    let metrics = Arc::new(Metrics::default());
    let wiring = Wiring {
        store: store.clone(),
        credentials: credentials.clone(),
        metrics: metrics.clone(),
        rate_limits: settings.rate_limits.clone(),
        data_dir: settings.data_dir.clone(),
    };
    let mut dialects: Vec<Arc<dyn Dialect>> = Vec::new();
    dialects.extend(dcdb::start(&settings.dcdb, &wiring).await?);
    dialects.extend(dcs::start(&settings.dcs, &wiring).await?);
    dialects.extend(gamesparks::start(&settings.gamesparks, &wiring).await?);
    let tencent = TencentApi::new(
        gse.clone(),
        dcdb::open(&settings.dcdb, &wiring).await?,
        credentials.clone(),
        RateLimits::new(settings.rate_limits.clone()),
        metrics.clone(),
        settings.region.clone(),
    );
    dialects.insert(0, Arc::new(tencent));
    let router = Arc::new(Router::new(dialects, metrics));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let api_task = tokio::spawn(serve(api_listener, router, wait_stop(stop_rx.clone())));
    let agent_task = tokio::spawn(serve_agent(
        agent_listener,
        gse.clone(),
        Some(supervisor.clone()),
        wait_stop(stop_rx.clone()),
    ));

    let api_url = format!("http://{api_addr}");
    if let Some((id, secret, account)) = created_dev {
        print_dev_snippet(&id, &secret, &account, &api_addr.to_string());
    }
    println!("sessiond: api listening on {api_url}");
    println!("sessiond: agent listening on {agent_addr}");
    println!("sessiond: ready");

    shutdown_signal().await;
    tracing::info!("shutting down: ending game server processes and closing the store");
    // A graceful stop ends this node's game servers (a crash leaves them to be taken over on
    // the next start); the agent stays up meanwhile so they can say goodbye.
    supervisor.stop_all(Duration::from_secs(10)).await;
    let _ = stop_tx.send(true);
    let _ = api_task.await;
    match agent_task.await {
        Ok(Err(err)) => tracing::warn!(%err, "agent server ended with an error"),
        Err(err) => tracing::warn!(%err, "agent task failed"),
        Ok(Ok(())) => {}
    }
    timers.abort();
    store.close();
    Ok(())
}
