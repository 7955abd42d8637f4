//! DCS against real Redis servers: HangUpClients kills exactly the named connections on the
//! named node (IPv4 and IPv6 peers), ListClients / ScanClients report every documented field,
//! password and ACL protected nodes.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use sessiond_load::dcs::{open_clients, RedisClient};
use support::redis::*;

const INSTANCE: &str = "3ee4d2e8-7d1a-4fb8-a9f0-1e1f2ad2c5e1";

fn two_node_env(a: &RedisServer, b: &RedisServer) -> DcsEnv {
    DcsEnv::new(
        "connect_timeout_ms = 1000\ncommand_timeout_ms = 2000\n",
        &format!(
            "[rate_limits]\n\"dcs.ListClients\" = 1000\n\"dcs.ShowJobInfo\" = 1000\n\"dcs.HangUpClients\" = 1000\n{}",
            ""
        ),
    )
    .with_instances(&instance_toml(
        INSTANCE,
        "cache",
        PROJECT_A,
        &[
            NodeDecl::new("node-a", "master", "group-0", a),
            NodeDecl::new("node-b", "slave", "group-0", b),
        ],
    ))
}

trait WithInstances {
    fn with_instances(self, text: &str) -> Self;
}

impl WithInstances for DcsEnv {
    fn with_instances(self, text: &str) -> Self {
        let mut config = std::fs::read_to_string(&self.config).unwrap();
        config.push_str(text);
        std::fs::write(&self.config, config).unwrap();
        self
    }
}

