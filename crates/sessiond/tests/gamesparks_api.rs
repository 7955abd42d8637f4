//! The GameSparks control plane on the real binary over the AWS rest-json wire: games, stages,
//! tags, paging, errors with x-amzn-ErrorType / __type / message / x-amzn-RequestId / Date,
//! SigV4 failures and clock skew, account isolation, 501 for other operations, throttling.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;
use sessiond_load::client::Target;
use sessiond_load::gamesparks::{amz_date, encode, AwsSigner, GsClient, GsResponse};
use support::*;

const REGION: &str = "us-east-1";

async fn api(server: &Sessiond, key: (&str, &str)) -> GsClient {
    let target = Target::from_endpoint(&server.endpoint(), REGION)
        .await
        .unwrap();
    GsClient::new(
        target,
        AwsSigner::new(key.0, key.1, REGION),
        Duration::from_secs(10),
    )
}

fn assert_error(r: &GsResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.error_type.as_deref(), Some(code), "{:?}", r.body);
    assert_eq!(r.body["__type"], code);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert!(r.request_id.as_deref().is_some_and(|id| id.len() == 36));
    assert!(r.date.as_deref().is_some_and(|d| d.ends_with(" GMT")));
}

fn arn(account: &str, resource: &str) -> String {
    format!("arn:aws:gamesparks:{REGION}:{account}:{resource}")
}

