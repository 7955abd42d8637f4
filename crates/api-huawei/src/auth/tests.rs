use std::path::PathBuf;

use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::*;

struct Record {
    id: String,
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
    access_key: String,
    secret_key: String,
    now: i64,
}

impl Record {
    fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn verify_at(&self, now: i64) -> Result<Verified, AuthError> {
        let (ak, sk) = (self.access_key.clone(), self.secret_key.clone());
        verify(&self.request(), now, |id| {
            (id == ak).then(|| sk.as_bytes().to_vec())
        })
    }

    fn verify(&self) -> Result<Verified, AuthError> {
        self.verify_at(self.now)
    }
}

fn vectors() -> Vec<Record> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/vectors/huawei-dcs-captured.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared reference must sit beside the repository)",
            path.display()
        )
    });
    let records: Vec<Record> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let target = v["path"].as_str().unwrap();
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let mut headers = HeaderMap::new();
            for (name, value) in v["headers"].as_object().unwrap() {
                headers.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
                );
            }
            assert_eq!(v["expected"], "valid");
            Record {
                id: v["id"].as_str().unwrap().into(),
                method: v["method"].as_str().unwrap().into(),
                path: path.into(),
                query: query.into(),
                headers,
                body: v["body"].as_str().unwrap().as_bytes().to_vec(),
                access_key: v["access_key"].as_str().unwrap().into(),
                secret_key: v["secret_key"].as_str().unwrap().into(),
                now: timefmt::parse_compact(v["server_time"].as_str().unwrap()).unwrap(),
            }
        })
        .collect();
    assert_eq!(records.len(), 3);
    records
}

#[test]
fn every_vector_verifies_at_its_server_time() {
    for r in vectors() {
        let v = r.verify().unwrap_or_else(|e| panic!("{}: {e}", r.id));
        assert_eq!(v.access_key, "AKTEST");
        assert_eq!(v.timestamp, r.now);
    }
}

#[test]
fn the_window_is_15_minutes_each_way_inclusive() {
    for r in vectors() {
        for skew in [-900, -1, 0, 1, 900] {
            r.verify_at(r.now + skew)
                .unwrap_or_else(|e| panic!("{} at {skew}: {e}", r.id));
        }
        for skew in [-901, 901, 86_400, -86_400 * 365] {
            match r.verify_at(r.now + skew) {
                Err(AuthError::Expired { skew: s, .. }) => assert_eq!(s, skew.abs()),
                other => panic!("{} at {skew}: {other:?}", r.id),
            }
        }
    }
}

#[test]
fn flipping_any_byte_of_body_path_or_query_fails() {
    let mut flips = 0;
    for r in vectors() {
        if !r.body.is_empty() {
            for i in 0..r.body.len() {
                let mut t = Record {
                    body: r.body.clone(),
                    headers: r.headers.clone(),
                    ..copy(&r)
                };
                t.body[i] ^= 0x01;
                assert_eq!(t.verify(), Err(AuthError::Mismatch), "{} body[{i}]", r.id);
                flips += 1;
            }
            // One more byte, or one fewer.
            let mut t = copy(&r);
            t.body.push(b' ');
            assert_eq!(t.verify(), Err(AuthError::Mismatch));
        } else {
            let mut t = copy(&r);
            t.body = b"{}".to_vec();
            assert_eq!(
                t.verify(),
                Err(AuthError::Mismatch),
                "{}: a body on a GET",
                r.id
            );
        }
        for i in 1..r.path.len() {
            let mut bytes = r.path.clone().into_bytes();
            bytes[i] ^= 0x01;
            let Ok(path) = String::from_utf8(bytes) else {
                continue;
            };
            let t = Record { path, ..copy(&r) };
            assert_eq!(t.verify(), Err(AuthError::Mismatch), "{} path[{i}]", r.id);
            flips += 1;
        }
        for i in 0..r.query.len() {
            let mut bytes = r.query.clone().into_bytes();
            bytes[i] ^= 0x01;
            let t = Record {
                query: String::from_utf8(bytes).unwrap(),
                ..copy(&r)
            };
            assert_eq!(t.verify(), Err(AuthError::Mismatch), "{} query[{i}]", r.id);
            flips += 1;
        }
        // Signed headers and the method are covered too.
        for name in ["user-agent", "content-type", "host", "x-project-id"] {
            let mut t = copy(&r);
            t.headers
                .insert(HeaderName::from_static(name), HeaderValue::from_static("x"));
            assert_eq!(t.verify(), Err(AuthError::Mismatch), "{} {name}", r.id);
        }
        let mut t = copy(&r);
        t.method = if r.method == "GET" { "POST" } else { "GET" }.into();
        assert_eq!(t.verify(), Err(AuthError::Mismatch));
    }
    assert!(flips > 300, "{flips}");
}

