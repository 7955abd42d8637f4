//! The GSE lifecycle against the real binary and real game server processes, with every error
//! code the decisions name.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_through_real_game_server_processes() {
    let env = Env::new("", "");
    let server = env.start();
    let mut a = server.client(KEY_A).await;

    let fleet_id = fleet(&mut a, 2).await;
    let attrs = ok(
        &mut a,
        "DescribeFleetAttributes",
        json!({"FleetIds": [fleet_id]}),
    )
    .await;
    assert_eq!(attrs["TotalCount"], 1);
    assert_eq!(attrs["FleetAttributes"][0]["Status"], "ACTIVE");
    let listed = ok(&mut a, "ListFleets", json!({})).await;
    assert_eq!(listed["FleetIds"], json!([fleet_id]));
    let runtime = ok(
        &mut a,
        "DescribeRuntimeConfiguration",
        json!({"FleetId": fleet_id}),
    )
    .await;
    assert_eq!(
        runtime["RuntimeConfiguration"]["ServerProcesses"][0]["ConcurrentExecutions"],
        2
    );
    let instances = ok(&mut a, "DescribeInstances", json!({"FleetId": fleet_id})).await;
    assert_eq!(instances["Instances"][0]["IpAddress"], "127.0.0.1");

    // Two real processes of the fleet run.
    eventually(
        "2 game server processes",
        Duration::from_secs(20),
        || async { (env.game_server_pids().len() == 2).then_some(()) },
    )
    .await;

    let gss = active_session(
        &mut a,
        &fleet_id,
        3,
        json!({"Name": "match-1", "GameProperties": [{"Key": "mode", "Value": "ctf"}]}),
    )
    .await;
    let gss_id = gss["GameServerSessionId"].as_str().unwrap().to_string();
    assert!(gss_id.starts_with(&format!(
        "qcs::gse:ap-shanghai:uin/{ACCOUNT_A}:gameserversession/{fleet_id}/gssess-"
    )));
    let port = gss["Port"].as_u64().unwrap();
    assert!(port > 0);

    // Search with the documented grammar.
    let found = ok(
        &mut a,
        "SearchGameServerSessions",
        json!({"FleetId": fleet_id, "FilterExpression": "gameServerSessionProperties.mode='ctf' AND maximumSessions>=3 AND hasAvailablePlayerSessions=true", "SortExpression": "creationTimeMillis ASC"}),
    )
    .await;
    assert_eq!(found["GameServerSessions"].as_array().unwrap().len(), 1);
    let none = ok(
        &mut a,
        "SearchGameServerSessions",
        json!({"FleetId": fleet_id, "FilterExpression": "gameServerSessionName='other'"}),
    )
    .await;
    assert_eq!(none["GameServerSessions"], json!([]));
    fails(
        &mut a,
        "SearchGameServerSessions",
        json!({"FleetId": fleet_id, "FilterExpression": "bogus=1"}),
        "InvalidParameterValue",
    )
    .await;

    // Batch join with PlayerDataMap; then a real player connects.
    let joined = ok(
        &mut a,
        "JoinGameServerSessionBatch",
        json!({"GameServerSessionId": gss_id, "PlayerIds": ["alice", "bob"], "PlayerDataMap": {"Key": "alice", "Value": "lvl=3"}}),
    )
    .await;
    let players = joined["PlayerSessions"].as_array().unwrap().clone();
    assert_eq!(players.len(), 2);
    assert!(players
        .iter()
        .all(|p| p["Status"] == "RESERVED" && p["Port"] == port));
    assert_eq!(players[0]["PlayerData"], "lvl=3");
    assert_eq!(players[1]["PlayerData"], serde_json::Value::Null);
    let (mut alice, answer) = connect_player(&players[0]).await.unwrap();
    assert_eq!(answer, "OK");
    wait_player_status(
        &mut a,
        players[0]["PlayerSessionId"].as_str().unwrap(),
        "ACTIVE",
    )
    .await;
    // A made-up player session id is refused by the game server (the agent validates it).
    let mut forged = players[1].clone();
    forged["PlayerSessionId"] = json!("psess-00000000-0000-0000-0000-000000000000");
    let (_, answer) = connect_player(&forged).await.unwrap();
    assert!(answer.starts_with("ERR"), "{answer}");

    // Capacity: 1 slot left.
    let msg = fails(
        &mut a,
        "JoinGameServerSessionBatch",
        json!({"GameServerSessionId": gss_id, "PlayerIds": ["c1", "c2"]}),
        "ResourceInsufficient",
    )
    .await;
    assert!(msg.contains("1 free"), "{msg}");
    assert_eq!(
        player_sessions(&mut a, &gss_id).await.len(),
        2,
        "a refused batch creates nothing"
    );
    fails(
        &mut a,
        "JoinGameServerSession",
        json!({"GameServerSessionId": gss_id, "PlayerId": "bob"}),
        "FailedOperation",
    )
    .await;
    let single = ok(
        &mut a,
        "JoinGameServerSession",
        json!({"GameServerSessionId": gss_id, "PlayerId": "carol", "PlayerData": "x"}),
    )
    .await;
    assert_eq!(single["PlayerSession"]["PlayerData"], "x");
    assert_eq!(
        describe_session(&mut a, &gss_id).await["CurrentPlayerSessionCount"],
        3
    );
    fails(
        &mut a,
        "JoinGameServerSession",
        json!({"GameServerSessionId": gss_id, "PlayerId": "dave"}),
        "ResourceInsufficient",
    )
    .await;

    // alice leaves: COMPLETED, slot freed.
    let _ = alice.shutdown().await;
    drop(alice);
    wait_player_status(
        &mut a,
        players[0]["PlayerSessionId"].as_str().unwrap(),
        "COMPLETED",
    )
    .await;
    assert_eq!(
        describe_session(&mut a, &gss_id).await["CurrentPlayerSessionCount"],
        2
    );

    // Paging.
    let page1 = ok(
        &mut a,
        "DescribePlayerSessions",
        json!({"GameServerSessionId": gss_id, "Limit": 2}),
    )
    .await;
    assert_eq!(page1["PlayerSessions"].as_array().unwrap().len(), 2);
    let token = page1["NextToken"].as_str().unwrap().to_string();
    let page2 = ok(
        &mut a,
        "DescribePlayerSessions",
        json!({"GameServerSessionId": gss_id, "Limit": 2, "NextToken": token}),
    )
    .await;
    assert_eq!(page2["PlayerSessions"].as_array().unwrap().len(), 1);
    assert!(page2["NextToken"].is_null());

    // DENY_ALL, then FullProtection.
    ok(&mut a, "UpdateGameServerSession", json!({"GameServerSessionId": gss_id, "PlayerSessionCreationPolicy": "DENY_ALL", "MaximumPlayerSessionCount": 10})).await;
    fails(
        &mut a,
        "JoinGameServerSession",
        json!({"GameServerSessionId": gss_id, "PlayerId": "eve"}),
        "UnsupportedOperation",
    )
    .await;
    ok(
        &mut a,
        "UpdateGameServerSession",
        json!({"GameServerSessionId": gss_id, "ProtectionPolicy": "FullProtection"}),
    )
    .await;
    fails(
        &mut a,
        "EndGameServerSessionAndProcess",
        json!({"GameServerSessionId": gss_id}),
        "FailedOperation",
    )
    .await;
    assert_eq!(describe_session(&mut a, &gss_id).await["Status"], "ACTIVE");
    let details = ok(
        &mut a,
        "DescribeGameServerSessionDetails",
        json!({"GameServerSessionId": gss_id}),
    )
    .await;
    assert_eq!(
        details["GameServerSessionDetails"][0]["ProtectionPolicy"],
        "FullProtection"
    );
    ok(
        &mut a,
        "UpdateGameServerSession",
        json!({"GameServerSessionId": gss_id, "ProtectionPolicy": "NoProtection"}),
    )
    .await;

    // End by IpAddress + Port: the session and its players end, the real process exits and a
    // new one takes its place.
    let before = env.game_server_pids();
    fails(
        &mut a,
        "EndGameServerSessionAndProcess",
        json!({"IpAddress": "127.0.0.1", "Port": 1025}),
        "InvalidParameterValue",
    )
    .await;
    ok(
        &mut a,
        "EndGameServerSessionAndProcess",
        json!({"IpAddress": "127.0.0.1", "Port": port}),
    )
    .await;
    let ended = describe_session(&mut a, &gss_id).await;
    assert_eq!(ended["Status"], "TERMINATED");
    assert!(ended["TerminationTime"].is_string());
    for p in player_sessions(&mut a, &gss_id).await {
        assert!(
            p["Status"] == "COMPLETED" && p["TerminationTime"].is_string(),
            "{p}"
        );
    }
    eventually(
        "the ended process to exit and be replaced",
        Duration::from_secs(20),
        || async {
            let now = env.game_server_pids();
            (now.len() == 2 && now != before).then_some(())
        },
    )
    .await;
    // Idempotent; and a TERMINATED session takes no players.
    ok(
        &mut a,
        "EndGameServerSessionAndProcess",
        json!({"GameServerSessionId": gss_id}),
    )
    .await;
    fails(
        &mut a,
        "JoinGameServerSession",
        json!({"GameServerSessionId": gss_id, "PlayerId": "zed"}),
        "ResourceUnavailable",
    )
    .await;

    // A second session on the fresh process, ended by id.
    let gss2 = active_session(&mut a, &fleet_id, 2, json!({})).await;
    let gss2_id = gss2["GameServerSessionId"].as_str().unwrap();
    ok(
        &mut a,
        "EndGameServerSessionAndProcess",
        json!({"GameServerSessionId": gss2_id}),
    )
    .await;
    assert_eq!(
        describe_session(&mut a, gss2_id).await["Status"],
        "TERMINATED"
    );

    // UpdateRuntimeConfiguration scales the fleet; DeleteFleet ends it; DeleteAsset then works.
    let asset_id = attrs["FleetAttributes"][0]["AssetId"]
        .as_str()
        .unwrap()
        .to_string();
    fails(
        &mut a,
        "DeleteAsset",
        json!({"AssetId": asset_id}),
        "ResourceInUse",
    )
    .await;
    ok(&mut a, "UpdateRuntimeConfiguration", json!({"FleetId": fleet_id, "RuntimeConfiguration": {"ServerProcesses": [{"LaunchPath": "/local/game/example-game-server", "Parameters": "", "ConcurrentExecutions": 3}]}})).await;
    eventually("3 processes", Duration::from_secs(20), || async {
        (env.game_server_pids().len() == 3).then_some(())
    })
    .await;
    ok(&mut a, "DeleteFleet", json!({"FleetId": fleet_id})).await;
    eventually("no processes", Duration::from_secs(30), || async {
        env.game_server_pids().is_empty().then_some(())
    })
    .await;
    ok(&mut a, "DeleteAsset", json!({"AssetId": asset_id})).await;
    let assets = ok(
        &mut a,
        "DescribeAssets",
        json!({"AssetRegion": "ap-shanghai", "Offset": 0, "Limit": 10}),
    )
    .await;
    assert_eq!(assets["TotalCount"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_errors_follow_the_decisions() {
    let env = Env::new("", "");
    let server = env.start();
    let mut a = server.client(KEY_A).await;
    let fleet_id = fleet(&mut a, 1).await;
    let gss = active_session(&mut a, &fleet_id, 30, json!({})).await;
    let id = gss["GameServerSessionId"].as_str().unwrap().to_string();

    let ids26: Vec<String> = (0..26).map(|i| format!("p{i}")).collect();
    let cases = [
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id, "PlayerIds": ids26}),
            "InvalidParameterValue",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id, "PlayerIds": []}),
            "InvalidParameterValue",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id, "PlayerIds": ["a", "a"]}),
            "InvalidParameterValue",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id, "PlayerIds": [""]}),
            "InvalidParameterValue",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id, "PlayerIds": ["x".repeat(1025)]}),
            "InvalidParameterValue",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id, "PlayerIds": ["a"], "PlayerDataMap": {"Key": "b", "Value": "v"}}),
            "InvalidParameterValue",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id, "PlayerIds": ["a"], "PlayerDataMap": {"Key": "a", "Value": "v".repeat(2049)}}),
            "InvalidParameterValue",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id}),
            "MissingParameter",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id, "PlayerIds": "a"}),
            "InvalidParameter",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": id, "PlayerIds": ["a"], "Bogus": 1}),
            "UnknownParameter",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": "x".repeat(257), "PlayerIds": ["a"]}),
            "InvalidParameterValue",
        ),
        (
            "JoinGameServerSessionBatch",
            json!({"GameServerSessionId": "qcs::gse:ap-shanghai:uin/1:gameserversession/fleet-x/gssess-nope", "PlayerIds": ["a"]}),
            "ResourceNotFound",
        ),
        (
            "JoinGameServerSession",
            json!({"GameServerSessionId": id}),
            "MissingParameter",
        ),
        (
            "JoinGameServerSession",
            json!({"GameServerSessionId": id, "PlayerId": "a", "PlayerData": "d".repeat(2049)}),
            "InvalidParameterValue",
        ),
        (
            "EndGameServerSessionAndProcess",
            json!({}),
            "MissingParameter",
        ),
        (
            "EndGameServerSessionAndProcess",
            json!({"IpAddress": "127.0.0.1"}),
            "MissingParameter",
        ),
        (
            "EndGameServerSessionAndProcess",
            json!({"Port": 7777}),
            "MissingParameter",
        ),
        (
            "EndGameServerSessionAndProcess",
            json!({"IpAddress": "127.0.0.1", "Port": 80}),
            "InvalidParameterValue",
        ),
        (
            "EndGameServerSessionAndProcess",
            json!({"IpAddress": "127.0.0.1", "Port": 60001}),
            "InvalidParameterValue",
        ),
        (
            "EndGameServerSessionAndProcess",
            json!({"IpAddress": "not-an-ip", "Port": 7777}),
            "InvalidParameterValue",
        ),
        (
            "EndGameServerSessionAndProcess",
            json!({"GameServerSessionId": "qcs::gse:ap-shanghai:uin/1:gameserversession/f/gssess-nope"}),
            "InvalidParameterValue",
        ),
        (
            "EndGameServerSessionAndProcess",
            json!({"GameServerSessionId": id, "IpAddress": "127.0.0.1", "Port": 1025}),
            "InvalidParameterValue",
        ),
        ("DescribePlayerSessions", json!({}), "MissingParameter"),
        (
            "DescribePlayerSessions",
            json!({"GameServerSessionId": id, "PlayerSessionStatusFilter": "GONE"}),
            "InvalidParameterValue",
        ),
        (
            "DescribePlayerSessions",
            json!({"GameServerSessionId": id, "NextToken": "not-mine"}),
            "InvalidParameterValue",
        ),
        (
            "DescribeGameServerSessions",
            json!({"FleetId": "fleet-00000000-00000000"}),
            "ResourceNotFound",
        ),
        (
            "UpdateGameServerSession",
            json!({"GameServerSessionId": id, "ProtectionPolicy": "Maybe"}),
            "InvalidParameterValue",
        ),
        (
            "CreateGameServerSession",
            json!({"FleetId": fleet_id}),
            "MissingParameter",
        ),
        (
            "CreateGameServerSession",
            json!({"FleetId": fleet_id, "MaximumPlayerSessionCount": -1}),
            "InvalidParameterValue",
        ),
        (
            "CreateFleet",
            json!({"AssetId": "asset-00000000"}),
            "ResourceNotFound",
        ),
        (
            "CreateAsset",
            json!({"BucketKey": "../etc", "AssetName": "x", "AssetVersion": "1", "AssetRegion": "ap-shanghai", "OperateSystem": "CentOS7.16"}),
            "InvalidParameterValue",
        ),
        (
            "CreateAsset",
            json!({"BucketKey": "missing.zip", "AssetName": "x", "AssetVersion": "1", "AssetRegion": "ap-shanghai", "OperateSystem": "CentOS7.16"}),
            "InvalidParameterValue",
        ),
    ];
    for (action, params, code) in cases {
        fails(&mut a, action, params, code).await;
    }

    // Both given but naming different processes: a second process hosts a second session.
    ok(&mut a, "UpdateRuntimeConfiguration", json!({"FleetId": fleet_id, "RuntimeConfiguration": {"ServerProcesses": [{"LaunchPath": "/local/game/example-game-server", "Parameters": "", "ConcurrentExecutions": 2}]}})).await;
    let other = active_session(&mut a, &fleet_id, 2, json!({})).await;
    fails(
        &mut a,
        "EndGameServerSessionAndProcess",
        json!({"GameServerSessionId": id, "IpAddress": "127.0.0.1", "Port": other["Port"]}),
        "InvalidParameter",
    )
    .await;

    // A LaunchPath outside the asset is refused; nothing outside asset roots is launched.
    let asset = ok(
        &mut a,
        "DescribeAssets",
        json!({"AssetRegion": "ap-shanghai", "Offset": 0, "Limit": 10}),
    )
    .await;
    let asset_id = asset["Assets"][0]["AssetId"].clone();
    for path in [
        "/bin/sh",
        "/local/game/../../../bin/sh",
        "/local/game/missing",
    ] {
        fails(
            &mut a,
            "CreateFleet",
            json!({"AssetId": asset_id, "RuntimeConfiguration": {"ServerProcesses": [{"LaunchPath": path, "ConcurrentExecutions": 1}]}}),
            "InvalidParameterValue",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_isolated() {
    let env = Env::new("", "");
    let server = env.start();
    let mut a = server.client(KEY_A).await;
    let mut a2 = server.client(KEY_A2).await;
    let mut b = server.client(KEY_B).await;
    let fleet_id = fleet(&mut a, 1).await;
    let gss = active_session(&mut a, &fleet_id, 4, json!({})).await;
    let id = gss["GameServerSessionId"].as_str().unwrap();

    // Another key of the same account sees everything.
    assert_eq!(describe_session(&mut a2, id).await["Status"], "ACTIVE");
    // Account B sees nothing and can change nothing.
    assert_eq!(ok(&mut b, "ListFleets", json!({})).await["TotalCount"], 0);
    let empty = ok(
        &mut b,
        "DescribeGameServerSessions",
        json!({"GameServerSessionId": id}),
    )
    .await;
    assert_eq!(empty["GameServerSessions"], json!([]));
    fails(
        &mut b,
        "JoinGameServerSession",
        json!({"GameServerSessionId": id, "PlayerId": "p"}),
        "ResourceNotFound",
    )
    .await;
    fails(
        &mut b,
        "DescribeGameServerSessions",
        json!({"FleetId": fleet_id}),
        "ResourceNotFound",
    )
    .await;
    fails(
        &mut b,
        "DeleteFleet",
        json!({"FleetId": fleet_id}),
        "ResourceNotFound",
    )
    .await;
    fails(
        &mut b,
        "EndGameServerSessionAndProcess",
        json!({"GameServerSessionId": id}),
        "InvalidParameterValue",
    )
    .await;
    fails(
        &mut b,
        "EndGameServerSessionAndProcess",
        json!({"IpAddress": "127.0.0.1", "Port": gss["Port"]}),
        "InvalidParameterValue",
    )
    .await;
    fails(
        &mut b,
        "UpdateGameServerSession",
        json!({"GameServerSessionId": id, "Name": "mine"}),
        "ResourceNotFound",
    )
    .await;
    assert_eq!(describe_session(&mut a, id).await["Status"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_time_out_and_free_their_slots() {
    let env = Env::new("player_session_reservation_seconds = 1", "");
    let server = env.start();
    let mut a = server.client(KEY_A).await;
    let fleet_id = fleet(&mut a, 1).await;
    let gss = active_session(&mut a, &fleet_id, 2, json!({})).await;
    let id = gss["GameServerSessionId"].as_str().unwrap();
    let joined = ok(
        &mut a,
        "JoinGameServerSessionBatch",
        json!({"GameServerSessionId": id, "PlayerIds": ["kept", "late"]}),
    )
    .await;
    let kept = joined["PlayerSessions"][0].clone();
    let (_conn, answer) = connect_player(&kept).await.unwrap();
    assert_eq!(answer, "OK");
    let late = wait_player_status(
        &mut a,
        joined["PlayerSessions"][1]["PlayerSessionId"]
            .as_str()
            .unwrap(),
        "TIMEDOUT",
    )
    .await;
    assert!(late["TerminationTime"].is_string());
    assert_eq!(
        describe_session(&mut a, id).await["CurrentPlayerSessionCount"],
        1
    );
    // The accepted one stays ACTIVE; the freed slot takes a new player; a timed-out id is refused by the game.
    assert_eq!(
        wait_player_status(&mut a, kept["PlayerSessionId"].as_str().unwrap(), "ACTIVE").await
            ["Status"],
        "ACTIVE"
    );
    ok(
        &mut a,
        "JoinGameServerSession",
        json!({"GameServerSessionId": id, "PlayerId": "next"}),
    )
    .await;
    let (_c, answer) = connect_player(&late).await.unwrap();
    assert!(answer.starts_with("ERR"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unimplemented_and_unknown_actions() {
    let env = Env::new("", "");
    let server = env.start();
    let mut a = server.client(KEY_A).await;
    let msg = fails(&mut a, "CreateAlias", json!({}), "UnsupportedOperation").await;
    assert!(msg.contains("CreateAlias"), "{msg}");
    fails(&mut a, "NoSuchThing", json!({}), "InvalidAction").await;
}
