//! Creates what the benchmark joins: an asset, a fleet and ACTIVE game server sessions.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::client::{api_error_code, ApiClient};

pub struct SetupParams<'a> {
    /// Use this fleet instead of creating an asset and a fleet.
    pub fleet_id: Option<&'a str>,
    /// Build directory under one of sessiond's asset roots (BucketKey `<name>.zip`).
    pub asset_dir_name: &'a str,
    /// LaunchPath of the fleet's server processes (under `/local/game/`).
    pub launch_path: &'a str,
    pub sessions: usize,
    pub max_players: u64,
    pub run_id: &'a str,
    /// AssetRegion of the created asset.
    pub region: &'a str,
}

pub struct SetupResult {
    pub asset_id: Option<String>,
    pub fleet_id: String,
    pub sessions: Vec<String>,
    pub elapsed: Duration,
}

/// Calls an action, retrying while the error code is one of `retry_codes` (and on
/// `RequestLimitExceeded`, since setup actions default to 20 req/s) until `deadline`.
async fn call_retrying(
    client: &mut ApiClient,
    action: &'static str,
    params: &Value,
    retry_codes: &[&str],
    deadline: Instant,
) -> anyhow::Result<Value> {
    loop {
        match client.call(action, params).await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let retry = api_error_code(&e).is_some_and(|code| {
                    code.starts_with("RequestLimitExceeded") || retry_codes.contains(&code)
                });
                if !retry || Instant::now() >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

fn str_field<'v>(v: &'v Value, path: &[&str]) -> anyhow::Result<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(*p)
            .ok_or_else(|| anyhow!("response has no {} in {v}", path.join(".")))?;
    }
    cur.as_str()
        .ok_or_else(|| anyhow!("{} is not a string in {v}", path.join(".")))
}

pub async fn setup(client: &mut ApiClient, p: &SetupParams<'_>) -> anyhow::Result<SetupResult> {
    let started = Instant::now();
    let setup_deadline = || Instant::now() + Duration::from_secs(10);

    let (asset_id, fleet_id) = match p.fleet_id {
        Some(f) => (None, f.to_string()),
        None => {
            let asset = call_retrying(
                client,
                "CreateAsset",
                &json!({
                    "BucketKey": format!("{}.zip", p.asset_dir_name),
                    "AssetName": format!("{}-load-{}", p.asset_dir_name, p.run_id),
                    "AssetVersion": "1",
                    "AssetRegion": p.region,
                    "OperateSystem": "CentOS7.16",
                }),
                &[],
                setup_deadline(),
            )
            .await
            .context("CreateAsset")?;
            let asset_id = str_field(&asset, &["AssetId"])?.to_string();
            let fleet = call_retrying(
                client,
                "CreateFleet",
                &json!({
                    "AssetId": asset_id,
                    "Name": format!("sessiond-load-{}", p.run_id),
                    "RuntimeConfiguration": {
                        "ServerProcesses": [{
                            "LaunchPath": p.launch_path,
                            "Parameters": "",
                            "ConcurrentExecutions": p.sessions,
                        }],
                        "GameServerSessionActivationTimeoutSeconds": 600,
                        "MaxConcurrentGameServerSessionActivations": 100,
                    },
                }),
                &[],
                setup_deadline(),
            )
            .await
            .context("CreateFleet")?;
            let fleet_id = str_field(&fleet, &["FleetAttributes", "FleetId"])?.to_string();
            (Some(asset_id), fleet_id)
        }
    };

    // Processes of a new fleet need a moment to start and register with the agent.
    let create_deadline = Instant::now() + Duration::from_secs(30);
    let mut sessions = Vec::with_capacity(p.sessions);
    for i in 0..p.sessions {
        let gss = call_retrying(
            client,
            "CreateGameServerSession",
            &json!({
                "FleetId": fleet_id,
                "MaximumPlayerSessionCount": p.max_players,
                "Name": format!("load-{}-{i}", p.run_id),
            }),
            &["ResourceInsufficient"],
            create_deadline,
        )
        .await
        .with_context(|| format!("CreateGameServerSession #{} on {fleet_id}", i + 1))?;
        sessions.push(str_field(&gss, &["GameServerSession", "GameServerSessionId"])?.to_string());
    }

    let active_deadline = Instant::now() + Duration::from_secs(60);
    for id in &sessions {
        loop {
            let resp = call_retrying(
                client,
                "DescribeGameServerSessions",
                &json!({ "GameServerSessionId": id }),
                &[],
                setup_deadline(),
            )
            .await
            .context("DescribeGameServerSessions")?;
            let status = resp
                .get("GameServerSessions")
                .and_then(|l| l.get(0))
                .and_then(|s| s.get("Status"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match status.as_str() {
                "ACTIVE" => break,
                "ACTIVATING" | "" => {}
                other => bail!("game server session {id} is {other}, not ACTIVE"),
            }
            if Instant::now() >= active_deadline {
                bail!("game server session {id} not ACTIVE after 60 s (status {status:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(SetupResult {
        asset_id,
        fleet_id,
        sessions,
        elapsed: started.elapsed(),
    })
}
