//! DCDB on the wire, without database servers (the shards point at closed or silent ports):
//! the inventory listings in their documented shapes with paging, every KillSession and
//! DescribeFlow error of the decisions, account isolation, the 20/s limit per credential, and
//! the task log across a crash.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::mariadb::*;
use support::*;

const ORDERS: &str = "tdsqlshard-orders01";
const LEGACY: &str = "dcdbt-legacy01";
const B_ONLY: &str = "tdsqlshard-bbbbbbbb";

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn inventory(port: u16, extra_dcdb: &str, limits: &str) -> String {
    let node = |user: &str| {
        format!("{{ host = \"127.0.0.1\", port = {port}, user = \"{user}\", password = \"pw-never-shown\" }}")
    };
    format!(
        r#"[dcdb]
connect_timeout_ms = 500
query_timeout_ms = 500
{extra_dcdb}

[[dcdb.instances]]
instance_id = "{ORDERS}"
name = "orders-db"
account_id = "{ACCOUNT_A}"
region = "ap-guangzhou"
zone = "ap-guangzhou-3"
project_id = 7
vip = "10.0.0.10"
vport = 3306
db_version = "10.11"
memory_gb = 8
storage_gb = 100
cpu = 4

[[dcdb.instances.shards]]
shard_instance_id = "shard-ljilb4st"
shard_serial_id = "set_1643096858_1"
memory_gb = 4
storage_gb = 50
master = {master}
[[dcdb.instances.shards.replicas]]
node_id = "4ddc0ea18433"
zone = "ap-guangzhou-4"
host = "127.0.0.1"
port = {port}
user = "sessiond"
password = "pw-never-shown"

[[dcdb.instances.shards]]
shard_instance_id = "shard-secondsh"
shard_serial_id = "set_1643096858_2"
master = {master}

[[dcdb.instances.shards]]
shard_instance_id = "shard-thirdsha"
shard_serial_id = "set_1643096858_3"
master = {master}

[[dcdb.instances]]
instance_id = "{LEGACY}"
name = "archive"
account_id = "{ACCOUNT_A}"
vip = "10.0.0.20"

[[dcdb.instances.shards]]
shard_instance_id = "shard-legacy01"
shard_serial_id = "set_1600000000_1"
master = {master}

[[dcdb.instances]]
instance_id = "{B_ONLY}"
name = "orders-of-b"
account_id = "100000000002"

[[dcdb.instances.shards]]
shard_instance_id = "shard-bbbbbbbb"
shard_serial_id = "set_1643096858_1"
master = {master}

{limits}
"#,
        master = node("sessiond"),
    )
}

