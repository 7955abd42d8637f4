//! Durability: everything acknowledged survives kill -9; game servers keep running across a
//! crash and are taken over again; reservation timers resume.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_keeps_every_acknowledged_change() {
    let env = Env::new("player_session_reservation_seconds = 4", POLLING_LIMITS);
    let mut server = env.start();
    let mut a = server.client(KEY_A).await;
    let fleet_id = fleet(&mut a, 2).await;
    let gss = active_session(&mut a, &fleet_id, 50, json!({"Name": "durable"})).await;
    let gss_id = gss["GameServerSessionId"].as_str().unwrap().to_string();
    let joined = ok(
        &mut a,
        "JoinGameServerSessionBatch",
        json!({"GameServerSessionId": gss_id, "PlayerIds": ["active", "reserved"]}),
    )
    .await;
    let active = joined["PlayerSessions"][0].clone();
    let reserved_id = joined["PlayerSessions"][1]["PlayerSessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut player, answer) = connect_player(&active).await.unwrap();
    assert_eq!(answer, "OK");
    wait_player_status(
        &mut a,
        active["PlayerSessionId"].as_str().unwrap(),
        "ACTIVE",
    )
    .await;
    // Many acknowledged writes right before the crash.
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let v = ok(
            &mut a,
            "JoinGameServerSession",
            json!({"GameServerSessionId": gss_id, "PlayerId": format!("burst{i}")}),
        )
        .await;
        acknowledged.push(
            v["PlayerSession"]["PlayerSessionId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let pids_before = env.game_server_pids();
    assert_eq!(pids_before.len(), 2);

    server.kill9();
    drop(a);
    // The game servers outlive the crash.
    assert_eq!(env.game_server_pids(), pids_before);

    let server = env.start();
    let mut a = server.client(KEY_A).await;
    let fleets = ok(&mut a, "ListFleets", json!({})).await;
    assert_eq!(fleets["FleetIds"], json!([fleet_id]));
    let s = describe_session(&mut a, &gss_id).await;
    assert_eq!(
        s["Status"], "ACTIVE",
        "the session goes on: its process was taken over"
    );
    assert_eq!(s["Name"], "durable");
    assert_eq!(s["CurrentPlayerSessionCount"], 22);
    for id in &acknowledged {
        let v = ok(
            &mut a,
            "DescribePlayerSessions",
            json!({"PlayerSessionId": id}),
        )
        .await;
        assert_eq!(v["PlayerSessions"][0]["Status"], "RESERVED", "{id}");
    }
    assert_eq!(
        wait_player_status(
            &mut a,
            active["PlayerSessionId"].as_str().unwrap(),
            "ACTIVE"
        )
        .await["Status"],
        "ACTIVE"
    );
    // No extra processes were launched: the two survivors count toward the fleet.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.game_server_pids(), pids_before);

    // Reservation timers resumed: the RESERVED ones time out 4 s after their creation.
    wait_player_status(&mut a, &reserved_id, "TIMEDOUT").await;
    for id in &acknowledged {
        wait_player_status(&mut a, id, "TIMEDOUT").await;
    }
    assert_eq!(
        describe_session(&mut a, &gss_id).await["CurrentPlayerSessionCount"],
        1
    );

    // The adopted process still serves the agent protocol: the player leaves → COMPLETED.
    use tokio::io::AsyncWriteExt;
    let _ = player.shutdown().await;
    drop(player);
    wait_player_status(
        &mut a,
        active["PlayerSessionId"].as_str().unwrap(),
        "COMPLETED",
    )
    .await;
    // And the node still places and ends sessions on it.
    ok(
        &mut a,
        "EndGameServerSessionAndProcess",
        json!({"GameServerSessionId": gss_id}),
    )
    .await;
    assert_eq!(
        describe_session(&mut a, &gss_id).await["Status"],
        "TERMINATED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_of_processes_that_died_during_downtime_end_on_start() {
    let env = Env::new("", "");
    let mut server = env.start();
    let mut a = server.client(KEY_A).await;
    let fleet_id = fleet(&mut a, 1).await;
    let gss = active_session(&mut a, &fleet_id, 5, json!({})).await;
    let gss_id = gss["GameServerSessionId"].as_str().unwrap().to_string();
    let joined = ok(
        &mut a,
        "JoinGameServerSession",
        json!({"GameServerSessionId": gss_id, "PlayerId": "p"}),
    )
    .await;
    server.kill9();
    for pid in env.game_server_pids() {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    eventually("game servers gone", Duration::from_secs(10), || async {
        env.game_server_pids().is_empty().then_some(())
    })
    .await;

    let server = env.start();
    let mut a = server.client(KEY_A).await;
    let s = describe_session(&mut a, &gss_id).await;
    assert_eq!(s["Status"], "TERMINATED");
    assert!(
        s["StatusReason"].as_str().unwrap().contains("not running"),
        "{s}"
    );
    let p = wait_player_status(
        &mut a,
        joined["PlayerSession"]["PlayerSessionId"].as_str().unwrap(),
        "COMPLETED",
    )
    .await;
    assert!(p["TerminationTime"].is_string());
    // The fleet is back to strength with a fresh process that takes new sessions.
    let fresh = active_session(&mut a, &fleet_id, 5, json!({})).await;
    assert_ne!(fresh["GameServerSessionId"], gss["GameServerSessionId"]);
}
