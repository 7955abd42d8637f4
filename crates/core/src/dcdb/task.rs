//! Running one kill task on one node: list, refuse protected threads, KILL the others, then
//! poll until they are gone. Every step is bounded (the data plane's connect and query
//! timeouts, the kill wait here); a broken connection ends the task at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::model::NodeKey;
use super::plane::{protection_reason, KillResult, NodeConnection, ShardSessions, Thread};

/// What happened to each listed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionResult {
    Killed,
    Absent,
    Failed(String),
}

/// Timing of the kill loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KillTiming {
    /// How long killed sessions may take to leave the process list.
    pub kill_wait: Duration,
    /// First pause between process-list polls (doubles up to `max_poll`).
    pub first_poll: Duration,
    pub max_poll: Duration,
}

/// The outcome of one task: one result per listed session, in the listed order.
pub(crate) type Results = Vec<(u64, SessionResult)>;

pub(crate) async fn kill_on_node(
    plane: &dyn ShardSessions,
    node: &NodeKey,
    sessions: &[u64],
    protected_users: &[String],
    timing: KillTiming,
) -> Results {
    let mut conn = match plane.connect(node).await {
        Ok(conn) => conn,
        Err(reason) => return all_failed(sessions, &reason),
    };
    let results = run(conn.as_mut(), sessions, protected_users, timing).await;
    conn.close().await;
    results
}

fn all_failed(sessions: &[u64], reason: &str) -> Results {
    sessions
        .iter()
        .map(|&s| (s, SessionResult::Failed(reason.to_string())))
        .collect()
}

async fn run(
    conn: &mut dyn NodeConnection,
    sessions: &[u64],
    protected_users: &[String],
    timing: KillTiming,
) -> Results {
    let own: HashSet<u64> = conn.own_ids().into_iter().collect();
    let visible: HashMap<u64, Thread> = match conn.threads(sessions).await {
        Ok(rows) => rows.into_iter().map(|t| (t.id, t)).collect(),
        Err(reason) => {
            return all_failed(
                sessions,
                &format!("reading the process list failed: {reason}"),
            )
        }
    };
    let mut results: BTreeMap<u64, SessionResult> = BTreeMap::new();
    // (id, was it visible in the process list before the KILL)
    let mut to_kill: Vec<(u64, bool)> = Vec::new();
    for &id in sessions {
        if own.contains(&id) {
            results.insert(
                id,
                SessionResult::Failed(
                    "protected: it is sessiond's own connection to this server".into(),
                ),
            );
        } else if let Some(thread) = visible.get(&id) {
            match protection_reason(thread, protected_users) {
                Some(reason) => {
                    results.insert(id, SessionResult::Failed(format!("protected: {reason}")));
                }
                None => to_kill.push((id, true)),
            }
        } else {
            // Not in the list: gone, or invisible to a user without PROCESS. The KILL tells
            // which (1094 = gone, 1095 = exists but not ours).
            to_kill.push((id, false));
        }
    }

    let mut killed: Vec<u64> = Vec::new();
    let mut unverified: HashSet<u64> = HashSet::new();
    let mut broken: Option<String> = None;
    for (i, &(id, seen)) in to_kill.iter().enumerate() {
        match conn.kill(id).await {
            Ok(KillResult::Killed) => {
                killed.push(id);
                if !seen {
                    unverified.insert(id);
                }
            }
            Ok(KillResult::NoSuchThread) => {
                results.insert(id, SessionResult::Absent);
            }
            Ok(KillResult::Denied(reason)) => {
                results.insert(
                    id,
                    SessionResult::Failed(format!("the server refused the KILL: {reason}")),
                );
            }
            Err(reason) => {
                for &(rest, _) in &to_kill[i..] {
                    results.insert(
                        rest,
                        SessionResult::Failed(format!(
                            "not killed: the connection to the server failed: {reason}"
                        )),
                    );
                }
                broken = Some(reason);
                break;
            }
        }
    }

    // KILL only flags the thread; wait until the server has ended every killed session.
    let mut remaining = killed.clone();
    let deadline = Instant::now() + timing.kill_wait;
    let mut pause = timing.first_poll;
    let mut last_seen: HashMap<u64, Thread>;
    while !remaining.is_empty() {
        if let Some(reason) = &broken {
            for id in remaining.drain(..) {
                results.insert(
                    id,
                    SessionResult::Failed(format!(
                        "KILL was sent, but the connection to the server failed before sessiond \
                         could see the session end: {reason}"
                    )),
                );
            }
            break;
        }
        match conn.threads(&remaining).await {
            Ok(rows) => {
                let still: HashSet<u64> = rows.iter().map(|t| t.id).collect();
                remaining.retain(|id| still.contains(id));
                last_seen = rows.into_iter().map(|t| (t.id, t)).collect();
            }
            Err(reason) => {
                broken = Some(format!("reading the process list failed: {reason}"));
                continue;
            }
        }
        if remaining.is_empty() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            for id in remaining.drain(..) {
                let detail = last_seen
                    .get(&id)
                    .map(|t| format!(" (command '{}', state '{}')", t.command, t.state))
                    .unwrap_or_default();
                results.insert(
                    id,
                    SessionResult::Failed(format!(
                        "KILL was sent, but the session was still present {} ms later{detail}: \
                         the server is still ending it (a long rollback?)",
                        timing.kill_wait.as_millis()
                    )),
                );
            }
            break;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(timing.max_poll);
    }
    for id in killed {
        results.entry(id).or_insert_with(|| {
            if unverified.contains(&id) {
                SessionResult::Failed(
                    "killed, but it was not visible in the process list beforehand, so sessiond \
                     could not check that it was not protected: grant sessiond's database user \
                     the PROCESS privilege"
                        .into(),
                )
            } else {
                SessionResult::Killed
            }
        });
    }
    sessions
        .iter()
        .map(|&id| {
            let result = results.remove(&id).unwrap_or_else(|| {
                SessionResult::Failed("internal error: no result was recorded".into())
            });
            (id, result)
        })
        .collect()
}