#[tokio::test]
async fn games_stages_and_tags_through_the_wire() {
    let env = Env::new("", "");
    let server = env.start();
    let mut gs = api(&server, KEY_A).await;

    let r = gs
        .call(
            "POST",
            "/game",
            &[],
            Some(&json!({"GameName": "Arena", "Description": "first", "Tags": {"team": "red"}})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.request_id.is_some() && r.date.is_some());
    let game = &r.body["Game"];
    assert_eq!(game["Name"], "Arena");
    assert_eq!(game["Arn"], arn(ACCOUNT_A, "game/Arena"));
    assert_eq!(game["State"], "ACTIVE");
    assert_eq!(game["Description"], "first");
    assert_eq!(game["Tags"], json!({"team": "red"}));
    assert_eq!(game["EnableTerminationProtection"], false);
    let created = game["Created"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");

    assert_error(
        &gs.call("POST", "/game", &[], Some(&json!({"GameName": "Arena"})))
            .await
            .unwrap(),
        409,
        "ConflictException",
    );

    // Paging: 5 games, pages of 2.
    for name in ["B", "C", "D", "E"] {
        gs.create_game(name).await.unwrap();
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![("MaxResults", "2".to_string())];
        if let Some(t) = &token {
            q.push(("NextToken", t.clone()));
        }
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let v = gs
            .call("GET", "/game", &q, None)
            .await
            .unwrap()
            .ok()
            .unwrap();
        for g in v["Games"].as_array().unwrap() {
            names.push(g["Name"].as_str().unwrap().to_string());
        }
        token = v["NextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["Arena", "B", "C", "D", "E"]);
    assert_error(
        &gs.call("GET", "/game", &[("NextToken", "forged")], None)
            .await
            .unwrap(),
        400,
        "ValidationException",
    );

    let v = gs
        .call(
            "PATCH",
            "/game/Arena",
            &[],
            Some(&json!({"Description": "second"})),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["Game"]["Description"], "second");

    // Stages.
    let role = "arn:aws:iam::123456789012:role/GameSparks";
    let v = gs
        .call(
            "POST",
            "/game/Arena/stage",
            &[],
            Some(&json!({"StageName": "Dev", "Role": role, "Description": "dev"})),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let stage = &v["Stage"];
    assert_eq!(stage["Arn"], arn(ACCOUNT_A, "game/Arena/stage/Dev"));
    assert_eq!(stage["Role"], role);
    let key = stage["GameKey"].as_str().unwrap();
    assert!(!key.is_empty() && key.len() <= 44);
    gs.create_stage("Arena", "Prod").await.unwrap();
    let v = gs
        .call("GET", "/game/Arena/stage", &[("MaxResults", "1")], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["Stages"][0]["Name"], "Dev");
    assert_eq!(v["Stages"][0]["GameKey"], key);
    let next = v["NextToken"].as_str().unwrap().to_string();
    let v = gs
        .call(
            "GET",
            "/game/Arena/stage",
            &[("MaxResults", "1"), ("NextToken", &next)],
            None,
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["Stages"][0]["Name"], "Prod");
    assert!(v.get("NextToken").is_none());
    let v = gs
        .call(
            "PATCH",
            "/game/Arena/stage/Dev",
            &[],
            Some(&json!({"Role": "arn:aws:iam::123456789012:role/Other"})),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["Stage"]["Role"], "arn:aws:iam::123456789012:role/Other");
    assert_eq!(v["Stage"]["GameKey"], key, "the GameKey does not change");
    assert_error(
        &gs.call("GET", "/game/Arena/stage/Nope", &[], None)
            .await
            .unwrap(),
        404,
        "ResourceNotFoundException",
    );
    assert_error(
        &gs.call("GET", "/game/Nope/stage", &[], None).await.unwrap(),
        404,
        "ResourceNotFoundException",
    );

    // Tags by ARN (the ARN label is percent-encoded, and signed encoded twice).
    let stage_arn = arn(ACCOUNT_A, "game/Arena/stage/Dev");
    let path = format!("/tags/{}", encode(&stage_arn));
    let r = gs
        .call(
            "POST",
            &path,
            &[],
            Some(&json!({"tags": {"a": "1", "b": "2"}})),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.body.clone()), (200, json!({})));
    let r = gs
        .call(
            "DELETE",
            &path,
            &[("tagKeys", "a"), ("tagKeys", "zz")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let v = gs
        .call("GET", &path, &[], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v, json!({"tags": {"b": "2"}}));
    let game_path = format!("/tags/{}", encode(&arn(ACCOUNT_A, "game/Arena")));
    let v = gs
        .call("GET", &game_path, &[], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v, json!({"tags": {"team": "red"}}));
    // Bad ARNs.
    assert_error(
        &gs.call(
            "GET",
            &format!("/tags/{}", encode(&arn(ACCOUNT_A, "game/Nope"))),
            &[],
            None,
        )
        .await
        .unwrap(),
        404,
        "ResourceNotFoundException",
    );
    assert_error(
        &gs.call(
            "GET",
            &format!("/tags/{}", encode("arn:aws:gamesparks:us-east-1:1:fleet/x")),
            &[],
            None,
        )
        .await
        .unwrap(),
        400,
        "ValidationException",
    );
    let r = gs
        .call(
            "POST",
            &path,
            &[],
            Some(&json!({"tags": {"aws:reserved": "x"}})),
        )
        .await
        .unwrap();
    assert_error(&r, 400, "ValidationException");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("Map keys must satisfy constraint"));

    // Deletion order: stages first; deleting a missing game succeeds (idempotent).
    assert_error(
        &gs.call("DELETE", "/game/Arena", &[], None).await.unwrap(),
        409,
        "ConflictException",
    );
    for s in ["Dev", "Prod"] {
        let r = gs
            .call("DELETE", &format!("/game/Arena/stage/{s}"), &[], None)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    for _ in 0..2 {
        let r = gs.call("DELETE", "/game/Arena", &[], None).await.unwrap();
        assert_eq!((r.status, r.body.clone()), (200, json!({})));
    }
    assert_error(
        &gs.call("GET", "/game/Arena", &[], None).await.unwrap(),
        404,
        "ResourceNotFoundException",
    );
}

#[tokio::test]
async fn accounts_are_isolated_and_state_is_durable() {
    let env = Env::new("", "");
    let mut server = env.start();
    let mut a = api(&server, KEY_A).await;
    a.create_game("Mine").await.unwrap();
    a.create_stage("Mine", "Dev").await.unwrap();
    // A second key of the same account sees it; account B does not, even by ARN.
    let mut a2 = api(&server, KEY_A2).await;
    a2.call("GET", "/game/Mine", &[], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let mut b = api(&server, KEY_B).await;
    assert_error(
        &b.call("GET", "/game/Mine", &[], None).await.unwrap(),
        404,
        "ResourceNotFoundException",
    );
    let path = format!("/tags/{}", encode(&arn(ACCOUNT_A, "game/Mine")));
    assert_error(
        &b.call("GET", &path, &[], None).await.unwrap(),
        404,
        "ResourceNotFoundException",
    );
    let v = b
        .call("GET", "/game", &[], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["Games"], json!([]));
    b.create_game("Mine").await.unwrap();

    server.kill9();
    let server = env.start();
    let mut a = api(&server, KEY_A).await;
    let v = a
        .call("GET", "/game/Mine/stage/Dev", &[], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["Stage"]["Name"], "Dev");
    let v = a
        .call("GET", "/game", &[], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["Games"].as_array().unwrap().len(), 1);
}

/// Sends a request signed with `signer` at `unix` (for tampering and skew).
async fn raw(
    server: &Sessiond,
    signer: &AwsSigner,
    method: &str,
    path: &str,
    unix: i64,
    authorization: Option<String>,
) -> GsResponse {
    let host = server.api.to_string();
    let date = amz_date(unix);
    let auth = authorization.unwrap_or_else(|| {
        signer.authorization(
            method,
            path,
            "",
            &[("host", &host), ("x-amz-date", &date)],
            b"",
            &date,
        )
    });
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &host)
        .header("x-amz-date", &date)
        .header("authorization", auth)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut client = api(server, KEY_A).await;
    client.send(req).await.unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn signature_failures_skew_and_unserved_operations() {
    let env = Env::new("", "");
    let server = env.start();
    let good = AwsSigner::new(KEY_A.0, KEY_A.1, REGION);
    let path = "/game";

    let r = raw(&server, &good, "GET", path, now(), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Inside the window on both sides, then outside.
    for skew in [-14 * 60, 14 * 60] {
        assert_eq!(
            raw(&server, &good, "GET", path, now() + skew, None)
                .await
                .status,
            200
        );
    }
    let r = raw(&server, &good, "GET", path, now() - 16 * 60, None).await;
    assert_error(&r, 403, "InvalidSignatureException");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .starts_with("Signature expired"));
    let r = raw(&server, &good, "GET", path, now() + 16 * 60, None).await;
    assert_error(&r, 403, "InvalidSignatureException");

    let wrong = AwsSigner::new(KEY_A.0, "not-the-secret", REGION);
    assert_error(
        &raw(&server, &wrong, "GET", path, now(), None).await,
        403,
        "InvalidSignatureException",
    );
    let unknown = AwsSigner::new("AKIDnobody", "x", REGION);
    assert_error(
        &raw(&server, &unknown, "GET", path, now(), None).await,
        403,
        "UnrecognizedClientException",
    );
    let other_region = AwsSigner::new(KEY_A.0, KEY_A.1, "eu-west-1");
    assert_error(
        &raw(&server, &other_region, "GET", path, now(), None).await,
        403,
        "InvalidSignatureException",
    );
    assert_error(
        &raw(
            &server,
            &good,
            "GET",
            path,
            now(),
            Some("AWS4-HMAC-SHA256 Credential=x".into()),
        )
        .await,
        403,
        "IncompleteSignatureException",
    );
    // Signed for one path, sent to another.
    let host = server.api.to_string();
    let date = amz_date(now());
    let auth = good.authorization(
        "GET",
        "/game/A",
        "",
        &[("host", &host), ("x-amz-date", &date)],
        b"",
        &date,
    );
    assert_error(
        &raw(&server, &good, "GET", "/game/B", now(), Some(auth)).await,
        403,
        "InvalidSignatureException",
    );
    // No Authorization at all.
    let req = hyper::Request::get("/game")
        .header("host", &host)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut client = api(&server, KEY_A).await;
    assert_error(
        &client.send(req).await.unwrap(),
        403,
        "MissingAuthenticationTokenException",
    );

    // Known operations sessiond does not serve: 501 naming the operation.
    let mut gs = api(&server, KEY_A).await;
    for (method, path, op) in [
        ("GET", "/game/Arena/configuration", "GetGameConfiguration"),
        (
            "POST",
            "/game/Arena/stage/Dev/deployment",
            "StartStageDeployment",
        ),
        ("GET", "/extension", "ListExtensions"),
    ] {
        let r = gs.call(method, path, &[], None).await.unwrap();
        assert_error(&r, 501, "NotImplementedException");
        assert!(
            r.body["message"].as_str().unwrap().contains(op),
            "{:?}",
            r.body
        );
    }
    // Paths of no operation.
    let r = gs
        .call("GET", "/game/a/b/c/d/e/f/g", &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = gs.call("PUT", "/game", &[], None).await.unwrap();
    assert_eq!(r.status, 405);
    // Malformed and ill-typed bodies.
    let r = gs
        .call("POST", "/game", &[], Some(&json!({"GameName": 5})))
        .await
        .unwrap();
    assert_error(&r, 400, "SerializationException");
    let r = gs
        .call("POST", "/game", &[], Some(&json!({})))
        .await
        .unwrap();
    assert_error(&r, 400, "ValidationException");
    assert_eq!(
        r.body["message"],
        "1 validation error detected: Value null at 'gameName' failed to satisfy constraint: Member must not be null"
    );
    let r = gs
        .call("POST", "/game", &[], Some(&json!({"GameName": "a b"})))
        .await
        .unwrap();
    assert_eq!(
        r.body["message"],
        "1 validation error detected: Value 'a b' at 'gameName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$"
    );
    let long: String = "s".repeat(37);
    let r = gs
        .call(
            "POST",
            "/game/A/stage",
            &[],
            Some(&json!({"StageName": long, "Role": "arn:aws:iam::123456789012:role/x"})),
        )
        .await
        .unwrap();
    assert_error(&r, 400, "ValidationException");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("at 'stageName' failed to satisfy constraint: Member must have length less than or equal to 36"));
}

#[tokio::test]
async fn throttling_per_credential() {
    let env = Env::new(
        "",
        "[gamesparks]\ncontrol_plane_rate_limit = 3\nruntime_rate_limit = 2\n",
    );
    let server = env.start();
    let mut a = api(&server, KEY_A).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let r = a.call("GET", "/game", &[], None).await.unwrap();
        statuses.push(r.status);
        if r.status != 200 {
            assert_error(&r, 429, "ThrottlingException");
            break;
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Another key of the same account has its own budget; so does another operation.
    let mut a2 = api(&server, KEY_A2).await;
    assert_eq!(
        a2.call("GET", "/game", &[], None).await.unwrap().status,
        200
    );
    let mut seen: Vec<u16> = Vec::new();
    for _ in 0..30 {
        let r = a2.connection_status("g", "s", "p").await.unwrap();
        seen.push(r.status);
        if r.status == 429 {
            break;
        }
    }
    assert_eq!(&seen[..2], &[404, 404]);
    assert_eq!(seen.last(), Some(&429), "{seen:?}");
}
