//! DCDB KillSession against real MariaDB servers (private, started per test): exactly the
//! chosen sessions die on exactly the chosen shard, checked from each server's process list and
//! from the clients themselves; absent, protected and sessiond's own sessions; shards that are
//! down, silent, refuse the login or lack privileges; TLS to a shard.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;
use sessiond_backends::mariadb::mysql_async::prelude::Queryable;
use support::mariadb::*;
use support::*;

const INSTANCE: &str = "tdsqlshard-kill0001";

fn instance_toml(shards: &str, extra_dcdb: &str) -> String {
    format!(
        "[dcdb]\nconnect_timeout_ms = 1000\nquery_timeout_ms = 2000\nkill_wait_ms = 3000\n{extra_dcdb}\n\
         [[dcdb.instances]]\ninstance_id = \"{INSTANCE}\"\nname = \"kill-test\"\naccount_id = \"{ACCOUNT_A}\"\n\
         protected_users = [\"{}\"]\n\n{shards}\n{DCDB_LIMITS}",
        REPL.0
    )
}

fn ids_of(threads: &std::collections::BTreeMap<u64, (String, String)>) -> BTreeSet<u64> {
    threads.keys().copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_exactly_the_chosen_sessions_and_nothing_on_the_other_shard() {
    let (a, b) = tokio::join!(
        MariaDb::start(MariaDbOptions::default()),
        MariaDb::start(MariaDbOptions::default())
    );
    let (Some(a), Some(b)) = (a, b) else { return };
    let shards = format!(
        "{}\n{}",
        a.shard_toml("shard-aaaaaaaa", "set_1700000000_1", ADMIN),
        b.shard_toml("shard-bbbbbbbb", "set_1700000000_2", ADMIN)
    );
    let env = Env::new("", &instance_toml(&shards, ""));
    let server = env.start();
    let mut api = dcdb(&server, KEY_A).await;

    let (mut on_a, mut on_b) = tokio::join!(a.clients(APP, 40), b.clients(APP, 15));
    let a_before = ids_of(&a.threads().await);
    let b_before = ids_of(&b.threads().await);
    for (id, _) in &on_a {
        assert!(a_before.contains(id));
    }
    // Every other client of A, 20 in all: ids that (numerically) exist on B too.
    let chosen: Vec<u64> = on_a.iter().step_by(2).map(|(id, _)| *id).collect();
    assert_eq!(chosen.len(), 20);
    assert!(
        chosen.iter().any(|id| b_before.contains(id)),
        "the test wants ids that exist on both servers"
    );

    let started = Instant::now();
    let task = kill(
        &mut api,
        json!({"InstanceId": INSTANCE, "ShardId": "shard-aaaaaaaa", "SessionId": chosen}),
    )
    .await;
    let flow = wait_flow(&mut api, task, Duration::from_secs(20)).await;
    assert_eq!(flow["Status"], 0, "{flow}");
    assert!(
        flow["Message"]
            .as_str()
            .unwrap()
            .contains("20 killed, 0 already absent"),
        "{flow}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // The process lists: exactly the chosen ones are gone from A; B is untouched.
    let a_after = ids_of(&a.threads().await);
    let b_after = ids_of(&b.threads().await);
    let expected_a: BTreeSet<u64> = a_before
        .iter()
        .copied()
        .filter(|id| !chosen.contains(id))
        .collect();
    assert_eq!(a_after, expected_a);
    assert_eq!(b_after, b_before);
    // ... and the clients agree.
    for (id, conn) in on_a.iter_mut() {
        assert_eq!(
            client_dead(conn).await,
            chosen.contains(id),
            "client {id} on A"
        );
    }
    for (id, conn) in on_b.iter_mut() {
        assert!(!client_dead(conn).await, "client {id} on B was touched");
    }

    // The same through the flattened GET form, naming the shard by its serial id.
    let on_b_ids: Vec<u64> = on_b.iter().map(|(id, _)| *id).collect();
    let mut params = vec![
        ("InstanceId", INSTANCE.to_string()),
        ("ShardSerialId", "set_1700000000_2".to_string()),
    ];
    let keys = ["SessionId.0", "SessionId.1", "SessionId.2"];
    for (k, id) in keys.iter().zip(&on_b_ids) {
        params.push((k, id.to_string()));
    }
    let v = api.call_get("KillSession", &params).await.unwrap();
    let task2 = v["TaskId"].as_u64().unwrap();
    assert_eq!(task2, task + 1);
    let flow = wait_flow(&mut api, task2, Duration::from_secs(20)).await;
    assert_eq!(flow["Status"], 0, "{flow}");
    let b_last = ids_of(&b.threads().await);
    for id in &on_b_ids[..3] {
        assert!(!b_last.contains(id), "{id} still on B");
    }
    for id in &on_b_ids[3..] {
        assert!(b_last.contains(id), "{id} gone from B");
    }
    assert_eq!(
        ids_of(&a.threads().await),
        a_after,
        "A untouched by B's kill"
    );
    for (i, (id, conn)) in on_b.iter_mut().enumerate() {
        assert_eq!(client_dead(conn).await, i < 3, "client {id} on B");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_protected_and_own_sessions() {
    let Some(a) = MariaDb::start(MariaDbOptions {
        event_scheduler: true,
        ..MariaDbOptions::default()
    })
    .await
    else {
        return;
    };
    let shards = a.shard_toml("shard-aaaaaaaa", "set_1700000000_1", ADMIN);
    let env = Env::new("", &instance_toml(&shards, ""));
    let server = env.start();
    let mut api = dcdb(&server, KEY_A).await;
    let ks = |ids: Vec<u64>| json!({"InstanceId": INSTANCE, "ShardId": "shard-aaaaaaaa", "SessionId": ids});

    // Unknown id: nothing to kill, every listed session is gone.
    let flow = kill_and_wait(&mut api, ks(vec![987_654])).await;
    assert_eq!(flow["Status"], 0, "{flow}");
    assert!(flow["Message"]
        .as_str()
        .unwrap()
        .contains("0 killed, 1 already absent"));

    // A session that ended by itself before the call.
    let mut apps = a.clients(APP, 3).await;
    let (gone_id, gone) = apps.remove(0);
    gone.disconnect().await.unwrap();
    let flow = kill_and_wait(&mut api, ks(vec![gone_id])).await;
    assert_eq!(flow["Status"], 0, "{flow}");

    // Protected: a protected user's session and the event scheduler; the app session listed
    // beside them is killed, the task fails with the reasons.
    let mut repl = a.clients(REPL, 1).await;
    let threads = a.threads().await;
    let scheduler = threads
        .iter()
        .find(|(_, (user, _))| user == "event_scheduler")
        .map(|(id, _)| *id)
        .expect("the event scheduler thread");
    let app_id = apps[0].0;
    let task = kill(&mut api, ks(vec![repl[0].0, scheduler, app_id])).await;
    let flow = wait_flow(&mut api, task, Duration::from_secs(20)).await;
    assert_eq!(flow["Status"], 1, "{flow}");
    let message = flow["Message"].as_str().unwrap();
    assert!(
        message.contains("its user 'repl' is protected"),
        "{message}"
    );
    assert!(message.contains("it is the event scheduler"), "{message}");
    assert!(
        message.contains("2 of 3 listed session(s) could not be killed (1 killed"),
        "{message}"
    );
    assert!(client_dead(&mut apps[0].1).await);
    assert!(
        !client_dead(&mut repl[0].1).await,
        "the protected session lives"
    );
    assert!(
        !client_dead(&mut apps[1].1).await,
        "an unlisted session lives"
    );
    let after = a.threads().await;
    assert!(after.contains_key(&scheduler));
    assert!(after.contains_key(&repl[0].0));

    // sessiond's own connection: thread ids are handed out in order, so the task's connection
    // is the one right after this probe.
    let mut probe = a.root().await;
    let probe_id: u64 = probe
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    probe.disconnect().await.unwrap();
    let task = kill(&mut api, ks(vec![probe_id + 1])).await;
    let flow = wait_flow(&mut api, task, Duration::from_secs(20)).await;
    assert_eq!(flow["Status"], 1, "{flow}");
    assert!(
        flow["Message"]
            .as_str()
            .unwrap()
            .contains("sessiond's own connection"),
        "{flow}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_shards_fail_their_task_in_bounded_time_and_others_keep_working() {
    let Some(mut a) = MariaDb::start(MariaDbOptions::default()).await else {
        return;
    };
    // Nothing listens here.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    // Accepts TCP, never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let node = |port: u16, user: &str, password: &str| {
        format!("master = {{ host = \"127.0.0.1\", port = {port}, user = \"{user}\", password = \"{password}\" }}\n")
    };
    let shards = format!(
        "{}\n[[dcdb.instances.shards]]\nshard_instance_id = \"shard-cccccccc\"\nshard_serial_id = \"set_1700000000_3\"\n{}\n\
         [[dcdb.instances.shards]]\nshard_instance_id = \"shard-dddddddd\"\nshard_serial_id = \"set_1700000000_4\"\n{}\n\
         [[dcdb.instances.shards]]\nshard_instance_id = \"shard-eeeeeeee\"\nshard_serial_id = \"set_1700000000_5\"\n{}\n\
         [[dcdb.instances.shards]]\nshard_instance_id = \"shard-ffffffff\"\nshard_serial_id = \"set_1700000000_6\"\n{}\n",
        a.shard_toml("shard-aaaaaaaa", "set_1700000000_1", ADMIN),
        node(closed_port, ADMIN.0, ADMIN.1),
        node(silent_port, ADMIN.0, ADMIN.1),
        node(a.port, ADMIN.0, "wrong-secret-pw"),
        node(a.port, WEAK.0, WEAK.1),
    );
    let env = Env::new("", &instance_toml(&shards, ""));
    let server = env.start();
    let mut api = dcdb(&server, KEY_A).await;
    let mut apps = a.clients(APP, 4).await;
    let ks = |shard: &str, ids: Vec<u64>| json!({"InstanceId": INSTANCE, "ShardId": shard, "SessionId": ids});

    // All four failing tasks at once, and a working one beside them.
    let started = Instant::now();
    let down = kill(&mut api, ks("shard-cccccccc", vec![apps[0].0])).await;
    let silent_task = kill(&mut api, ks("shard-dddddddd", vec![apps[0].0])).await;
    let wrong_pw = kill(&mut api, ks("shard-eeeeeeee", vec![apps[0].0])).await;
    let weak = kill(&mut api, ks("shard-ffffffff", vec![apps[0].0])).await;
    let good = kill(&mut api, ks("shard-aaaaaaaa", vec![apps[1].0])).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "KillSession answers at once"
    );

    let flow = wait_flow(&mut api, good, Duration::from_secs(20)).await;
    assert_eq!(flow["Status"], 0, "{flow}");
    let expect_failed = |flow: &serde_json::Value, needle: &str| {
        assert_eq!(flow["Status"], 1, "{flow}");
        let m = flow["Message"].as_str().unwrap();
        assert!(m.contains(needle), "want {needle:?} in {m}");
        assert!(!m.contains(ADMIN.1) && !m.contains("wrong-secret-pw") && !m.contains(WEAK.1));
    };
    let flow = wait_flow(&mut api, down, Duration::from_secs(10)).await;
    expect_failed(
        &flow,
        &format!("cannot connect to 'sessiond'@127.0.0.1:{closed_port}"),
    );
    let flow = wait_flow(&mut api, silent_task, Duration::from_secs(10)).await;
    expect_failed(&flow, "no answer within 1000 ms (connect timeout)");
    let flow = wait_flow(&mut api, wrong_pw, Duration::from_secs(10)).await;
    expect_failed(&flow, "Access denied for user 'sessiond'");
    let flow = wait_flow(&mut api, weak, Duration::from_secs(10)).await;
    expect_failed(&flow, "MySQL error 1095");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !client_dead(&mut apps[0].1).await,
        "no failing shard killed anything"
    );
    assert!(client_dead(&mut apps[1].1).await);

    // The shard's server goes down: the task fails with the reason, sessiond goes on.
    a.stop();
    let task = kill(&mut api, ks("shard-aaaaaaaa", vec![apps[2].0])).await;
    let flow = wait_flow(&mut api, task, Duration::from_secs(10)).await;
    expect_failed(&flow, "cannot connect");
    let v = dcdb_ok(
        &mut api,
        "DescribeDCDBShards",
        json!({"InstanceId": INSTANCE}),
    )
    .await;
    assert_eq!(v["TotalCount"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_over_tls() {
    let Some(a) = MariaDb::start(MariaDbOptions {
        tls: true,
        ..MariaDbOptions::default()
    })
    .await
    else {
        return;
    };
    let ca = a.ca_file.clone().unwrap();
    let node = |tls: &str| {
        format!(
            "master = {{ host = \"127.0.0.1\", port = {}, user = \"{}\", password = \"{}\"{tls} }}\n",
            a.port, TLS_ADMIN.0, TLS_ADMIN.1
        )
    };
    let shards = format!(
        "[[dcdb.instances.shards]]\nshard_instance_id = \"shard-aaaaaaaa\"\nshard_serial_id = \"set_1700000000_1\"\n{}\n\
         [[dcdb.instances.shards]]\nshard_instance_id = \"shard-bbbbbbbb\"\nshard_serial_id = \"set_1700000000_2\"\n{}\n\
         [[dcdb.instances.shards]]\nshard_instance_id = \"shard-cccccccc\"\nshard_serial_id = \"set_1700000000_3\"\n{}\n",
        node(&format!(", tls = {{ ca_file = \"{}\" }}", ca.display())),
        node(""),
        node(", tls = {}"),
    );
    let env = Env::new("", &instance_toml(&shards, ""));
    let server = env.start();
    let mut api = dcdb(&server, KEY_A).await;
    let mut apps = a.clients(APP, 3).await;
    let ks =
        |shard: &str, id: u64| json!({"InstanceId": INSTANCE, "ShardId": shard, "SessionId": [id]});

    let flow = kill_and_wait(&mut api, ks("shard-aaaaaaaa", apps[0].0)).await;
    assert_eq!(flow["Status"], 0, "{flow}");
    assert!(client_dead(&mut apps[0].1).await);
    // The user requires TLS: without it the login is refused.
    let flow = kill_and_wait(&mut api, ks("shard-bbbbbbbb", apps[1].0)).await;
    assert_eq!(flow["Status"], 1, "{flow}");
    assert!(
        flow["Message"].as_str().unwrap().contains("Access denied"),
        "{flow}"
    );
    // TLS with the public roots does not trust the private CA.
    let flow = kill_and_wait(&mut api, ks("shard-cccccccc", apps[1].0)).await;
    assert_eq!(flow["Status"], 1, "{flow}");
    assert!(!client_dead(&mut apps[1].1).await);
}
