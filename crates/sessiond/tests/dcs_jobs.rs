//! DCS jobs and inventory on real Redis: kill-all (one node, every node) spares replication
//! links and sessiond's own connection; jobs survive a restart and an interrupted one ends
//! FAILED; nodes, groups and the instance come from the config and the nodes' live INFO.

mod support;

use std::time::Duration;

use serde_json::json;
use sessiond_load::dcs::open_clients;
use support::redis::*;

const INSTANCE: &str = "5f0b2c1e-8a44-4b7e-9d1c-2b7f6c1a9e01";

fn env(master: &RedisServer, replica: &RedisServer, timeouts: &str) -> DcsEnv {
    let env = DcsEnv::new(timeouts, "[rate_limits]\n\"dcs.ShowJobInfo\" = 1000\n");
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str(&instance_toml(
        INSTANCE,
        "replicated",
        PROJECT_A,
        &[
            NodeDecl::new("master-0", "master", "group-0", master),
            NodeDecl::new("replica-0", "slave", "group-0", replica),
        ],
    ));
    std::fs::write(&env.config, config).unwrap();
    env
}

fn connected_slaves(server: &RedisServer) -> u64 {
    let info = server.admin(&["INFO", "replication"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("connected_slaves:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn wait_replication(master: &RedisServer) {
    for _ in 0..100 {
        if connected_slaves(master) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replica did not connect: {}", master.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_all_spares_replication_and_jobs_survive_a_restart() {
    let Some(master) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let Some(replica) = RedisServer::start(RedisOptions {
        replica_of: Some(master.v4()),
        ..Default::default()
    }) else {
        return;
    };
    wait_replication(&master).await;
    let env = env(
        &master,
        &replica,
        "connect_timeout_ms = 1000\ncommand_timeout_ms = 2000\n",
    );
    let mut server = env.start();
    let mut api = server.dcs(DCS_KEY_A, PROJECT_A).await;

    // Inventory with live roles.
    let groups = expect_ok(
        &api.call("GET", &format!("instance/{INSTANCE}/groups"), &[], None)
            .await
            .unwrap(),
    );
    assert_eq!(groups["group_count"], 1);
    let roles: Vec<(String, String)> = groups["group_list"][0]["replication_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["node_id"].as_str().unwrap().to_string(),
                r["replication_role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            ("master-0".to_string(), "master".to_string()),
            ("replica-0".to_string(), "slave".to_string())
        ]
    );
    let inst = expect_ok(
        &api.call("GET", &format!("instances/{INSTANCE}"), &[], None)
            .await
            .unwrap(),
    );
    assert_eq!(
        (
            inst["status"].as_str(),
            inst["cache_mode"].as_str(),
            inst["engine"].as_str(),
            inst["port"].as_u64()
        ),
        (
            Some("RUNNING"),
            Some("ha"),
            Some("Redis"),
            Some(u64::from(master.port))
        )
    );
    assert!(inst["engine_version"].as_str().unwrap().contains('.'));
    let nodes = expect_ok(
        &api.call(
            "GET",
            &format!("instances/{INSTANCE}/logical-nodes"),
            &[],
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(nodes["total"], 2);
    assert_eq!(nodes["nodes"][1]["node_port"], replica.port.to_string());
    assert_eq!(nodes["nodes"][1]["node_type"], "slave");

    // Kill-all on the master: every application client goes, the replica link stays.
    let mut on_master = open_clients(master.v4(), 20, None, None).await.unwrap();
    on_master.extend(open_clients(master.v6(), 20, None, None).await.unwrap());
    let mut on_replica = open_clients(replica.v4(), 10, None, None).await.unwrap();
    let r = api
        .call(
            "POST",
            &format!("instances/{INSTANCE}/clients/kill-all"),
            &[],
            Some(&json!({"node_id": "master-0", "kill_all_nodes": false})),
        )
        .await
        .unwrap();
    let job_id = expect_ok(&r)["job_id"].as_str().unwrap().to_string();
    let job = wait_job(&mut api, &job_id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(job["job_type"], "HangUpKillAllClients");
    assert!(job["begin_time"].as_str().unwrap().parse::<i64>().unwrap() > 1_600_000_000_000);
    assert!(job["end_time"].as_str().unwrap().parse::<i64>().is_ok());
    for c in on_master.iter_mut() {
        assert!(!c.alive().await, "{} survived kill-all", c.addr);
    }
    for c in on_replica.iter_mut() {
        assert!(c.alive().await, "{} on the other node died", c.addr);
    }
    assert_eq!(
        connected_slaves(&master),
        1,
        "the replication link was kept"
    );

    // Every node.
    let mut again = open_clients(master.v4(), 5, None, None).await.unwrap();
    let r = api
        .call(
            "POST",
            &format!("instances/{INSTANCE}/clients/kill-all"),
            &[],
            Some(&json!({"kill_all_nodes": true})),
        )
        .await
        .unwrap();
    let all_id = expect_ok(&r)["job_id"].as_str().unwrap().to_string();
    assert_eq!(
        wait_job(&mut api, &all_id, Duration::from_secs(10)).await["status"],
        "SUCCESS"
    );
    for c in again.iter_mut().chain(on_replica.iter_mut()) {
        assert!(!c.alive().await);
    }
    assert_eq!(connected_slaves(&master), 1);
    let r = api
        .call(
            "POST",
            &format!("instances/{INSTANCE}/clients/kill-all"),
            &[],
            Some(&json!({"kill_all_nodes": false})),
        )
        .await
        .unwrap();
    expect_error(&r, 400, "DCS.4800");

    // The jobs are there after a restart; another project does not see them.
    server.stop();
    let server = env.start();
    let mut api = server.dcs(DCS_KEY_A2, PROJECT_A).await;
    for id in [&job_id, &all_id] {
        let job = expect_ok(
            &api.call("GET", &format!("jobs/{id}"), &[], None)
                .await
                .unwrap(),
        );
        assert_eq!(job["status"], "SUCCESS");
    }
    let mut other = server.dcs(DCS_KEY_B, PROJECT_B).await;
    expect_error(
        &other
            .call("GET", &format!("jobs/{job_id}"), &[], None)
            .await
            .unwrap(),
        404,
        "DCS.4001",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_by_a_crash_ends_failed() {
    let Some(master) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let Some(replica) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    // Long timeouts: the job waits on the hung node until sessiond is killed.
    let env = env(
        &master,
        &replica,
        "connect_timeout_ms = 60000\ncommand_timeout_ms = 60000\n",
    );
    let mut server = env.start();
    let mut api = server.dcs(DCS_KEY_A, PROJECT_A).await;
    let mut clients = open_clients(replica.v4(), 3, None, None).await.unwrap();
    replica.pause();
    let r = api
        .call(
            "POST",
            &format!("instances/{INSTANCE}/clients/kill-all"),
            &[],
            Some(&json!({"node_id": "replica-0"})),
        )
        .await
        .unwrap();
    let job_id = expect_ok(&r)["job_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = expect_ok(
        &api.call("GET", &format!("jobs/{job_id}"), &[], None)
            .await
            .unwrap(),
    );
    assert_eq!(job["status"], "RUNNING");
    assert_eq!(job["end_time"], "");
    server.kill9();
    replica.resume();

    let server = env.start();
    let mut api = server.dcs(DCS_KEY_A, PROJECT_A).await;
    let job = expect_ok(
        &api.call("GET", &format!("jobs/{job_id}"), &[], None)
            .await
            .unwrap(),
    );
    assert_eq!(job["status"], "FAILED", "{job}");
    assert!(job["fail_reason"]
        .as_str()
        .unwrap()
        .contains("start it again"));
    assert!(!job["end_time"].as_str().unwrap().is_empty());
    // Nothing was killed.
    for c in clients.iter_mut() {
        assert!(c.alive().await);
    }
    // A node that fails during a job: FAILED with the node named.
    drop(replica);
    let r = api
        .call(
            "POST",
            &format!("instances/{INSTANCE}/clients/kill-all"),
            &[],
            Some(&json!({"kill_all_nodes": true})),
        )
        .await
        .unwrap();
    let id = expect_ok(&r)["job_id"].as_str().unwrap().to_string();
    let job = wait_job(&mut api, &id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "FAILED");
    assert!(
        job["fail_reason"].as_str().unwrap().contains("replica-0"),
        "{job}"
    );
}
