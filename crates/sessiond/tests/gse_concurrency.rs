//! Many clients joining one session at once never overbook it.

mod support;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_joins_never_overbook() {
    let env = Env::new("", "");
    let server = env.start();
    let mut a = server.client(KEY_A).await;
    let fleet_id = fleet(&mut a, 1).await;
    let gss = active_session(&mut a, &fleet_id, 57, json!({})).await;
    let id = gss["GameServerSessionId"].as_str().unwrap().to_string();

    // 40 connections, each sending batches of 1-5 players and single joins, 5 rounds.
    let mut tasks = Vec::new();
    for c in 0..40 {
        let mut client = server.client(if c % 2 == 0 { KEY_A } else { KEY_A2 }).await;
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut granted = 0usize;
            for round in 0..5 {
                let n = (c + round) % 5 + 1;
                let players: Vec<String> = (0..n).map(|i| format!("c{c}r{round}p{i}")).collect();
                let result = if n == 1 {
                    call(
                        &mut client,
                        "JoinGameServerSession",
                        json!({"GameServerSessionId": id, "PlayerId": players[0]}),
                    )
                    .await
                } else {
                    call(
                        &mut client,
                        "JoinGameServerSessionBatch",
                        json!({"GameServerSessionId": id, "PlayerIds": players}),
                    )
                    .await
                };
                match result {
                    Ok(_) => granted += n,
                    Err((code, msg)) => assert_eq!(code, "ResourceInsufficient", "{msg}"),
                }
            }
            granted
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += t.await.unwrap();
    }
    let s = describe_session(&mut a, &id).await;
    assert_eq!(
        s["CurrentPlayerSessionCount"].as_u64().unwrap() as usize,
        granted
    );
    assert!(granted <= 57, "overbooked: {granted}");
    assert!(
        granted >= 53,
        "a batch of at most 5 can leave at most 4 slots free; got {granted}"
    );
    let mut listed = 0;
    let mut token = serde_json::Value::Null;
    loop {
        let mut params = json!({"GameServerSessionId": id, "Limit": 10});
        if !token.is_null() {
            params["NextToken"] = token.clone();
        }
        let page = ok(&mut a, "DescribePlayerSessions", params).await;
        listed += page["PlayerSessions"].as_array().unwrap().len();
        token = page["NextToken"].clone();
        if token.is_null() {
            break;
        }
    }
    assert_eq!(
        listed, granted,
        "every granted player session is listed; no refused batch left any"
    );
}