#[test]
fn query_order_and_equivalent_encodings_do_not_matter() {
    let r = vectors().into_iter().find(|r| r.id == "dcs-02").unwrap();
    let t = Record {
        query: "sort=idle&order=desc&offset=0&node_id=n1&limit=10".into(),
        ..copy(&r)
    };
    t.verify().unwrap();
    let t = Record {
        query: "limit=10&node_id=%6E1&offset=0&order=desc&sort=idle".into(),
        ..copy(&r)
    };
    t.verify().unwrap();
}

#[test]
fn wrong_secret_and_unknown_key_fail() {
    for r in vectors() {
        let t = Record {
            secret_key: "SKTESU".into(),
            ..copy(&r)
        };
        assert_eq!(t.verify(), Err(AuthError::Mismatch));
        let err = verify(&r.request(), r.now, |_| None).unwrap_err();
        assert_eq!(err, AuthError::UnknownKey("AKTEST".into()));
    }
}

#[test]
fn header_problems() {
    let r = vectors().remove(0);
    let mut t = copy(&r);
    t.headers.remove("authorization");
    assert_eq!(t.verify(), Err(AuthError::Missing));

    for (value, want) in [
        ("SDK-HMAC-SM3 Access=AKTEST, SignedHeaders=host;x-sdk-date, Signature=00", "Algorithm"),
        ("SDK-HMAC-SHA256", "Malformed"),
        ("SDK-HMAC-SHA256 Access=AKTEST, SignedHeaders=host;x-sdk-date", "Malformed"),
        ("SDK-HMAC-SHA256 Access=AKTEST, SignedHeaders=host;x-sdk-date, Signature=xyz", "Malformed"),
        ("SDK-HMAC-SHA256 Access=AKTEST, Access=AKTEST, SignedHeaders=host;x-sdk-date, Signature=916e83c266d791d812fa4c2be26aa62af60e6a34779b998a0cbdcd2248cb2e3c", "Malformed"),
        ("SDK-HMAC-SHA256 Access=AKTEST, SignedHeaders=Host;x-sdk-date, Signature=916e83c266d791d812fa4c2be26aa62af60e6a34779b998a0cbdcd2248cb2e3c", "Malformed"),
        ("SDK-HMAC-SHA256 Access=AKTEST, SignedHeaders=content-type;user-agent, Signature=916e83c266d791d812fa4c2be26aa62af60e6a34779b998a0cbdcd2248cb2e3c", "UnsignedRequiredHeader"),
        ("SDK-HMAC-SHA256 Access=AKTEST, SignedHeaders=host;x-nope;x-sdk-date, Signature=916e83c266d791d812fa4c2be26aa62af60e6a34779b998a0cbdcd2248cb2e3c", "MissingSignedHeader"),
    ] {
        let mut t = copy(&r);
        t.headers
            .insert("authorization", HeaderValue::from_str(value).unwrap());
        let err = t.verify().unwrap_err();
        assert!(format!("{err:?}").starts_with(want), "{value}: {err:?}");
    }

    let mut t = copy(&r);
    t.headers
        .append("x-sdk-date", HeaderValue::from_static("20261127T231203Z"));
    assert_eq!(
        t.verify(),
        Err(AuthError::DuplicateHeader("x-sdk-date".into()))
    );
    for bad in [
        "",
        "2026-11-27T23:12:03Z",
        "20261127T231203",
        "20261327T231203Z",
        "20261127T246003Z",
    ] {
        let mut t = copy(&r);
        t.headers
            .insert("x-sdk-date", HeaderValue::from_str(bad).unwrap());
        assert_eq!(t.verify(), Err(AuthError::BadDate), "{bad:?}");
    }
    let mut t = copy(&r);
    t.headers
        .insert("x-security-token", HeaderValue::from_static("tok"));
    assert_eq!(t.verify(), Err(AuthError::SecurityToken));
}

