#![forbid(unsafe_code)]
//! `sessiond-load`: drives signed GSE join requests against a running sessiond over keep-alive
//! HTTP/1.1 connections and compares the throughput with a bare hyper responder.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use sessiond_load::bare::BareChild;
use sessiond_load::client::{ApiClient, Target};
use sessiond_load::drive::{Mode, Phase};
use sessiond_load::sign::Signer;
use sessiond_load::stats::Summary;
use sessiond_load::{bare, drive, setup};

#[derive(Parser)]
#[command(name = "sessiond-load", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark JoinGameServerSessionBatch / JoinGameServerSession against sessiond and a bare
    /// HTTP responder; prints human-readable lines and one final JSON line.
    GseJoin(Box<GseJoinArgs>),
    /// Benchmark DCS HangUpClients: kill N Redis clients of one node in one call (Huawei DCS v2).
    DcsKill(Box<sessiond_load::dcs::KillArgs>),
    /// Benchmark DCS ListClients: page through many connected Redis clients, live and from a snapshot.
    DcsList(Box<sessiond_load::dcs::ListArgs>),
    /// Benchmark DCDB KillSession: kill N MariaDB client connections of one shard in one call,
    /// until DescribeFlow reports 0 and every connection is closed (Tencent DCDB 2018-04-11).
    DcdbKill(Box<sessiond_load::dcdb::KillArgs>),
    /// Benchmark the GameSparks runtime: hold N idle player connections (child processes,
    /// loopback source addresses), sessiond's RSS per connection, DisconnectPlayer latency to
    /// the close frame at the client.
    GamesparksBench(Box<sessiond_load::gamesparks::BenchArgs>),
    /// Internal: holds a share of the player connections (started by gamesparks-bench).
    #[command(hide = true)]
    GamesparksHold(Box<sessiond_load::gamesparks::HoldArgs>),
    /// Print VmRSS / VmHWM of a process (from /proc/PID/status).
    Rss {
        #[arg(long)]
        pid: u32,
    },
    /// Internal: the bare HTTP responder used as the baseline (started by gse-join).
    #[command(hide = true)]
    BareServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[derive(Args)]
