//! SigV4 against the reference vectors (botocore SigV4Auth and captures of boto3 and the Rust
//! SDK), plus tampering, wrong secrets, clock skew and malformed headers.

use std::path::PathBuf;

use serde_json::Value;

use super::*;

const SERVICE: &str = "gamesparks";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/vectors")
}

struct Vector {
    id: String,
    method: String,
    path: String,
    query: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
    access_key: String,
    secret_key: String,
    region: String,
    now: i64,
}

fn load(file: &str) -> Vec<Vector> {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the reference vectors are required)",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["expected"], "valid");
            assert_eq!(v["service"], SERVICE);
            let target = v["path"].as_str().unwrap();
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let mut headers = http::HeaderMap::new();
            for (k, val) in v["headers"].as_object().unwrap() {
                headers.append(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(val.as_str().unwrap()).unwrap(),
                );
            }
            Vector {
                id: v["id"].as_str().unwrap().to_string(),
                method: v["method"].as_str().unwrap().to_string(),
                path: path.to_string(),
                query: query.to_string(),
                headers,
                body: v["body"].as_str().unwrap().as_bytes().to_vec(),
                access_key: v["access_key"].as_str().unwrap().to_string(),
                secret_key: v["secret_key"].as_str().unwrap().to_string(),
                region: v["region"].as_str().unwrap().to_string(),
                now: timefmt::parse_compact(v["server_time"].as_str().unwrap()).unwrap(),
            }
        })
        .collect()
}

fn all_vectors() -> Vec<Vector> {
    let mut all = load("aws-sigv4.jsonl");
    assert_eq!(all.len(), 4);
    let captured = load("aws-gamesparks-captured.jsonl");
    assert_eq!(captured.len(), 13);
    all.extend(captured);
    all
}

impl Vector {
    fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn verify_with(
        &self,
        req: &SignedRequest<'_>,
        now: i64,
        secret: &str,
    ) -> Result<Verified, AuthError> {
        let key = self.access_key.clone();
        let secret = secret.as_bytes().to_vec();
        verify(req, now, &self.region, SERVICE, move |id| {
            (id == key).then(|| secret.clone())
        })
    }

    fn verify(&self) -> Result<Verified, AuthError> {
        self.verify_with(&self.request(), self.now, &self.secret_key)
    }
}

#[test]
fn every_reference_vector_verifies() {
    for v in all_vectors() {
        let verified = v.verify().unwrap_or_else(|e| panic!("{}: {e:?}", v.id));
        assert_eq!(verified.access_key_id, v.access_key, "{}", v.id);
        assert_eq!(verified.region, "us-east-1");
    }
}

#[test]
fn golden_signatures() {
    let vectors = load("aws-sigv4.jsonl");
    let expected = [
        "fafed41a3012f396ba3f65eaabb21204796643040efaea60d8a4d4a7e87958fb",
        "557c945ebdfaa79eec5832b992c4211ebd64281c65eb3c7bafbaa51cccebee01",
        "820b8fa5febd008875e45eca895fb1be7fd8f2e92df617c4dc66ee0bdf5a4641",
        "c62978ff75d380bb5e9040ca02c64c7743007a6bf7457a84ab90b5976e56a42e",
    ];
    for (v, want) in vectors.iter().zip(expected) {
        let auth = parse_authorization(v.headers["authorization"].to_str().unwrap()).unwrap();
        let got = sign(
            &v.request(),
            v.secret_key.as_bytes(),
            v.headers["x-amz-date"].to_str().unwrap(),
            "us-east-1",
            SERVICE,
            &auth.signed_headers,
        )
        .unwrap();
        assert_eq!(got, want, "{}", v.id);
    }
}

#[test]
fn double_encoding_is_required_for_arn_labels() {
    let v = load("aws-sigv4.jsonl")
        .into_iter()
        .find(|v| v.id == "sigv4-03")
        .unwrap();
    assert!(v.path.contains("%3A"));
    assert_eq!(
        canonical_uri(&v.path),
        "/tags/arn%253Aaws%253Agamesparks%253Aus-east-1%253A123456789012%253Agame%252FMyGame"
    );
    // Verifying against the decoded-once path (the naive way) must fail.
    let decoded: String = percent_encoding::percent_decode_str(&v.path)
        .decode_utf8()
        .unwrap()
        .into_owned();
    let mut naive = v.request();
    naive.raw_path = &decoded;
    assert!(matches!(
        v.verify_with(&naive, v.now, &v.secret_key),
        Err(AuthError::Invalid(_))
    ));
}