fn time_ok(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 19
        && s.chars().enumerate().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == ' ',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_in_its_documented_shapes() {
    let env = Env::new("", &inventory(closed_port(), "", DCDB_LIMITS));
    let server = env.start();
    let mut a = dcdb(&server, KEY_A).await;
    let mut b = dcdb(&server, KEY_B).await;

    let v = dcdb_ok(&mut a, "DescribeDCDBInstances", json!({})).await;
    assert_eq!(v["TotalCount"], 2, "{v}");
    let all = v["Instances"].as_array().unwrap();
    let orders = all.iter().find(|i| i["InstanceId"] == ORDERS).unwrap();
    for (field, want) in [
        ("InstanceName", json!("orders-db")),
        ("Uin", json!(ACCOUNT_A)),
        ("AppId", json!(100000000001i64)),
        ("ProjectId", json!(7)),
        ("Region", json!("ap-guangzhou")),
        ("Zone", json!("ap-guangzhou-3")),
        ("Status", json!(2)),
        ("Vip", json!("10.0.0.10")),
        ("Vport", json!(3306)),
        ("ShardCount", json!(3)),
        ("NodeCount", json!(2)),
        ("Memory", json!(8)),
        ("Storage", json!(100)),
        ("Cpu", json!(4)),
        ("DbEngine", json!("MariaDB")),
        ("DbVersion", json!("10.11")),
        ("InstanceType", json!(2)),
        ("ResourceTags", json!([])),
    ] {
        assert_eq!(orders[field], want, "{field} in {orders}");
    }
    assert!(time_ok(&orders["CreateTime"]), "{}", orders["CreateTime"]);
    let detail = orders["ShardDetail"].as_array().unwrap();
    assert_eq!(detail.len(), 3);
    assert_eq!(detail[0]["ShardInstanceId"], "shard-ljilb4st");
    assert_eq!(detail[0]["ShardSerialId"], "set_1643096858_1");
    assert_eq!(detail[0]["NodeCount"], 2);
    assert_eq!(detail[0]["Memory"], 4);
    assert!(time_ok(&detail[0]["Createtime"]));
    assert!(!v.to_string().contains("pw-never-shown"));

    // Paging, ordering, searching, filters.
    let names = |v: &Value| -> Vec<String> {
        v["Instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["InstanceName"].as_str().unwrap().to_string())
            .collect()
    };
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBInstances",
        json!({"OrderBy": "instancename", "OrderByType": "asc"}),
    )
    .await;
    assert_eq!(names(&v), ["archive", "orders-db"]);
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBInstances",
        json!({"OrderBy": "instancename", "OrderByType": "asc", "Offset": 1, "Limit": 1}),
    )
    .await;
    assert_eq!(
        (v["TotalCount"].clone(), names(&v)),
        (json!(2), vec!["orders-db".to_string()])
    );
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBInstances",
        json!({"SearchName": "instancename", "SearchKey": "ORDERS"}),
    )
    .await;
    assert_eq!(names(&v), ["orders-db"]);
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBInstances",
        json!({"SearchName": "vip", "SearchKey": "nothing\n10.0.0.2"}),
    )
    .await;
    assert_eq!(names(&v), ["archive"]);
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBInstances",
        json!({"InstanceIds": [LEGACY, B_ONLY]}),
    )
    .await;
    assert_eq!(names(&v), ["archive"], "B's instance is not A's to see");
    for filter in [
        json!({"Status": [0]}),
        json!({"ExcludeStatus": [2]}),
        json!({"TagKeys": ["team"]}),
        json!({"FilterInstanceType": "3"}),
        json!({"IsFilterVpc": true, "VpcId": "vpc-1"}),
        json!({"ProjectIds": [8]}),
    ] {
        let v = dcdb_ok(&mut a, "DescribeDCDBInstances", filter.clone()).await;
        assert_eq!(v["TotalCount"], 0, "{filter}");
    }
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBInstances",
        json!({"Status": [2], "FilterInstanceType": "1,2", "ProjectIds": [7]}),
    )
    .await;
    assert_eq!(names(&v), ["orders-db"]);
    for bad in [
        json!({"Limit": 0}),
        json!({"Limit": 101}),
        json!({"Offset": -1}),
        json!({"OrderBy": "size"}),
        json!({"OrderByType": "up"}),
        json!({"SearchName": "id"}),
    ] {
        dcdb_fails(
            &mut a,
            "DescribeDCDBInstances",
            bad,
            "InvalidParameter.GenericParameterError",
        )
        .await;
    }
    // Flattened GET form of a list filter.
    let v = a
        .call_get(
            "DescribeDCDBInstances",
            &[("InstanceIds.0", ORDERS.to_string())],
        )
        .await
        .unwrap();
    assert_eq!(names(&v), ["orders-db"]);
    let v = dcdb_ok(&mut b, "DescribeDCDBInstances", json!({})).await;
    assert_eq!(names(&v), ["orders-of-b"]);

    // Shards.
    let v = dcdb_ok(&mut a, "DescribeDCDBShards", json!({"InstanceId": ORDERS})).await;
    assert_eq!(v["TotalCount"], 3);
    assert_eq!(v["DcnFlag"], 0);
    let shards = v["Shards"].as_array().unwrap();
    let ranges: Vec<&str> = shards
        .iter()
        .map(|s| s["Range"].as_str().unwrap())
        .collect();
    assert_eq!(ranges, ["0-20", "21-41", "42-63"]);
    let first = &shards[0];
    assert_eq!(first["InstanceId"], ORDERS);
    assert_eq!(first["ShardInstanceId"], "shard-ljilb4st");
    assert_eq!(first["ShardSerialId"], "set_1643096858_1");
    assert_eq!(first["Status"], 2);
    assert_eq!(first["NodeCount"], 2);
    assert_eq!(first["ShardMasterZone"], "ap-guangzhou-3");
    assert_eq!(first["ShardSlaveZones"], json!(["ap-guangzhou-4"]));
    assert!(time_ok(&first["CreateTime"]));
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBShards",
        json!({"InstanceId": ORDERS, "Offset": 2, "Limit": 2}),
    )
    .await;
    assert_eq!(v["TotalCount"], 3);
    assert_eq!(v["Shards"][0]["ShardInstanceId"], "shard-thirdsha");
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBShards",
        json!({"InstanceId": ORDERS, "ShardInstanceIds": ["shard-secondsh"]}),
    )
    .await;
    assert_eq!(v["TotalCount"], 1);
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBShards",
        json!({"InstanceId": ORDERS, "OrderBy": "createtime", "OrderByType": "desc"}),
    )
    .await;
    assert_eq!(v["Shards"][0]["ShardInstanceId"], "shard-thirdsha");
    for id in [B_ONLY, "tdsqlshard-nosuch00", "nonsense"] {
        dcdb_fails(
            &mut a,
            "DescribeDCDBShards",
            json!({"InstanceId": id}),
            "InvalidParameter.InstanceNotFound",
        )
        .await;
    }
    dcdb_fails(
        &mut a,
        "DescribeDCDBShards",
        json!({"InstanceId": ORDERS, "Limit": 500}),
        "InvalidParameter.GenericParameterError",
    )
    .await;

    // Nodes.
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBInstanceNodeInfo",
        json!({"InstanceId": ORDERS}),
    )
    .await;
    assert_eq!(v["TotalCount"], 4);
    let nodes = v["NodesInfo"].as_array().unwrap();
    assert_eq!(nodes[0]["Role"], "master");
    assert_eq!(nodes[0]["ShardId"], "shard-ljilb4st");
    assert_eq!(
        nodes[1],
        json!({"NodeId": "4ddc0ea18433", "Role": "slave", "ShardId": "shard-ljilb4st", "Zone": "ap-guangzhou-4"})
    );
    assert_eq!(nodes[3]["ShardId"], "shard-thirdsha");
    let v = dcdb_ok(
        &mut a,
        "DescribeDCDBInstanceNodeInfo",
        json!({"InstanceId": ORDERS, "Offset": 3, "Limit": 100}),
    )
    .await;
    assert_eq!(v["NodesInfo"].as_array().unwrap().len(), 1);
    dcdb_fails(
        &mut a,
        "DescribeDCDBInstanceNodeInfo",
        json!({"InstanceId": ORDERS, "Limit": 0}),
        "InvalidParameterValue",
    )
    .await;
    dcdb_fails(
        &mut b,
        "DescribeDCDBInstanceNodeInfo",
        json!({"InstanceId": ORDERS}),
        "InvalidParameter.InstanceNotFound",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_session_and_describe_flow_errors() {
    let env = Env::new("", &inventory(closed_port(), "", DCDB_LIMITS));
    let server = env.start();
    let mut a = dcdb(&server, KEY_A).await;
    let mut b = dcdb(&server, KEY_B).await;
    let ks = |extra: Value| {
        let mut p = json!({"InstanceId": ORDERS, "ShardId": "shard-ljilb4st", "SessionId": [11]});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                p.as_object_mut().unwrap().remove(k);
            } else {
                p[k] = v.clone();
            }
        }
        p
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"InstanceId": "tdsqlshard-nosuch00"}),
            "InvalidParameter.InstanceNotFound",
        ),
        (
            json!({"InstanceId": B_ONLY}),
            "InvalidParameter.InstanceNotFound",
        ),
        (
            json!({"InstanceId": "not an id"}),
            "InvalidParameter.InstanceNotFound",
        ),
        (json!({"ShardId": null}), "MissingParameter"),
        (json!({"ShardId": ""}), "MissingParameter"),
        (
            json!({"ShardId": "shard-legacy01"}),
            "InvalidParameterValue.ShardNotExist",
        ),
        (
            json!({"ShardId": "shard-nosuch00"}),
            "InvalidParameterValue.ShardNotExist",
        ),
        (
            json!({"ShardId": "set_1643096858_1"}),
            "InvalidParameterValue.ShardNotExist",
        ),
        (
            json!({"ShardId": null, "ShardSerialId": "set_1"}),
            "InvalidParameterValue.ShardNotExist",
        ),
        (
            json!({"ShardId": null, "ShardSerialId": "set_1643096858_9"}),
            "InvalidParameterValue.ShardNotExist",
        ),
        (
            json!({"ShardSerialId": "set_1643096858_2"}),
            "InvalidParameter",
        ),
        (json!({"SessionId": []}), "InvalidParameter"),
        (json!({"SessionId": [-1]}), "InvalidParameter"),
        (json!({"SessionId": ["abc"]}), "InvalidParameter"),
        (json!({"SessionId": [1.5]}), "InvalidParameter"),
        (json!({"SessionId": [1, u64::MAX]}), "InvalidParameter"),
        (
            json!({"SessionId": (1..=1001).collect::<Vec<u64>>()}),
            "InvalidParameter",
        ),
        (
            json!({"SessionId": (1..=10_002).collect::<Vec<u64>>()}),
            "InvalidParameter",
        ),
        (json!({"SessionId": null}), "MissingParameter"),
        (json!({"InstanceId": null}), "MissingParameter"),
        (json!({"NodeId": "nosuchnode"}), "InvalidParameterValue"),
        (json!({"Bogus": 1}), "UnknownParameter"),
    ];
    for (extra, code) in cases {
        let message = dcdb_fails(&mut a, "KillSession", ks(extra.clone()), code).await;
        assert!(!message.contains("pw-never-shown"));
        if extra
            .get("ShardSerialId")
            .is_some_and(|s| s == "set_1643096858_2")
        {
            assert!(
                message.contains("shard-ljilb4st") && message.contains("set_1643096858_2"),
                "{message}"
            );
        }
    }
    // Another account's instance answers exactly like a missing one.
    let theirs = dcdb_fails(
        &mut a,
        "KillSession",
        ks(json!({"InstanceId": B_ONLY})),
        "InvalidParameter.InstanceNotFound",
    )
    .await;
    assert!(
        theirs.contains(&format!("instance {B_ONLY} does not exist")),
        "{theirs}"
    );
    // Exactly 1000 is fine; both ids naming the same shard are fine; a replica by NodeId.
    let ok_cases = [
        json!({"SessionId": (1..=1000).collect::<Vec<u64>>()}),
        json!({"ShardSerialId": "set_1643096858_1"}),
        json!({"NodeId": "4ddc0ea18433"}),
        json!({"SessionId": ["12", 12, 13]}),
    ];
    let mut tasks = Vec::new();
    for extra in ok_cases {
        tasks.push(kill(&mut a, ks(extra)).await);
    }
    assert!(tasks.windows(2).all(|w| w[1] == w[0] + 1), "{tasks:?}");
    // The shard's port is closed: each task fails with the reason.
    for task in &tasks {
        let flow = wait_flow(&mut a, *task, Duration::from_secs(10)).await;
        assert_eq!(flow["Status"], 1, "{flow}");
        assert!(
            flow["Message"].as_str().unwrap().contains("cannot connect"),
            "{flow}"
        );
    }
    // DescribeFlow: unknown, another account's, negative.
    for id in [999_999i64, -1] {
        dcdb_fails(
            &mut a,
            "DescribeFlow",
            json!({"FlowId": id}),
            "InvalidParameter.FlowNotFound",
        )
        .await;
    }
    dcdb_fails(
        &mut b,
        "DescribeFlow",
        json!({"FlowId": tasks[0]}),
        "InvalidParameter.FlowNotFound",
    )
    .await;
    dcdb_fails(&mut a, "DescribeFlow", json!({}), "MissingParameter").await;
    // Actions: implemented elsewhere in DCDB, unknown, and without a Region (not required).
    dcdb_fails(
        &mut a,
        "DescribeDCDBPrice",
        json!({}),
        "UnsupportedOperation",
    )
    .await;
    dcdb_fails(
        &mut a,
        "CreateGameServerSession",
        json!({}),
        "InvalidAction",
    )
    .await;
    a.region = None;
    let v = dcdb_ok(&mut a, "DescribeFlow", json!({"FlowId": tasks[0]})).await;
    assert_eq!(v["Status"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_session_is_limited_to_20_per_second_per_credential() {
    // No override for KillSession: the documented 20/s applies.
    let env = Env::new("", &inventory(closed_port(), "", ""));
    let server = env.start();
    let mut a = dcdb(&server, KEY_A).await;
    let params = json!({"InstanceId": ORDERS, "ShardId": "shard-ljilb4st", "SessionId": [1]});
    let started = Instant::now();
    let (mut accepted, mut limited) = (0, 0);
    for _ in 0..30 {
        match dcdb_call(&mut a, "KillSession", params.clone()).await {
            Ok(_) => accepted += 1,
            Err((code, _)) => {
                assert_eq!(code, "RequestLimitExceeded");
                limited += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(limited >= 1, "30 calls in {elapsed:.2} s, none limited");
    assert!(
        f64::from(accepted) <= 20.0 + elapsed * 20.0 + 1.0,
        "{accepted} accepted in {elapsed:.2} s"
    );
    // Per credential: the account's other key is not throttled.
    let mut a2 = dcdb(&server, KEY_A2).await;
    kill(&mut a2, params.clone()).await;
    // And the bucket refills.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    kill(&mut a, params).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_log_survives_a_crash_and_interrupted_tasks_fail() {
    // A server that accepts TCP and never answers: with a long connect timeout the task stays
    // running until sessiond is killed.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let closed = closed_port();
    let mut config = inventory(closed, "", DCDB_LIMITS);
    // The legacy instance's shard points at the silent server, with a long timeout.
    config = config.replacen(
        &format!("[[dcdb.instances.shards]]\nshard_instance_id = \"shard-legacy01\"\nshard_serial_id = \"set_1600000000_1\"\nmaster = {{ host = \"127.0.0.1\", port = {closed},"),
        &format!("[[dcdb.instances.shards]]\nshard_instance_id = \"shard-legacy01\"\nshard_serial_id = \"set_1600000000_1\"\nmaster = {{ host = \"127.0.0.1\", port = {silent_port},"),
        1,
    );
    config = config.replacen("connect_timeout_ms = 500", "connect_timeout_ms = 120000", 1);
    assert!(config.contains(&format!("port = {silent_port}")));
    let env = Env::new("", &config);
    let mut server = env.start();
    let mut a = dcdb(&server, KEY_A).await;
    let failed = kill(
        &mut a,
        json!({"InstanceId": ORDERS, "ShardId": "shard-ljilb4st", "SessionId": [5]}),
    )
    .await;
    let failed_flow = wait_flow(&mut a, failed, Duration::from_secs(10)).await;
    assert_eq!(failed_flow["Status"], 1);
    let hanging = kill(
        &mut a,
        json!({"InstanceId": LEGACY, "ShardId": "shard-legacy01", "SessionId": [6, 7]}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = dcdb_ok(&mut a, "DescribeFlow", json!({"FlowId": hanging})).await;
    assert_eq!(v["Status"], 2, "{v}");

    server.kill9();
    drop(a);
    let server = env.start();
    let mut a = dcdb(&server, KEY_A).await;
    let v = dcdb_ok(&mut a, "DescribeFlow", json!({"FlowId": failed})).await;
    assert_eq!(v["Status"], 1);
    assert_eq!(v["Message"], failed_flow["Message"]);
    let v = dcdb_ok(&mut a, "DescribeFlow", json!({"FlowId": hanging})).await;
    assert_eq!(v["Status"], 1, "{v}");
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("sessiond stopped while this task was running"),
        "{v}"
    );
    let next = kill(
        &mut a,
        json!({"InstanceId": ORDERS, "ShardId": "shard-ljilb4st", "SessionId": [5]}),
    )
    .await;
    assert_eq!(next, hanging + 1, "task ids are never reused");
    let mut b = dcdb(&server, KEY_B).await;
    dcdb_fails(
        &mut b,
        "DescribeFlow",
        json!({"FlowId": hanging}),
        "InvalidParameter.FlowNotFound",
    )
    .await;
}

#[test]
fn a_config_error_names_the_file_the_key_and_the_reason() {
    let env = Env::new(
        "",
        &inventory(1, "", "").replace("shard-secondsh", "shard-BAD"),
    );
    let out = std::process::Command::new(sessiond_bin())
        .arg("serve")
        .arg("--config")
        .arg(&env.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&env.config.display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains("dcdb.instances[0].shards[1].shard_instance_id"),
        "{stderr}"
    );
    assert!(stderr.contains("must be shard-<8>"), "{stderr}");
    assert!(!stderr.contains("pw-never-shown"), "{stderr}");
}