#[test]
fn unsigned_payload_header_is_used_literally() {
    // A client that sends X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD signs that literal value.
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:1"));
    headers.insert("x-sdk-date", HeaderValue::from_static("20261127T231203Z"));
    headers.insert(
        "x-sdk-content-sha256",
        HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    let signed = ["host", "x-sdk-content-sha256", "x-sdk-date"];
    let sts = {
        let req = SignedRequest {
            method: "POST",
            raw_path: "/v2/p/x",
            raw_query: "",
            headers: &headers,
            body: b"anything",
        };
        string_to_sign(&req, &signed, "20261127T231203Z").unwrap()
    };
    let sig = sign(b"k", &sts);
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "SDK-HMAC-SHA256 Access=a, SignedHeaders={}, Signature={sig}",
            signed.join(";")
        ))
        .unwrap(),
    );
    let now = timefmt::parse_compact("20261127T231203Z").unwrap();
    for body in [&b"anything"[..], b"something else"] {
        let req = SignedRequest {
            method: "POST",
            raw_path: "/v2/p/x",
            raw_query: "",
            headers: &headers,
            body,
        };
        verify(&req, now, |_| Some(b"k".to_vec())).unwrap();
    }
}

#[test]
fn canonical_forms() {
    assert_eq!(
        canonical_uri("/v2/p/instances/i/clients/kill"),
        "/v2/p/instances/i/clients/kill/"
    );
    assert_eq!(canonical_uri("/v2/"), "/v2/");
    assert_eq!(
        canonical_uri("/v2/%7Bproject_id%7D/a%20b/%7e"),
        "/v2/%7Bproject_id%7D/a%20b/~/"
    );
    assert_eq!(canonical_query("b=2&a=x%20y&a=1&c"), "a=1&a=x%20y&b=2&c=");
    assert_eq!(canonical_query(""), "");
    assert_eq!(
        canonical_query("addr=%5B%3A%3A1%5D%3A5"),
        "addr=%5B%3A%3A1%5D%3A5"
    );
    assert_eq!(percent_decode(b"%zz%4"), b"%zz%4".to_vec());
}

#[test]
fn dates() {
    assert_eq!(timefmt::parse_compact("19700101T000000Z"), Some(0));
    assert_eq!(
        timefmt::parse_compact("20261127T231203Z"),
        Some(1_795_821_123)
    );
    assert_eq!(timefmt::format_compact(1_795_821_123), "20261127T231203Z");
    assert_eq!(timefmt::parse_compact("2026112xT231203Z"), None);
    assert_eq!(timefmt::parse_compact("20260230T000000Z"), None);
}

#[test]
fn messages_never_carry_the_secret_or_the_signature() {
    for r in vectors() {
        let t = Record {
            secret_key: "SK-other".into(),
            ..copy(&r)
        };
        let sts = {
            let auth = r.headers["authorization"].to_str().unwrap();
            let signed = auth
                .split("SignedHeaders=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_string();
            let signed: Vec<&str> = signed.split(';').collect();
            let date = r.headers["x-sdk-date"].to_str().unwrap();
            string_to_sign(&t.request(), &signed, date).unwrap()
        };
        let expected = sign(b"SK-other", &sts);
        for err in [
            t.verify().unwrap_err(),
            r.verify_at(r.now + 10_000).unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(!text.contains("SK-other") && !text.contains("SKTEST"));
            assert!(!text.contains(&expected), "{text}");
        }
    }
}

fn copy(r: &Record) -> Record {
    Record {
        id: r.id.clone(),
        method: r.method.clone(),
        path: r.path.clone(),
        query: r.query.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
        access_key: r.access_key.clone(),
        secret_key: r.secret_key.clone(),
        now: r.now,
    }
}