/// Flips one byte: of the body when there is one, else of the path or the query.
#[test]
fn tampered_copies_are_rejected() {
    let (mut body_flips, mut target_flips) = (0, 0);
    for v in all_vectors() {
        let mut body = v.body.clone();
        let mut path = v.path.clone();
        let mut query = v.query.clone();
        if !body.is_empty() {
            let i = body.len() / 2;
            body[i] ^= 0x01;
            body_flips += 1;
        } else if !query.is_empty() {
            query = query.replacen('a', "b", 1);
            target_flips += 1;
        } else {
            path = path
                .replacen("player-1", "player-2", 1)
                .replacen("MyGame", "MyGamf", 1);
            target_flips += 1;
        }
        let tampered = SignedRequest {
            method: &v.method,
            raw_path: &path,
            raw_query: &query,
            headers: &v.headers,
            body: &body,
        };
        assert!(
            matches!(
                v.verify_with(&tampered, v.now, &v.secret_key),
                Err(AuthError::Invalid(_))
            ),
            "{}: tampered copy accepted",
            v.id
        );
        // One added byte of body is rejected too.
        let mut longer = v.body.clone();
        longer.push(b' ');
        let req = SignedRequest {
            body: &longer,
            ..v.request()
        };
        assert!(
            v.verify_with(&req, v.now, &v.secret_key).is_err(),
            "{}",
            v.id
        );
        // Another method.
        let req = SignedRequest {
            method: if v.method == "GET" { "DELETE" } else { "GET" },
            ..v.request()
        };
        assert!(
            v.verify_with(&req, v.now, &v.secret_key).is_err(),
            "{}",
            v.id
        );
    }
    assert_eq!((body_flips, target_flips), (5, 12));
}

#[test]
fn wrong_secret_and_unknown_key_are_rejected() {
    for v in all_vectors() {
        assert!(
            matches!(
                v.verify_with(&v.request(), v.now, "wrong-secret"),
                Err(AuthError::Invalid(_))
            ),
            "{}",
            v.id
        );
        let err = verify(&v.request(), v.now, &v.region, SERVICE, |_| None).unwrap_err();
        assert_eq!(err.code(), "UnrecognizedClientException");
    }
}

#[test]
fn clock_skew_window_is_fifteen_minutes_both_ways() {
    for v in all_vectors() {
        for skew in [-900, 900, 0, 1, -1] {
            assert!(
                v.verify_with(&v.request(), v.now + skew, &v.secret_key)
                    .is_ok(),
                "{} skew {skew}",
                v.id
            );
        }
        let late = v
            .verify_with(&v.request(), v.now + 901, &v.secret_key)
            .unwrap_err();
        assert_eq!(late.code(), "InvalidSignatureException");
        assert!(
            late.message().starts_with("Signature expired: "),
            "{}",
            late.message()
        );
        assert!(
            late.message().ends_with(" - 15 min.)"),
            "{}",
            late.message()
        );
        let early = v
            .verify_with(&v.request(), v.now - 901, &v.secret_key)
            .unwrap_err();
        assert_eq!(early.code(), "InvalidSignatureException");
        assert!(early.message().starts_with("Signature not yet current"));
    }
}

fn first() -> Vector {
    load("aws-sigv4.jsonl").remove(0)
}

fn with_header(v: &Vector, name: &'static str, value: Option<&str>) -> http::HeaderMap {
    let mut headers = v.headers.clone();
    headers.remove(name);
    if let Some(value) = value {
        headers.insert(name, http::HeaderValue::from_str(value).unwrap());
    }
    headers
}

fn verify_headers(v: &Vector, headers: &http::HeaderMap) -> Result<Verified, AuthError> {
    let req = SignedRequest {
        headers,
        ..v.request()
    };
    v.verify_with(&req, v.now, &v.secret_key)
}