/// What a task did, for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub killed: usize,
    pub absent: usize,
    pub failed: usize,
    pub message: String,
}

/// Counts and a summary for people. The message is bounded: reasons are grouped and only the
/// first few session ids of each group are named.
pub(crate) fn summarize(results: &Results) -> Summary {
    let mut killed = 0;
    let mut absent = 0;
    let mut failures: Vec<(u64, &str)> = Vec::new();
    for (id, result) in results {
        match result {
            SessionResult::Killed => killed += 1,
            SessionResult::Absent => absent += 1,
            SessionResult::Failed(reason) => failures.push((*id, reason)),
        }
    }
    let message = if failures.is_empty() {
        format!(
            "all {} listed session(s) are gone: {killed} killed, {absent} already absent",
            results.len()
        )
    } else {
        failure_message(results.len(), killed, absent, &failures)
    };
    Summary {
        killed,
        absent,
        failed: failures.len(),
        message,
    }
}

fn failure_message(total: usize, killed: usize, absent: usize, failures: &[(u64, &str)]) -> String {
    const GROUPS: usize = 5;
    const IDS: usize = 10;
    let mut groups: Vec<(&str, Vec<u64>)> = Vec::new();
    for &(session, reason) in failures {
        match groups.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, ids)) => ids.push(session),
            None => groups.push((reason, vec![session])),
        }
    }
    let mut parts = Vec::new();
    for (reason, ids) in groups.iter().take(GROUPS) {
        let mut named: Vec<String> = ids.iter().take(IDS).map(u64::to_string).collect();
        if ids.len() > IDS {
            named.push(format!("and {} more", ids.len() - IDS));
        }
        let noun = if ids.len() == 1 {
            "session"
        } else {
            "sessions"
        };
        parts.push(format!("{noun} {}: {reason}", named.join(", ")));
    }
    if groups.len() > GROUPS {
        parts.push(format!("and {} other reason(s)", groups.len() - GROUPS));
    }
    format!(
        "{} of {total} listed session(s) could not be killed ({killed} killed, {absent} already absent): {}",
        failures.len(),
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_group_and_bound() {
        let mut results: Results = vec![(1, SessionResult::Killed), (2, SessionResult::Absent)];
        let s = summarize(&results);
        assert_eq!((s.killed, s.absent, s.failed), (1, 1, 0));
        assert_eq!(
            s.message,
            "all 2 listed session(s) are gone: 1 killed, 1 already absent"
        );
        for id in 10..1010 {
            results.push((id, SessionResult::Failed("cannot connect".into())));
        }
        results.push((5, SessionResult::Failed("protected: x".into())));
        let s = summarize(&results);
        assert_eq!(s.failed, 1001);
        let m = s.message;
        assert!(
            m.starts_with(
                "1001 of 1003 listed session(s) could not be killed (1 killed, 1 already absent)"
            ),
            "{m}"
        );
        assert!(
            m.contains(
                "sessions 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, and 990 more: cannot connect"
            ),
            "{m}"
        );
        assert!(m.contains("session 5: protected: x"), "{m}");
        assert!(m.len() < 400, "{}", m.len());
        for id in 0..20u64 {
            results.push((2000 + id, SessionResult::Failed(format!("reason {id}"))));
        }
        let m = summarize(&results).message;
        assert!(m.ends_with("and 17 other reason(s)"), "{m}");
    }
}