struct GseJoinArgs {
    /// sessiond API endpoint (http://host:port); also the signed Host value (host:port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    /// SecretId; repeat together with --secret-key to spread connections over credentials.
    #[arg(long = "secret-id", action = clap::ArgAction::Append)]
    secret_id: Vec<String>,
    /// SecretKey; the n-th --secret-key pairs with the n-th --secret-id.
    #[arg(long = "secret-key", action = clap::ArgAction::Append)]
    secret_key: Vec<String>,
    #[arg(long, default_value = "ap-shanghai")]
    region: String,
    #[arg(long, value_enum, default_value = "batch")]
    mode: Mode,
    /// Player ids per JoinGameServerSessionBatch request (1-25).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u16).range(1..=25))]
    batch_size: u16,
    /// Concurrent keep-alive connections (one closed-loop worker each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured window per target.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Warm-up before the measured window (requests run but are not counted).
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Per-request timeout.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Existing fleet to create the game server sessions on (skips CreateAsset/CreateFleet).
    #[arg(long, conflicts_with = "setup_asset_dir_name")]
    fleet_id: Option<String>,
    /// Build directory under one of sessiond's asset roots (CreateAsset BucketKey "<name>.zip").
    #[arg(long, default_value = "example")]
    setup_asset_dir_name: String,
    /// LaunchPath of the created fleet's server processes.
    #[arg(long, default_value = "/local/game/example-game-server")]
    launch_path: String,
    /// Game server sessions to create (requests are spread over them round-robin).
    #[arg(long, default_value_t = 8)]
    sessions: usize,
    /// MaximumPlayerSessionCount of each created game server session.
    #[arg(long, default_value_t = 1_000_000)]
    max_players: u64,
    /// Only measure the bare HTTP responder.
    #[arg(long, conflicts_with = "no_bare")]
    bare_only: bool,
    /// Do not measure the bare HTTP responder.
    #[arg(long)]
    no_bare: bool,
    /// Worker threads of the client runtime (default: number of CPUs).
    #[arg(long)]
    client_threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Rss { pid } => rss(pid),
        Command::BareServer { listen } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(bare::serve(listen)),
        Command::DcsKill(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(sessiond_load::dcs::bench_kill(*args)),
        Command::DcsList(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(sessiond_load::dcs::bench_list(*args)),
        Command::DcdbKill(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(sessiond_load::dcdb::bench_kill(*args)),
        Command::GamesparksBench(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(sessiond_load::gamesparks::bench(*args)),
        Command::GamesparksHold(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(sessiond_load::gamesparks::hold(*args)),
        Command::GseJoin(args) => {
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = args.client_threads {
                rt.worker_threads(n.max(1));
            }
            rt.enable_all().build()?.block_on(gse_join(*args))
        }
    }
}

fn rss(pid: u32) -> anyhow::Result<()> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let (rss, hwm) = (field("VmRSS:"), field("VmHWM:"));
    let name = status
        .lines()
        .find_map(|l| l.strip_prefix("Name:"))
        .unwrap_or("")
        .trim();
    let show = |v: Option<u64>| match v {
        Some(kb) => format!("{kb} kB ({:.1} MiB)", kb as f64 / 1024.0),
        None => "n/a".to_string(),
    };
    println!("pid {pid} ({name}): VmRSS {}", show(rss));
    println!("pid {pid} ({name}): VmHWM {}", show(hwm));
    println!(
        "{}",
        ordered_json(&[
            ("pid", json!(pid)),
            ("name", json!(name)),
            ("vm_rss_kb", json!(rss)),
            ("vm_hwm_kb", json!(hwm)),
        ])
    );
    Ok(())
}

/// A JSON object with keys in the given order (serde_json's map sorts keys).
fn ordered_json(fields: &[(&str, Value)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

fn errors_line(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        "none".to_string()
    } else {
        errors
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn print_summary(label: &str, mode: Mode, s: &Summary, window: Duration) {
    let ps = if mode == Mode::Batch && label == "sessiond" {
        format!(", {:.0} player sessions/s", s.player_sessions_per_s)
    } else {
        String::new()
    };
    println!(
        "{label:<9} {} requests in {:.1} s: {:.0} ok req/s{ps}; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; errors: {}",
        s.requests,
        window.as_secs_f64(),
        s.rps,
        s.p50_ms,
        s.p99_ms,
        s.max_ms,
        errors_line(&s.errors)
    );
    if !s.warmup_errors.is_empty() {
        println!(
            "{label:<9} warm-up: {} requests, errors: {}",
            s.warmup_requests,
            errors_line(&s.warmup_errors)
        );
    }
}

async fn gse_join(args: GseJoinArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.sessions == 0 || args.duration_secs == 0 {
        bail!("--connections, --sessions and --duration-secs must be at least 1");
    }
    if args.secret_id.len() != args.secret_key.len() {
        bail!(
            "give --secret-id and --secret-key the same number of times ({} vs {})",
            args.secret_id.len(),
            args.secret_key.len()
        );
    }
    if args.secret_id.is_empty() && !args.bare_only {
        bail!("--secret-id and --secret-key are required (unless --bare-only)");
    }
    let mut signers: Vec<Signer> = args
        .secret_id
        .iter()
        .zip(&args.secret_key)
        .map(|(id, key)| Signer::new(id, key, "gse"))
        .collect();
    if signers.is_empty() {
        signers.push(Signer::new("AKIDbare", "bare", "gse"));
    }
    let run_id = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
            & 0xff_ffff_ffff
    );
    let mode = args.mode;
    let window = Duration::from_secs(args.duration_secs);
    let batch_size = if mode == Mode::Batch {
        usize::from(args.batch_size)
    } else {
        1
    };
    println!(
        "sessiond-load gse-join: mode={} ({}{}) connections={} warmup={}s duration={}s credentials={}",
        mode.as_str(),
        mode.action(),
        if mode == Mode::Batch {
            format!(", {batch_size} players/request")
        } else {
            String::new()
        },
        args.connections,
        args.warmup_secs,
        args.duration_secs,
        args.secret_id.len()
    );
    let phase = |target: Target, sessions: Vec<String>, prefix: String| Phase {
        target,
        mode,
        batch_size,
        connections: args.connections,
        warmup: Duration::from_secs(args.warmup_secs),
        duration: window,
        request_timeout: Duration::from_millis(args.timeout_ms.max(1)),
        sessions,
        signers: signers.clone(),
        id_prefix: prefix,
    };

    let mut sessiond: Option<Summary> = None;
    let mut sessions_for_bare = vec!["gss-bare".to_string()];
    if !args.bare_only {
        let target = Target::from_endpoint(&args.endpoint, &args.region).await?;
        let mut api = ApiClient::new(
            target.clone(),
            signers[0].clone(),
            Duration::from_millis(args.timeout_ms.max(1)),
        );
        let setup = setup::setup(
            &mut api,
            &setup::SetupParams {
                fleet_id: args.fleet_id.as_deref(),
                asset_dir_name: &args.setup_asset_dir_name,
                launch_path: &args.launch_path,
                sessions: args.sessions,
                max_players: args.max_players,
                run_id: &run_id,
                region: &args.region,
            },
        )
        .await
        .context("setup")?;
        println!(
            "setup: {}fleet {}; {} game server sessions ACTIVE (MaximumPlayerSessionCount {}) in {:.1} s",
            setup
                .asset_id
                .as_deref()
                .map(|a| format!("asset {a}, "))
                .unwrap_or_default(),
            setup.fleet_id,
            setup.sessions.len(),
            args.max_players,
            setup.elapsed.as_secs_f64()
        );
        drop(api);
        sessions_for_bare = setup.sessions.clone();
        println!("sessiond: {} ...", args.endpoint);
        let s = drive::run(phase(target, setup.sessions, format!("p{run_id}")))
            .await
            .context("sessiond phase")?;
        print_summary("sessiond", mode, &s, window);
        sessiond = Some(s);
    }

    let mut bare_summary: Option<Summary> = None;
    if !args.no_bare {
        let child = BareChild::start().await?;
        let target = Target {
            addr: child.addr,
            host: child.addr.to_string(),
            region: args.region.clone(),
        };
        println!(
            "bare:     http://{} (hyper, fixed JSON body) ...",
            child.addr
        );
        let res = drive::run(phase(target, sessions_for_bare, format!("b{run_id}"))).await;
        child.stop().await;
        let s = res.context("bare phase")?;
        print_summary("bare", mode, &s, window);
        bare_summary = Some(s);
    }

    let ratio = match (&sessiond, &bare_summary) {
        (Some(s), Some(b)) if b.rps > 0.0 => Some(s.rps / b.rps),
        _ => None,
    };
    if let Some(r) = ratio {
        println!("ratio (sessiond rps / bare rps): {r:.3}");
    }

    let opt = |v: Option<f64>, d: i32| v.map(|x| round(x, d));
    let errors: Value = sessiond
        .as_ref()
        .map(|s| json!(s.errors))
        .unwrap_or_else(|| json!({}));
    let line = ordered_json(&[
        ("mode", json!(mode.as_str())),
        ("rps", json!(opt(sessiond.as_ref().map(|s| s.rps), 1))),
        (
            "player_sessions_per_s",
            json!(opt(sessiond.as_ref().map(|s| s.player_sessions_per_s), 1)),
        ),
        ("p50_ms", json!(opt(sessiond.as_ref().map(|s| s.p50_ms), 3))),
        ("p99_ms", json!(opt(sessiond.as_ref().map(|s| s.p99_ms), 3))),
        ("max_ms", json!(opt(sessiond.as_ref().map(|s| s.max_ms), 3))),
        ("errors", json!(errors)),
        (
            "bare_rps",
            json!(opt(bare_summary.as_ref().map(|s| s.rps), 1)),
        ),
        ("ratio", json!(opt(ratio, 4))),
        ("action", json!(mode.action())),
        ("batch_size", json!(batch_size)),
        ("connections", json!(args.connections)),
        ("duration_secs", json!(args.duration_secs)),
        ("credentials", json!(args.secret_id.len())),
        ("requests", json!(sessiond.as_ref().map(|s| s.requests))),
        ("ok", json!(sessiond.as_ref().map(|s| s.ok))),
        (
            "bare_p50_ms",
            json!(opt(bare_summary.as_ref().map(|s| s.p50_ms), 3)),
        ),
        (
            "bare_p99_ms",
            json!(opt(bare_summary.as_ref().map(|s| s.p99_ms), 3)),
        ),
        (
            "bare_max_ms",
            json!(opt(bare_summary.as_ref().map(|s| s.max_ms), 3)),
        ),
        (
            "bare_errors",
            json!(bare_summary.as_ref().map(|s| json!(s.errors))),
        ),
    ]);
    println!("{line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_json_keeps_order_and_parses() {
        let line = ordered_json(&[
            ("mode", json!("batch")),
            ("a", json!(null)),
            ("errors", json!({"X": 1})),
        ]);
        assert_eq!(line, r#"{"mode":"batch","a":null,"errors":{"X":1}}"#);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["errors"]["X"], 1);
    }
}
