//! The Huawei DCS wire: each error case its own status and code with X-Request-Id, signature
//! and clock-skew failures, project isolation, routing, throttling, a node that is down or
//! hangs mid-call (answered within the configured timeouts), and the metrics.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use sessiond_load::dcs::{open_clients, Tweaks};
use support::redis::*;

const INSTANCE: &str = "3ee4d2e8-7d1a-4fb8-a9f0-1e1f2ad2c5e1";
const INSTANCE_B: &str = "9b1d1b8e-5d0f-4c61-9a39-5d1f0d0c7e22";
const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

fn env(a: &RedisServer, b: &RedisServer) -> DcsEnv {
    let env = DcsEnv::new(
        "connect_timeout_ms = 500\ncommand_timeout_ms = 500\n",
        "[rate_limits]\n\"dcs.ShowInstance\" = 3\n\"dcs.ListClients\" = 1000\n\"dcs.HangUpClients\" = 1000\n",
    );
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str(&instance_toml(
        INSTANCE,
        "cache-a",
        PROJECT_A,
        &[
            NodeDecl::new("node-a", "master", "group-0", a),
            NodeDecl::new("node-b", "slave", "group-0", b),
        ],
    ));
    config.push_str(&instance_toml(
        INSTANCE_B,
        "cache-b",
        PROJECT_B,
        &[NodeDecl::new("node-x", "master", "group-0", a)],
    ));
    std::fs::write(&env.config, config).unwrap();
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_its_own_code_and_a_request_id() {
    let Some(a) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let Some(b) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let env = env(&a, &b);
    let server = env.start();
    let mut api = server.dcs(DCS_KEY_A, PROJECT_A).await;
    let kill = format!("instances/{INSTANCE}/clients/kill");
    let clients = open_clients(a.v4(), 3, None, None).await.unwrap();
    let good = json!({"node_id": "node-a", "client_addrs": [clients[0].addr]});
    let path = format!("/v2/{PROJECT_A}/{kill}");

    // Signatures: wrong secret, unknown key, expired date (both ways), just inside the window.
    let r = api
        .raw(
            "POST",
            &path,
            &[],
            Some(&good),
            &Tweaks {
                sign_with: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let msg = expect_error(&r, 401, "APIGW.0301");
    assert!(msg.contains("signature"), "{msg}");
    assert!(r.json()["request_id"].is_string());
    for skew in [901, -901, 3600] {
        let r = api
            .raw(
                "POST",
                &path,
                &[],
                Some(&good),
                &Tweaks {
                    skew_secs: skew,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let msg = expect_error(&r, 401, "APIGW.0301");
        assert!(msg.contains("expired"), "{skew}: {msg}");
    }
    let r = api
        .raw(
            "GET",
            &format!("/v2/{PROJECT_A}/instances/{INSTANCE}"),
            &[],
            None,
            &Tweaks {
                skew_secs: -800,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    expect_ok(&r);
    // The signed body is not the one sent.
    let r = api
        .raw(
            "POST",
            &path,
            &[],
            Some(&good),
            &Tweaks {
                send_body: Some(br#"{"node_id":"node-a","client_addrs":["1.2.3.4:5"]}"#.to_vec()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    expect_error(&r, 401, "APIGW.0301");
    let mut stranger = server.dcs(("HWAKnobody", "x"), PROJECT_A).await;
    let msg = expect_error(
        &stranger
            .call("GET", &format!("instances/{INSTANCE}"), &[], None)
            .await
            .unwrap(),
        401,
        "APIGW.0301",
    );
    assert!(msg.contains("HWAKnobody"), "{msg}");

    // Projects: the path's project must be the key's, X-Project-Id the path's.
    let mut b_key_on_a = server.dcs(DCS_KEY_B, PROJECT_A).await;
    expect_error(
        &b_key_on_a
            .call("GET", &format!("instances/{INSTANCE}"), &[], None)
            .await
            .unwrap(),
        401,
        "DCS.1004",
    );
    let r = api
        .raw(
            "GET",
            &format!("/v2/{PROJECT_A}/instances/{INSTANCE}"),
            &[],
            None,
            &Tweaks {
                x_project_id: Some(Some(PROJECT_B.into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    expect_error(&r, 401, "DCS.1004");
    let r = api
        .raw(
            "GET",
            &format!("/v2/%7Bproject_id%7D/instances/{INSTANCE}"),
            &[],
            None,
            &Tweaks {
                x_project_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let msg = expect_error(&r, 401, "DCS.1004");
    assert!(msg.contains("{project_id}"), "{msg}");
    // Without X-Project-Id the path decides.
    let r = api
        .raw(
            "GET",
            &format!("/v2/{PROJECT_A}/instances/{INSTANCE}"),
            &[],
            None,
            &Tweaks {
                x_project_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    expect_ok(&r);

    // Instances: unknown, malformed and another project's all answer DCS.3022.
    let mut b_api = server.dcs(DCS_KEY_B, PROJECT_B).await;
    for id in [UNKNOWN, "nope", INSTANCE_B] {
        let r = api
            .call(
                "POST",
                &format!("instances/{id}/clients/kill"),
                &[],
                Some(&good),
            )
            .await
            .unwrap();
        expect_error(&r, 404, "DCS.3022");
    }
    expect_error(
        &b_api
            .call(
                "GET",
                &format!("instances/{INSTANCE}/logical-nodes"),
                &[],
                None,
            )
            .await
            .unwrap(),
        404,
        "DCS.3022",
    );
    expect_ok(
        &b_api
            .call("GET", &format!("instances/{INSTANCE_B}"), &[], None)
            .await
            .unwrap(),
    );

    // Nodes and addresses.
    let msg = expect_error(
        &api.call(
            "POST",
            &kill,
            &[],
            Some(&json!({"node_id": "node-x", "client_addrs": ["1.2.3.4:5"]})),
        )
        .await
        .unwrap(),
        400,
        "DCS.3053",
    );
    assert!(msg.contains("node-x"), "{msg}");
    let msg = expect_error(
        &api.call(
            "POST",
            &kill,
            &[],
            Some(&json!({"node_id": "node-a", "client_addrs": [clients[1].addr, "10.0.0.1"]})),
        )
        .await
        .unwrap(),
        400,
        "DCS.4800",
    );
    assert!(msg.contains("client_addrs[1]"), "{msg}");
    expect_error(
        &api.call(
            "POST",
            &kill,
            &[],
            Some(&json!({"node_id": "node-a", "client_addrs": []})),
        )
        .await
        .unwrap(),
        400,
        "DCS.4800",
    );
    let many: Vec<String> = (0..1001)
        .map(|i| format!("10.0.0.1:{}", 1000 + i))
        .collect();
    expect_error(
        &api.call(
            "POST",
            &kill,
            &[],
            Some(&json!({"node_id": "node-a", "client_addrs": many})),
        )
        .await
        .unwrap(),
        400,
        "DCS.4800",
    );
    expect_error(
        &api.call(
            "POST",
            &kill,
            &[],
            Some(&json!({"client_addrs": ["1.2.3.4:5"]})),
        )
        .await
        .unwrap(),
        400,
        "DCS.4800",
    );
    // Nothing was killed by the refused calls.
    assert_eq!(
        a.addrs()
            .iter()
            .filter(|x| clients.iter().any(|c| &c.addr == *x))
            .count(),
        3
    );
    let r = api
        .raw(
            "POST",
            &path,
            &[],
            Some(&good),
            &Tweaks {
                send_body: Some(b"{\"node_id\": ".to_vec()),
                sign_with: None,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // (send_body changes the bytes after signing: a signature failure first.)
    expect_error(&r, 401, "APIGW.0301");

    // Routing: unknown URL, wrong method — answered before authentication.
    let mut anon = server.dcs(("HWAKnobody", "x"), PROJECT_A).await;
    expect_error(
        &anon
            .call("GET", "instances/x/nothing", &[], None)
            .await
            .unwrap(),
        404,
        "DCS.4001",
    );
    expect_error(
        &anon
            .call("DELETE", &format!("instances/{INSTANCE}"), &[], None)
            .await
            .unwrap(),
        405,
        "DCS.5001",
    );
    expect_error(
        &api.call("GET", &format!("jobs/{UNKNOWN}"), &[], None)
            .await
            .unwrap(),
        404,
        "DCS.4001",
    );

    // ListClients parameters.
    let list = format!("instances/{INSTANCE}/clients");
    for query in [
        vec![("offset", "0")],
        vec![("node_id", "node-a"), ("limit", "0")],
        vec![("node_id", "node-a"), ("limit", "1001")],
        vec![("node_id", "node-a"), ("offset", "-1")],
        vec![("node_id", "node-a"), ("sort", "color")],
        vec![("node_id", "node-a"), ("order", "up")],
    ] {
        expect_error(
            &api.call("GET", &list, &query, None).await.unwrap(),
            400,
            "DCS.4800",
        );
    }
    expect_error(
        &api.call("GET", &list, &[("node_id", "nope")], None)
            .await
            .unwrap(),
        400,
        "DCS.3053",
    );

    // Throttling: ShowInstance is limited to 3/s here.
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = api
            .call("GET", &format!("instances/{INSTANCE}"), &[], None)
            .await
            .unwrap();
        codes.push(r.error_code().unwrap_or_default());
    }
    assert!(codes.contains(&"APIGW.0308".to_string()), "{codes:?}");

    // Metrics count the dialect's requests by outcome.
    let mut http = sessiond_load::client::connect(server.api).await.unwrap();
    let req = hyper::Request::get("/metrics")
        .header("host", server.api.to_string())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let (status, body) = sessiond_load::client::round_trip(&mut http, req)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains(r#"dialect="huawei",action="HangUpClients",outcome="DCS.4800""#),
        "{text}"
    );
    assert!(
        text.contains(r#"dialect="huawei",action="ShowInstance",outcome="Success""#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_hangs_or_goes_down_is_answered_within_the_timeouts() {
    let Some(a) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let Some(mut b) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let env = env(&a, &b);
    let server = env.start();
    let mut api = server.dcs(DCS_KEY_A, PROJECT_A).await;
    let clients = open_clients(b.v4(), 2, None, None).await.unwrap();
    let kill = format!("instances/{INSTANCE}/clients/kill");
    let body = json!({"node_id": "node-b", "client_addrs": [clients[0].addr]});

    // Hung mid-call: the process is stopped; the kernel still accepts connections.
    b.pause();
    let started = Instant::now();
    let r = api.call("POST", &kill, &[], Some(&body)).await.unwrap();
    let msg = expect_error(&r, 500, "DCS.5000");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        msg.contains("node-b") && msg.contains(&b.v4().to_string()),
        "{msg}"
    );
    // The instance shows the node as inactive, the other as active.
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
    let status: Vec<(&str, &str)> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node_id"].as_str().unwrap(),
                n["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(status, vec![("node-a", "Active"), ("node-b", "Inactive")]);
    let inst = expect_ok(
        &api.call("GET", &format!("instances/{INSTANCE}"), &[], None)
            .await
            .unwrap(),
    );
    assert_eq!(inst["status"], "ERROR");
    b.resume();

    // Down: connection refused, answered at once.
    b.kill();
    let started = Instant::now();
    let r = api
        .call(
            "GET",
            &format!("instances/{INSTANCE}/clients"),
            &[("node_id", "node-b")],
            None,
        )
        .await
        .unwrap();
    let msg = expect_error(&r, 500, "DCS.5000");
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Node A still works.
    let r = api
        .call(
            "GET",
            &format!("instances/{INSTANCE}/clients"),
            &[("node_id", "node-a")],
            None,
        )
        .await
        .unwrap();
    expect_ok(&r);
    let r = api
        .call(
            "POST",
            &format!("instances/{INSTANCE}/clients"),
            &[],
            Some(&json!({"node_id": "node-b"})),
        )
        .await
        .unwrap();
    expect_error(&r, 500, "DCS.5000");
}
