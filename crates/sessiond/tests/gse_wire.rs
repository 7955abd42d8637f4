//! The Tencent API 3.0 wire as the official clients need it: always HTTP 200, exact
//! Content-Type, RequestId, signature and common-parameter errors, limits, metrics.

mod support;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{json, Value};
use sessiond_load::client::{connect, round_trip, unix_now};
use sessiond_load::sign::Signer;
use support::*;

struct Raw {
    method: &'static str,
    host: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    path: String,
}

fn signed(server: &Sessiond, key: (&str, &str), action: &str, body: &str, timestamp: i64) -> Raw {
    let host = server.api.to_string();
    let mut signer = Signer::new(key.0, key.1, "gse");
    let auth = signer.authorization(timestamp, "application/json", &host, body.as_bytes());
    Raw {
        method: "POST",
        host,
        headers: vec![
            ("Content-Type", "application/json".into()),
            ("X-TC-Action", action.into()),
            ("X-TC-Version", "2019-11-12".into()),
            ("X-TC-Timestamp", timestamp.to_string()),
            ("X-TC-Region", "ap-shanghai".into()),
            ("Authorization", auth),
        ],
        body: body.as_bytes().to_vec(),
        path: "/".into(),
    }
}

impl Raw {
    fn set(mut self, name: &'static str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name, value.to_string()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    async fn send(self, server: &Sessiond) -> (u16, Option<String>, Value) {
        let mut sender = connect(server.api).await.unwrap();
        let mut builder = Request::builder()
            .method(self.method)
            .uri(self.path)
            .header("Host", self.host);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let req = builder.body(Full::new(Bytes::from(self.body))).unwrap();
        let resp = sender
            .send_request(req)
            .await
            .expect("the server answers before closing");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        use http_body_util::BodyExt;
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, content_type, json)
    }
}