async fn alive_flags(clients: &mut [RedisClient]) -> Vec<bool> {
    let mut out = Vec::new();
    for c in clients.iter_mut() {
        out.push(c.alive().await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_up_clients_kills_exactly_the_named_connections_on_that_node() {
    let Some(a) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let Some(b) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let env = two_node_env(&a, &b);
    let server = env.start();
    let mut api = server.dcs(DCS_KEY_A, PROJECT_A).await;

    let mut on_a = open_clients(a.v4(), 40, None, None).await.unwrap();
    on_a.extend(open_clients(a.v6(), 40, None, None).await.unwrap());
    let mut on_b = open_clients(b.v4(), 20, None, None).await.unwrap();
    on_b.extend(open_clients(b.v6(), 20, None, None).await.unwrap());
    assert!(on_a.iter().any(|c| c.addr.starts_with("[::1]:")));

    // Every third client of A, IPv4 and IPv6, plus an address connected to B only.
    let victims: Vec<usize> = (0..on_a.len()).filter(|i| i % 3 == 0).collect();
    let mut addrs: Vec<String> = victims.iter().map(|i| on_a[*i].addr.clone()).collect();
    // Written differently than Redis prints it: normalised before matching.
    let v6 = victims
        .iter()
        .find(|i| on_a[**i].addr.starts_with('['))
        .unwrap();
    let port = on_a[*v6].addr.rsplit(':').next().unwrap();
    addrs.push(format!("[0:0:0:0:0:0:0:1]:{port}"));
    addrs.push(on_b[0].addr.clone());

    let resp = api
        .call(
            "POST",
            &format!("instances/{INSTANCE}/clients/kill"),
            &[],
            Some(&json!({"node_id": "node-a", "client_addrs": addrs})),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 204, "{}", String::from_utf8_lossy(&resp.body));
    assert!(resp.body.is_empty());
    assert!(resp.request_id.is_some());

    // The server's view: exactly the victims are gone from A.
    let listed: HashSet<String> = a.addrs().into_iter().collect();
    for (i, c) in on_a.iter().enumerate() {
        assert_eq!(
            listed.contains(&c.addr),
            !victims.contains(&i),
            "client {i} {}",
            c.addr
        );
    }
    // The clients' view.
    let flags = alive_flags(&mut on_a).await;
    for (i, alive) in flags.iter().enumerate() {
        assert_eq!(*alive, !victims.contains(&i), "client {i}");
    }
    // B is untouched, though one of its addresses was named.
    assert!(alive_flags(&mut on_b).await.iter().all(|a| *a));
    let after_b: HashSet<String> = b.addrs().into_iter().collect();
    assert!(on_b.iter().all(|c| after_b.contains(&c.addr)));

    // The same call again: every address is already gone, still 204.
    let resp = api
        .call(
            "POST",
            &format!("instances/{INSTANCE}/clients/kill"),
            &[],
            Some(&json!({"node_id": "node-a", "client_addrs": [on_a[0].addr]})),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 204);

    // Through node B: its clients go, A's stay.
    let resp = api
        .call(
            "POST",
            &format!("instances/{INSTANCE}/clients/kill"),
            &[],
            Some(&json!({"node_id": "node-b", "client_addrs": [on_b[1].addr, on_b[25].addr]})),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 204);
    let flags = alive_flags(&mut on_b).await;
    assert_eq!(
        flags.iter().filter(|a| !**a).count(),
        2,
        "exactly two of B's clients died"
    );
    assert!(!flags[1] && !flags[25]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_scan_clients_report_every_field() {
    let Some(a) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let Some(b) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let env = two_node_env(&a, &b);
    let server = env.start();
    let mut api = server.dcs(DCS_KEY_A, PROJECT_A).await;
    let path = format!("instances/{INSTANCE}/clients");

    let mut v4 = open_clients(a.v4(), 25, None, None).await.unwrap();
    let v6 = open_clients(a.v6(), 25, None, None).await.unwrap();
    // One client with a name on db 3, subscribed to a channel.
    let named = &mut v4[0];
    let reply = support::redis::command(a.v4(), &[&["PING"]]).unwrap();
    assert_eq!(reply, vec!["PONG"]);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    named
        .stream
        .write_all(b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$6\r\nworker\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 5 + 5 + 30];
    let _ = tokio::time::timeout(Duration::from_secs(2), named.stream.read(&mut buf)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let total = a.client_list().len();
    let mut seen = HashSet::new();
    let mut offset = 0;
    loop {
        let off = offset.to_string();
        let page = expect_ok(
            &api.call(
                "GET",
                &path,
                &[("node_id", "node-a"), ("offset", &off), ("limit", "7")],
                None,
            )
            .await
            .unwrap(),
        );
        let clients = page["clients"].as_array().unwrap();
        assert!(page["time"].as_str().unwrap().ends_with('Z'));
        assert!(page["count"].as_u64().unwrap() as usize >= 50);
        if clients.is_empty() {
            break;
        }
        assert!(clients.len() <= 7);
        for c in clients {
            seen.insert(c["addr"].as_str().unwrap().to_string());
            for (field, kind) in [
                ("id", "s"),
                ("addr", "s"),
                ("fd", "s"),
                ("name", "s"),
                ("cmd", "s"),
                ("age", "n"),
                ("idle", "n"),
                ("db", "s"),
                ("flags", "s"),
                ("sub", "n"),
                ("psub", "n"),
                ("multi", "n"),
                ("qbuf", "n"),
                ("qbuf_free", "n"),
                ("obl", "n"),
                ("oll", "n"),
                ("omem", "n"),
                ("events", "s"),
                ("network", "s"),
                ("peer", "s"),
                ("user", "s"),
            ] {
                let v = &c[field];
                assert!(
                    if kind == "s" {
                        v.is_string()
                    } else {
                        v.is_i64()
                    },
                    "{field} of {c}"
                );
            }
        }
        offset += clients.len();
    }
    // Live reads: every client of ours is listed (sessiond's own listing connections come and go).
    for c in v4.iter().chain(v6.iter()) {
        assert!(seen.contains(&c.addr), "{} not listed", c.addr);
    }
    assert!(seen.len() + 2 >= total);

    // The named, subscribed client, found by address; and an IPv6 one.
    let one = |v: Value| v["clients"][0].clone();
    let w = one(expect_ok(
        &api.call(
            "GET",
            &path,
            &[("node_id", "node-a"), ("addr", &v4[0].addr)],
            None,
        )
        .await
        .unwrap(),
    ));
    assert_eq!(
        (
            w["name"].as_str(),
            w["db"].as_str(),
            w["sub"].as_i64(),
            w["network"].as_str()
        ),
        (Some("worker"), Some("3"), Some(1), Some("ipv4")),
        "{w}"
    );
    assert!(w["flags"].as_str().unwrap().contains('P'));
    assert_eq!(w["cmd"], "subscribe");
    assert_eq!(w["peer"], w["addr"]);
    let s = one(expect_ok(
        &api.call(
            "GET",
            &path,
            &[("node_id", "node-a"), ("addr", &v6[3].addr)],
            None,
        )
        .await
        .unwrap(),
    ));
    assert_eq!(
        (s["addr"].as_str(), s["network"].as_str()),
        (Some(v6[3].addr.as_str()), Some("ipv6"))
    );
    // A bare IP matches every port of it.
    let only_v6 = expect_ok(
        &api.call(
            "GET",
            &path,
            &[("node_id", "node-a"), ("addr", "::1"), ("limit", "100")],
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(only_v6["count"], 25);

    // Sorted by idle, descending.
    let sorted = expect_ok(
        &api.call(
            "GET",
            &path,
            &[
                ("node_id", "node-a"),
                ("sort", "id"),
                ("order", "desc"),
                ("limit", "100"),
            ],
            None,
        )
        .await
        .unwrap(),
    );
    let ids: Vec<u64> = sorted["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    // ScanClients: a snapshot, a job; later clients are not listed until the next scan.
    let job = expect_ok(
        &api.call("POST", &path, &[], Some(&json!({"node_id": "node-a"})))
            .await
            .unwrap(),
    );
    let job_id = job["job_id"].as_str().unwrap().to_string();
    let info = wait_job(&mut api, &job_id, Duration::from_secs(5)).await;
    assert_eq!(
        (info["status"].as_str(), info["job_type"].as_str()),
        (Some("SUCCESS"), Some("ScanClients"))
    );
    let snap_count = expect_ok(
        &api.call("GET", &path, &[("node_id", "node-a")], None)
            .await
            .unwrap(),
    )["count"]
        .as_u64()
        .unwrap();
    let late = RedisClient::connect(a.v4(), None, None).await.unwrap();
    let page = expect_ok(
        &api.call(
            "GET",
            &path,
            &[("node_id", "node-a"), ("addr", &late.addr)],
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(page["count"], 0, "the snapshot predates this client");
    expect_ok(
        &api.call(
            "POST",
            &path,
            &[],
            Some(&json!({"node_id": "node-a", "clean_cache": true})),
        )
        .await
        .unwrap(),
    );
    let page = expect_ok(
        &api.call(
            "GET",
            &path,
            &[("node_id", "node-a"), ("addr", &late.addr)],
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(page["count"], 1);
    // Killing through the API removes the client from the snapshot too.
    let resp = api
        .call(
            "POST",
            &format!("{path}/kill"),
            &[],
            Some(&json!({"node_id": "node-a", "client_addrs": [late.addr]})),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 204);
    let after = expect_ok(
        &api.call("GET", &path, &[("node_id", "node-a")], None)
            .await
            .unwrap(),
    );
    assert_eq!(after["count"].as_u64().unwrap(), snap_count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_acl_protected_nodes() {
    let Some(pw) = RedisServer::start(RedisOptions {
        password: Some("s3cret-pass".into()),
        ..Default::default()
    }) else {
        return;
    };
    let Some(acl) = RedisServer::start(RedisOptions {
        acl_user: Some((
            "ops".into(),
            "ops-pass".into(),
            "+ping +auth +client +info".into(),
        )),
        ..Default::default()
    }) else {
        return;
    };
    let Some(weak) = RedisServer::start(RedisOptions {
        acl_user: Some((
            "weak".into(),
            "weak-pass".into(),
            "+ping +auth +info".into(),
        )),
        ..Default::default()
    }) else {
        return;
    };
    let wrong = NodeDecl {
        extra: "password = \"not-it\"\n".into(),
        ..NodeDecl::new("wrong-pass", "slave", "g1", &pw)
    };
    let missing = NodeDecl {
        extra: String::new(),
        ..NodeDecl::new("no-pass", "slave", "g2", &pw)
    };
    let env = DcsEnv::new("connect_timeout_ms = 1000\ncommand_timeout_ms = 2000\n", "");
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str(&instance_toml(
        INSTANCE,
        "protected",
        PROJECT_A,
        &[
            NodeDecl::new("pw", "master", "g0", &pw),
            NodeDecl::new("acl", "master", "g1", &acl),
            NodeDecl::new("weak", "master", "g2", &weak),
            wrong,
            missing,
        ],
    ));
    std::fs::write(&env.config, config).unwrap();
    let server = env.start();
    let mut api = server.dcs(DCS_KEY_A, PROJECT_A).await;
    let kill = format!("instances/{INSTANCE}/clients/kill");

    for (node, srv, user, password) in [
        ("pw", &pw, None, Some("s3cret-pass")),
        ("acl", &acl, Some("ops"), Some("ops-pass")),
    ] {
        let mut clients = open_clients(srv.v4(), 6, user, password).await.unwrap();
        let resp = api
            .call(
                "POST",
                &kill,
                &[],
                Some(&json!({"node_id": node, "client_addrs": [clients[0].addr, clients[5].addr]})),
            )
            .await
            .unwrap();
        assert_eq!(
            resp.status,
            204,
            "{node}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        assert_eq!(
            alive_flags(&mut clients).await,
            vec![false, true, true, true, true, false],
            "{node}"
        );
        let listed = expect_ok(
            &api.call(
                "GET",
                &format!("instances/{INSTANCE}/clients"),
                &[("node_id", node), ("limit", "100")],
                None,
            )
            .await
            .unwrap(),
        );
        assert!(listed["count"].as_u64().unwrap() >= 4, "{node}: {listed}");
        if node == "acl" {
            assert!(listed["clients"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["user"] == "ops"));
        }
    }

    let list = |node: &'static str| {
        (
            "GET".to_string(),
            format!("instances/{INSTANCE}/clients"),
            node,
        )
    };
    for (node, hint) in [
        ("wrong-pass", "refused sessiond"),
        ("no-pass", "requires a password"),
        ("weak", "+client"),
    ] {
        let (method, path, node) = list(node);
        let resp = api
            .call(&method, &path, &[("node_id", node)], None)
            .await
            .unwrap();
        let msg = expect_error(&resp, 500, "DCS.5000");
        assert!(msg.contains(hint), "{node}: {msg}");
        for secret in ["s3cret-pass", "not-it", "ops-pass", "weak-pass"] {
            assert!(!msg.contains(secret), "{msg}");
        }
    }
    // The log never shows a password either.
    let mut sd = server;
    sd.stop();
}
