//! The closed-loop driver: one worker task per keep-alive connection, sending signed join
//! requests back to back until the end of the phase.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio::time::Instant;

use crate::client::{connect, round_trip, signed_request, Sender, Target};
use crate::sign::Signer;
use crate::stats::{Summary, WorkerStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// JoinGameServerSessionBatch with --batch-size player ids per request.
    Batch,
    /// JoinGameServerSession, one player per request.
    Single,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Batch => "batch",
            Mode::Single => "single",
        }
    }

    pub fn action(self) -> &'static str {
        match self {
            Mode::Batch => "JoinGameServerSessionBatch",
            Mode::Single => "JoinGameServerSession",
        }
    }
}

pub struct Phase {
    pub target: Target,
    pub mode: Mode,
    pub batch_size: usize,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub request_timeout: Duration,
    /// Game server session ids, used round-robin.
    pub sessions: Vec<String>,
    /// One signer per credential; worker `i` uses credential `i % len`.
    pub signers: Vec<Signer>,
    /// Makes player ids unique across runs and phases.
    pub id_prefix: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Option<ResponseBody>,
}

#[derive(Deserialize)]
struct ResponseBody {
    #[serde(rename = "Error")]
    error: Option<ErrorBody>,
    #[serde(rename = "PlayerSessions")]
    player_sessions: Option<Vec<IgnoredAny>>,
    #[serde(rename = "PlayerSession")]
    player_session: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Code", default)]
    code: String,
}

/// `Ok(player sessions created)` or `Err(error code)`.
pub fn classify(mode: Mode, status: u16, body: &[u8]) -> Result<u64, String> {
    if status != 200 {
        return Err(format!("HTTP{status}"));
    }
    let env: Envelope = serde_json::from_slice(body).map_err(|_| "BadJson".to_string())?;
    let r = env.response.ok_or_else(|| "NoResponse".to_string())?;
    if let Some(e) = r.error {
        return Err(if e.code.is_empty() {
            "ErrorWithoutCode".into()
        } else {
            e.code
        });
    }
    match mode {
        Mode::Batch => r
            .player_sessions
            .map(|v| v.len() as u64)
            .ok_or_else(|| "NoPlayerSessions".into()),
        Mode::Single => r
            .player_session
            .map(|_| 1)
            .ok_or_else(|| "NoPlayerSession".into()),
    }
}

fn request_body(
    mode: Mode,
    batch_size: usize,
    gss_json: &str,
    prefix: &str,
    worker: usize,
    counter: u64,
) -> Bytes {
    let mut s = String::with_capacity(64 + gss_json.len() + batch_size * (prefix.len() + 24));
    s.push_str("{\"GameServerSessionId\":");
    s.push_str(gss_json);
    match mode {
        Mode::Batch => {
            s.push_str(",\"PlayerIds\":[");
            for i in 0..batch_size {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "\"{prefix}-{worker}-{counter}-{i}\"");
            }
            s.push_str("]}");
        }
        Mode::Single => {
            let _ = write!(s, ",\"PlayerId\":\"{prefix}-{worker}-{counter}\"}}");
        }
    }
    Bytes::from(s)
}

struct WorkerCtx {
    target: Target,
    mode: Mode,
    batch_size: usize,
    request_timeout: Duration,
    sessions_json: Vec<String>,
    id_prefix: String,
    warm_end: Instant,
    end: Instant,
}

fn bump(map: &mut std::collections::BTreeMap<String, u64>, code: &str) {
    if let Some(v) = map.get_mut(code) {
        *v += 1;
    } else {
        map.insert(code.to_string(), 1);
    }
}

async fn worker(
    ctx: Arc<WorkerCtx>,
    id: usize,
    mut signer: Signer,
    mut sender: Option<Sender>,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let n_sessions = ctx.sessions_json.len();
    let mut counter: u64 = 0;
    loop {
        if Instant::now() >= ctx.end {
            break;
        }
        let mut conn = match sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => match tokio::time::timeout_at(ctx.end, connect(ctx.target.addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(_)) => {
                    let map = if Instant::now() >= ctx.warm_end {
                        &mut stats.errors
                    } else {
                        &mut stats.warmup_errors
                    };
                    bump(map, "ConnectError");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                Err(_) => break,
            },
        };
        let gss = &ctx.sessions_json[(id + counter as usize) % n_sessions];
        let body = request_body(ctx.mode, ctx.batch_size, gss, &ctx.id_prefix, id, counter);
        counter += 1;
        let req = match signed_request(&mut signer, &ctx.target, ctx.mode.action(), body) {
            Ok(r) => r,
            Err(_) => {
                bump(&mut stats.errors, "BadRequest");
                break;
            }
        };
        let t0 = Instant::now();
        let deadline = (t0 + ctx.request_timeout).min(ctx.end);
        let res = tokio::time::timeout_at(deadline, round_trip(&mut conn, req)).await;
        let t1 = Instant::now();
        let outcome = match res {
            // Cut off by the end of the phase: not a failure, not counted.
            Err(_) if deadline == ctx.end => break,
            Err(_) => Err("Timeout".to_string()),
            Ok(Err(_)) => Err("HttpError".to_string()),
            Ok(Ok((status, body))) => {
                sender = Some(conn);
                classify(ctx.mode, status, &body)
            }
        };
        if t1 >= ctx.warm_end {
            let us = (t1 - t0).as_micros().min(u128::from(u32::MAX)) as u32;
            stats.latencies_us.push(us);
            match outcome {
                Ok(n) => {
                    stats.ok += 1;
                    stats.player_sessions += n;
                }
                Err(code) => bump(&mut stats.errors, &code),
            }
        } else {
            stats.warmup_requests += 1;
            if let Err(code) = outcome {
                bump(&mut stats.warmup_errors, &code);
            }
        }
    }
    stats
}