#[test]
fn authorization_header_errors_have_the_aws_codes() {
    let v = first();
    let auth = v.headers["authorization"].to_str().unwrap().to_string();
    let code = |value: Option<&str>| {
        verify_headers(&v, &with_header(&v, "authorization", value))
            .unwrap_err()
            .code()
    };
    assert_eq!(code(None), "MissingAuthenticationTokenException");
    assert_eq!(
        code(Some("AWS4-HMAC-SHA256")),
        "IncompleteSignatureException"
    );
    assert_eq!(
        code(Some(&auth.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"))),
        "IncompleteSignatureException"
    );
    assert_eq!(
        code(Some(&auth.replace(", Signature=", ", Sig="))),
        "IncompleteSignatureException"
    );
    assert_eq!(
        code(Some(&auth.replace("/aws4_request", ""))),
        "IncompleteSignatureException"
    );
    // Scope: another region, service, terminator or date.
    for (from, to) in [
        ("/us-east-1/", "/eu-west-1/"),
        ("/gamesparks/", "/gamelift/"),
        ("/aws4_request", "/aws5_request"),
        ("/20220323/", "/20220322/"),
    ] {
        assert_eq!(
            code(Some(&auth.replace(from, to))),
            "InvalidSignatureException",
            "{to}"
        );
    }
    // Without the space after the commas it still parses.
    assert!(verify_headers(
        &v,
        &with_header(&v, "authorization", Some(&auth.replace(", ", ",")))
    )
    .is_ok());
    // Date: missing, malformed; Date header fallback is read (and here mismatches the scope).
    let no_date = with_header(&v, "x-amz-date", None);
    assert_eq!(
        verify_headers(&v, &no_date).unwrap_err().code(),
        "IncompleteSignatureException"
    );
    assert_eq!(
        verify_headers(
            &v,
            &with_header(&v, "x-amz-date", Some("2022-03-23T12:00:00Z"))
        )
        .unwrap_err()
        .code(),
        "IncompleteSignatureException"
    );
    let mut dated = no_date.clone();
    dated.insert("date", "Wed, 23 Mar 2022 12:00:00 GMT".parse().unwrap());
    // x-amz-date is signed but now absent.
    assert_eq!(
        verify_headers(&v, &dated).unwrap_err().code(),
        "IncompleteSignatureException"
    );
}

#[test]
fn unsigned_sensitive_headers_and_session_tokens_are_refused() {
    let v = first();
    let token = with_header(&v, "x-amz-security-token", Some("FQoG"));
    assert_eq!(
        verify_headers(&v, &token).unwrap_err().code(),
        "IncompleteSignatureException"
    );
    let hash = with_header(&v, "x-amz-content-sha256", Some(&sha256_hex(b"")));
    assert_eq!(
        verify_headers(&v, &hash).unwrap_err().code(),
        "IncompleteSignatureException"
    );
    // SignedHeaders without host.
    let auth = v.headers["authorization"]
        .to_str()
        .unwrap()
        .replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date");
    assert_eq!(
        verify_headers(&v, &with_header(&v, "authorization", Some(&auth)))
            .unwrap_err()
            .code(),
        "IncompleteSignatureException"
    );
}

#[test]
fn a_request_signed_here_with_every_header_kind_verifies() {
    // Signed content-sha256 and session token paths: sign a request ourselves.
    let mut headers = http::HeaderMap::new();
    headers.insert("host", "127.0.0.1:8080".parse().unwrap());
    headers.insert("x-amz-date", "20240101T000000Z".parse().unwrap());
    headers.insert("x-amz-content-sha256", sha256_hex(b"{}").parse().unwrap());
    headers.insert("x-custom", "  a   b  ".parse().unwrap());
    let signed: Vec<String> = ["host", "x-amz-content-sha256", "x-amz-date", "x-custom"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sig = {
        let req = SignedRequest {
            method: "POST",
            raw_path: "/game",
            raw_query: "b=2&a=1&a=0",
            headers: &headers,
            body: b"{}",
        };
        sign(
            &req,
            b"secret",
            "20240101T000000Z",
            "us-east-1",
            SERVICE,
            &signed,
        )
        .unwrap()
    };
    headers.insert(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/gamesparks/aws4_request, SignedHeaders={}, Signature={sig}",
            signed.join(";")
        )
        .parse()
        .unwrap(),
    );
    let req = SignedRequest {
        method: "POST",
        raw_path: "/game",
        raw_query: "b=2&a=1&a=0",
        headers: &headers,
        body: b"{}",
    };
    let now = timefmt::parse_compact("20240101T000000Z").unwrap();
    let ok = verify(&req, now, "us-east-1", SERVICE, |id| {
        (id == "AK").then(|| b"secret".to_vec())
    });
    assert!(ok.is_ok(), "{ok:?}");
    // A content hash that does not match the body.
    let other = SignedRequest {
        body: b"{ }",
        ..req
    };
    let err = verify(&other, now, "us-east-1", SERVICE, |_| {
        Some(b"secret".to_vec())
    })
    .unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
}

#[test]
fn canonical_forms() {
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri("/a b/c%2F"), "/a%20b/c%252F");
    assert_eq!(canonical_query(""), "");
    assert_eq!(
        canonical_query("tagKeys=b%20c&tagKeys=a&x"),
        "tagKeys=a&tagKeys=b%20c&x="
    );
    assert_eq!(canonical_query("a=%7e+b"), "a=~%2Bb");
    assert_eq!(canonical_header_value(b"  a   b \t c  "), "a b c");
    assert_eq!(
        timefmt::parse_compact("20220323T120000Z"),
        Some(1_648_036_800)
    );
    assert_eq!(timefmt::format_compact(1_648_036_800), "20220323T120000Z");
    assert_eq!(timefmt::parse_compact("20221323T120000Z"), None);
    assert_eq!(timefmt::parse_compact("2022032T1200000Z"), None);
}