async fn code_of(raw: Raw, server: &Sessiond) -> String {
    let (status, content_type, body) = raw.send(server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert!(body["Response"]["RequestId"].is_string(), "{body}");
    body["Response"]["Error"]["Code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_and_common_parameter_errors() {
    let env = Env::new("", "");
    let server = env.start();
    let now = unix_now();
    let body = r#"{"FleetIds": []}"#;
    let action = "DescribeFleetAttributes";

    assert_eq!(
        code_of(signed(&server, KEY_A, action, body, now), &server).await,
        ""
    );
    // The Host header may be the endpoint string with its scheme (tccli --endpoint http://…).
    let mut with_scheme = signed(&server, KEY_A, action, body, now);
    let host = format!("http://{}", server.api);
    let mut signer = Signer::new(KEY_A.0, KEY_A.1, "gse");
    let auth = signer.authorization(now, "application/json", &host, body.as_bytes());
    with_scheme.host = host;
    assert_eq!(
        code_of(with_scheme.set("Authorization", &auth), &server).await,
        ""
    );

    assert_eq!(
        code_of(
            signed(&server, (KEY_A.0, "wrong"), action, body, now),
            &server
        )
        .await,
        "AuthFailure.SignatureFailure"
    );
    assert_eq!(
        code_of(
            signed(&server, ("AKIDnobody", "x"), action, body, now),
            &server
        )
        .await,
        "AuthFailure.SecretIdNotFound"
    );
    assert_eq!(
        code_of(signed(&server, KEY_A, action, body, now - 301), &server).await,
        "AuthFailure.SignatureExpire"
    );
    assert_eq!(
        code_of(signed(&server, KEY_A, action, body, now + 301), &server).await,
        "AuthFailure.SignatureExpire"
    );
    let mut tampered = signed(&server, KEY_A, action, body, now);
    tampered.body = br#"{"FleetIds": [ ]}"#.to_vec();
    assert_eq!(
        code_of(tampered, &server).await,
        "AuthFailure.SignatureFailure"
    );
    assert_eq!(
        code_of(
            signed(&server, KEY_A, action, body, now).without("Authorization"),
            &server
        )
        .await,
        "AuthFailure.InvalidAuthorization"
    );
    assert_eq!(
        code_of(
            signed(&server, KEY_A, action, body, now)
                .set("Authorization", "TC3-HMAC-SHA256 nonsense"),
            &server
        )
        .await,
        "AuthFailure.InvalidAuthorization"
    );
    assert_eq!(
        code_of(
            signed(&server, KEY_A, action, body, now).set("X-TC-Version", "2000-01-01"),
            &server
        )
        .await,
        "NoSuchVersion"
    );
    assert_eq!(
        code_of(
            signed(&server, KEY_A, action, body, now).without("X-TC-Action"),
            &server
        )
        .await,
        "MissingParameter"
    );
    assert_eq!(
        code_of(
            signed(&server, KEY_A, action, body, now).without("X-TC-Region"),
            &server
        )
        .await,
        "MissingParameter"
    );
    assert_eq!(
        code_of(signed(&server, KEY_A, "CreateAlias", "{}", now), &server).await,
        "UnsupportedOperation"
    );
    assert_eq!(
        code_of(signed(&server, KEY_A, action, "{not json", now), &server).await,
        "InvalidParameter"
    );
    let mut put = signed(&server, KEY_A, action, body, now);
    put.method = "PUT";
    assert_eq!(code_of(put, &server).await, "UnsupportedProtocol");
    let wrong_type = signed(&server, KEY_A, action, body, now).set("Content-Type", "text/xml");
    assert_eq!(code_of(wrong_type, &server).await, "InvalidParameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded() {
    let env = Env::new("", "");
    let server = env.start();
    let big = format!(r#"{{"FleetIds": ["{}"]}}"#, "x".repeat(11 * 1024 * 1024));
    let raw = signed(&server, KEY_A, "DescribeFleetAttributes", &big, unix_now());
    assert_eq!(code_of(raw, &server).await, "RequestSizeLimitExceeded");
    let mut query = signed(&server, KEY_A, "DescribeFleetAttributes", "", unix_now());
    query.method = "GET";
    query.path = format!(
        "/?Action=DescribeFleetAttributes&Pad={}",
        "y".repeat(40 * 1024)
    );
    assert_eq!(code_of(query, &server).await, "RequestSizeLimitExceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_credential_per_action() {
    let env = Env::new("", "[rate_limits]\n\"gse.DescribeInstances\" = 5\n");
    let server = env.start();
    let mut a = server.client(KEY_A).await;
    let mut a2 = server.client(KEY_A2).await;
    // EndGameServerSessionAndProcess: 20/s by default. 20 in a burst pass the limiter (and fail
    // for their own reason), the next ones are throttled.
    let params = json!({"GameServerSessionId": "qcs::gse:ap-shanghai:uin/1:gameserversession/f/gssess-none"});
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(
            call(&mut a, "EndGameServerSessionAndProcess", params.clone())
                .await
                .unwrap_err()
                .0,
        );
    }
    assert!(
        codes[..20].iter().all(|c| c == "InvalidParameterValue"),
        "{codes:?}"
    );
    assert!(
        codes[20..].iter().any(|c| c == "RequestLimitExceeded"),
        "{codes:?}"
    );
    // Another credential has its own bucket; other actions too.
    fails(
        &mut a2,
        "EndGameServerSessionAndProcess",
        params.clone(),
        "InvalidParameterValue",
    )
    .await;
    ok(&mut a, "DescribeFleetAttributes", json!({})).await;
    // A configured override.
    let mut limited = 0;
    for _ in 0..10 {
        if let Err((code, _)) = call(&mut a, "DescribeInstances", json!({})).await {
            assert_eq!(code, "RequestLimitExceeded");
            limited += 1;
        }
    }
    assert!(limited >= 4, "{limited}");
    // Joins allow 1000/s: 200 in a burst are never throttled.
    for i in 0..200 {
        let r = call(
            &mut a2,
            "JoinGameServerSession",
            json!({"GameServerSessionId": "none", "PlayerId": format!("p{i}")}),
        )
        .await;
        assert_eq!(r.unwrap_err().0, "ResourceNotFound");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests() {
    let env = Env::new("", "");
    let server = env.start();
    let mut a = server.client(KEY_A).await;
    ok(&mut a, "ListFleets", json!({})).await;
    let mut sender = connect(server.api).await.unwrap();
    let req = Request::builder()
        .uri("/metrics")
        .header("Host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = round_trip(&mut sender, req).await.unwrap();
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains(
            r#"sessiond_requests_total{dialect="tencent",action="ListFleets",outcome="Success"} 1"#
        ),
        "{text}"
    );
}