/// Opens the connections, runs warm-up then the measured window, and merges the results.
pub async fn run(phase: Phase) -> anyhow::Result<Summary> {
    anyhow::ensure!(!phase.sessions.is_empty(), "no game server sessions");
    anyhow::ensure!(!phase.signers.is_empty(), "no credentials");
    // Connect everything first so connection setup is not part of the timed phase.
    let mut connects = Vec::with_capacity(phase.connections);
    for _ in 0..phase.connections {
        connects.push(tokio::spawn(connect(phase.target.addr)));
    }
    let mut senders = Vec::with_capacity(phase.connections);
    for c in connects {
        senders.push(c.await??);
    }
    let start = Instant::now();
    let warm_end = start + phase.warmup;
    let end = warm_end + phase.duration;
    let ctx = Arc::new(WorkerCtx {
        target: phase.target.clone(),
        mode: phase.mode,
        batch_size: phase.batch_size,
        request_timeout: phase.request_timeout,
        sessions_json: phase
            .sessions
            .iter()
            .map(|s| serde_json::to_string(s).expect("string serializes"))
            .collect(),
        id_prefix: phase.id_prefix.clone(),
        warm_end,
        end,
    });
    let mut tasks = Vec::with_capacity(phase.connections);
    for (i, sender) in senders.into_iter().enumerate() {
        let signer = phase.signers[i % phase.signers.len()].clone();
        tasks.push(tokio::spawn(worker(ctx.clone(), i, signer, Some(sender))));
    }
    let mut total = WorkerStats::default();
    for t in tasks {
        total.merge(t.await?);
    }
    Ok(Summary::from_stats(total, phase.duration.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_with_unique_ids() {
        let b = request_body(Mode::Batch, 25, "\"gss-1\"", "pX", 3, 7);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["GameServerSessionId"], "gss-1");
        let ids = v["PlayerIds"].as_array().unwrap();
        assert_eq!(ids.len(), 25);
        assert_eq!(ids[0], "pX-3-7-0");
        assert_eq!(ids[24], "pX-3-7-24");
        let s = request_body(Mode::Single, 25, "\"gss-1\"", "pX", 3, 7);
        let v: serde_json::Value = serde_json::from_slice(&s).unwrap();
        assert_eq!(v["PlayerId"], "pX-3-7");
    }

    #[test]
    fn classification() {
        let ok_batch = br#"{"Response":{"PlayerSessions":[{"PlayerId":"a"},{"PlayerId":"b"}],"RequestId":"r"}}"#;
        assert_eq!(classify(Mode::Batch, 200, ok_batch), Ok(2));
        assert_eq!(
            classify(Mode::Single, 200, ok_batch),
            Err("NoPlayerSession".into())
        );
        let ok_single = br#"{"Response":{"PlayerSession":{"PlayerId":"a"},"RequestId":"r"}}"#;
        assert_eq!(classify(Mode::Single, 200, ok_single), Ok(1));
        let null_single = br#"{"Response":{"PlayerSession":null,"RequestId":"r"}}"#;
        assert_eq!(
            classify(Mode::Single, 200, null_single),
            Err("NoPlayerSession".into())
        );
        let err = br#"{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"x"},"RequestId":"r"}}"#;
        assert_eq!(
            classify(Mode::Batch, 200, err),
            Err("RequestLimitExceeded".into())
        );
        assert_eq!(classify(Mode::Batch, 502, b""), Err("HTTP502".into()));
        assert_eq!(classify(Mode::Batch, 200, b"nope"), Err("BadJson".into()));
        assert_eq!(
            classify(Mode::Batch, 200, crate::bare::BARE_BODY.as_bytes()),
            Ok(0)
        );
        assert_eq!(
            classify(Mode::Single, 200, crate::bare::BARE_BODY.as_bytes()),
            Ok(1)
        );
    }
}
