//! The Tencent API 3.0 endpoint: transport decoding, the typed endpoint (parsed before
//! authentication), signature check, region and rate limit, then the product's handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::Value;
use sessiond_api_common::server::HandlerFuture;
use sessiond_api_common::{
    read_body, request_id, unix_now, BodyError, Credentials, Dialect, HttpResponse, Metrics,
    RateLimiter,
};
use sessiond_core::dcdb::DcdbService;
use sessiond_core::gse::GseService;
use sessiond_core::Caller;

use crate::auth::{self, SignedRequest};
use crate::dcdb::{self, DcdbAction, DcdbApi};
use crate::error::TencentError;
use crate::gse::{GseAction, GseApi};
use crate::params::ApiSchema;

const GSE_VERSION: &str = "2019-11-12";
const DCDB_VERSION: &str = "2018-04-11";
const MAX_JSON_BODY: usize = 10 * 1024 * 1024;
const MAX_FORM_BODY: usize = 1024 * 1024;
const MAX_QUERY: usize = 32 * 1024;

/// What a request asks for, known before it is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Gse(GseAction),
    Dcdb(DcdbAction),
}

impl Endpoint {
    /// The product named in TC3 credential scopes and rate-limit keys.
    pub fn service(self) -> &'static str {
        match self {
            Endpoint::Gse(_) => "gse",
            Endpoint::Dcdb(_) => "dcdb",
        }
    }

    pub fn action(self) -> &'static str {
        match self {
            Endpoint::Gse(a) => a.name(),
            Endpoint::Dcdb(a) => a.name(),
        }
    }

    fn default_rate_limit(self) -> u32 {
        match self {
            Endpoint::Gse(a) => a.default_rate_limit(),
            Endpoint::Dcdb(a) => a.default_rate_limit(),
        }
    }

    /// Routes by version, then action. Known actions that sessiond does not implement are
    /// UnsupportedOperation, names no version has are InvalidAction.
    fn parse(version: &str, action: &str) -> Result<Endpoint, TencentError> {
        let (schema, endpoint) = match version {
            GSE_VERSION => (ApiSchema::gse(), GseAction::parse(action).map(Endpoint::Gse)),
            DCDB_VERSION => (ApiSchema::dcdb(), DcdbAction::parse(action).map(Endpoint::Dcdb)),
            other => {
                return Err(TencentError::new(
                    "NoSuchVersion",
                    format!(
                        "API version {other:?} does not exist; GSE is served as {GSE_VERSION}, DCDB as {DCDB_VERSION}"
                    ),
                ))
            }
        };
        if let Some(endpoint) = endpoint {
            return Ok(endpoint);
        }
        if schema.has_action(action) {
            Err(TencentError::new(
                "UnsupportedOperation",
                format!(
                    "sessiond does not implement the {} action {action}",
                    schema.service().to_uppercase()
                ),
            ))
        } else {
            Err(TencentError::new(
                "InvalidAction",
                format!(
                    "action {action:?} does not exist in {} {}",
                    schema.service(),
                    schema.version()
                ),
            ))
        }
    }

    fn schema(self) -> &'static ApiSchema {
        match self {
            Endpoint::Gse(_) => ApiSchema::gse(),
            Endpoint::Dcdb(_) => ApiSchema::dcdb(),
        }
    }
}

/// Requests per second per credential per action; keys are `"<service>.<Action>"`.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    overrides: HashMap<String, u32>,
}

impl RateLimits {
    pub fn new(overrides: HashMap<String, u32>) -> Self {
        RateLimits { overrides }
    }

    fn limit(&self, endpoint: Endpoint) -> u32 {
        let key = format!("{}.{}", endpoint.service(), endpoint.action());
        self.overrides
            .get(&key)
            .copied()
            .unwrap_or_else(|| endpoint.default_rate_limit())
    }
}

pub struct TencentApi {
    gse: GseApi,
    dcdb: DcdbApi,
    gate: Gate,
    metrics: Arc<Metrics>,
}

/// Admission of a request whose transport was read: routing, signature, credential scope,
/// region, rate limit and parameter decoding. No product state is involved.
struct Gate {
    credentials: Arc<Credentials>,
    limiter: RateLimiter,
    limits: RateLimits,
    region: Option<String>,
    /// The server clock (Unix seconds) the signature window is checked against.
    now: Box<dyn Fn() -> i64 + Send + Sync>,
}

enum Transport {
    Json,
    Query,
    Form,
}

fn header<'a>(head: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    head.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn respond(body: Vec<u8>) -> HttpResponse {
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    // Exactly this value: the Python SDK ignores errors under any other Content-Type.
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"Response": {<output fields>, "RequestId": ...}}` without re-parsing the output.
fn success_body(output: &[u8], request_id: &str) -> Vec<u8> {
    let inner = output
        .strip_prefix(b"{")
        .and_then(|o| o.strip_suffix(b"}"))
        .unwrap_or(b"");
    let mut body = Vec::with_capacity(output.len() + 64);
    body.extend_from_slice(b"{\"Response\":{");
    if !inner.is_empty() {
        body.extend_from_slice(inner);
        body.push(b',');
    }
    body.extend_from_slice(b"\"RequestId\":\"");
    body.extend_from_slice(request_id.as_bytes());
    body.extend_from_slice(b"\"}}");
    body
}

fn error_body(error: &TencentError, request_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "Response": {
            "Error": {"Code": error.code, "Message": error.message},
            "RequestId": request_id,
        }
    }))
    .unwrap_or_default()
}

impl TencentApi {
    pub fn new(
        gse: Arc<GseService>,
        dcdb: Arc<DcdbService>,
        credentials: Arc<Credentials>,
        limits: RateLimits,
        metrics: Arc<Metrics>,
        region: Option<String>,
    ) -> Self {
        TencentApi {
            gse: GseApi::new(gse),
            dcdb: DcdbApi::new(dcdb),
            gate: Gate {
                credentials,
                limiter: RateLimiter::default(),
                limits,
                region,
                now: Box::new(unix_now),
            },
            metrics,
        }
    }

    async fn answer(&self, head: http::request::Parts, body: Incoming) -> HttpResponse {
        let started = Instant::now();
        let request_id = request_id();
        let mut action = String::from("-");
        let result = self.process(head, body, &mut action).await;
        let (outcome, body) = match result {
            Ok(output) => ("Success", success_body(&output, &request_id)),
            Err(error) => {
                tracing::debug!(%request_id, action, code = error.code, message = %error.message, "request refused");
                (error.code, error_body(&error, &request_id))
            }
        };
        self.metrics.record(
            "tencent",
            &action,
            outcome,
            started.elapsed().as_micros() as u64,
        );
        respond(body)
    }

    async fn process(
        &self,
        head: http::request::Parts,
        body: Incoming,
        action_name: &mut String,
    ) -> Result<Vec<u8>, TencentError> {
        let (transport, body, params) = decode_transport(&head, body).await?;
        let (endpoint, caller, decoded) =
            self.gate
                .admit(&head, &transport, &body, &params, action_name)?;
        match endpoint {
            Endpoint::Gse(action) => self.gse.call(action, &caller, decoded).await,
            Endpoint::Dcdb(action) => self.dcdb.call(action, &caller, decoded).await,
        }
    }
}

impl Gate {
    /// Routes by version and action, authenticates, checks scope, region and rate limit, and
    /// decodes the parameters against the action's schema.
    fn admit(
        &self,
        head: &http::request::Parts,
        transport: &Transport,
        body: &Bytes,
        params: &[(String, String)],
        action_name: &mut String,
    ) -> Result<(Endpoint, Caller, Value), TencentError> {
        let header_or_param = |h: &str, p: &str| {
            header(head, h)
                .or_else(|| param(params, p))
                .map(str::to_string)
        };
        let action = header_or_param("x-tc-action", "Action").ok_or_else(|| {
            TencentError::new(
                "MissingParameter",
                "the common parameter Action (X-TC-Action) is missing",
            )
        })?;
        *action_name = action.chars().take(64).collect();
        let version = header_or_param("x-tc-version", "Version").ok_or_else(|| {
            TencentError::new(
                "MissingParameter",
                "the common parameter Version (X-TC-Version) is missing",
            )
        })?;
        let endpoint = Endpoint::parse(&version, &action)?;

        let signed = SignedRequest {
            method: head.method.as_str(),
            raw_query: head.uri.query().unwrap_or(""),
            headers: &head.headers,
            body,
            params,
        };
        let credentials = &self.credentials;
        let verified = auth::verify(&signed, (self.now)(), |id| {
            credentials.get(id).map(|c| c.secret.expose().to_vec())
        })
        .map_err(|e| TencentError::new(e.code(), e.to_string()))?;
        if let Some(scope) = &verified.scope_service {
            if scope != endpoint.service() {
                return Err(TencentError::new(
                    "AuthFailure.SignatureFailure",
                    format!(
                        "the credential scope names service {scope:?}, but {} is a {} action; sign for {}",
                        endpoint.action(),
                        endpoint.service(),
                        endpoint.service()
                    ),
                ));
            }
        }
        let credential = self.credentials.get(&verified.secret_id).ok_or_else(|| {
            TencentError::new("AuthFailure.SecretIdNotFound", "the SecretId is not known")
        })?;

        // GSE actions need a Region; DCDB's do not ("This parameter is not required").
        let region = match (header_or_param("x-tc-region", "Region"), endpoint) {
            (Some(region), _) => Some(region),
            (None, Endpoint::Dcdb(_)) => None,
            (None, Endpoint::Gse(_)) => {
                return Err(TencentError::new(
                    "MissingParameter",
                    "the common parameter Region (X-TC-Region) is required for GSE",
                ))
            }
        };
        if let (Some(served), Some(region)) = (&self.region, &region) {
            if region != served {
                return Err(TencentError::new(
                    "UnsupportedRegion",
                    format!("this sessiond serves region {served}; the request names {region}"),
                ));
            }
        }

        let limit = self.limits.limit(endpoint);
        if !self
            .limiter
            .allow(&verified.secret_id, endpoint.action(), limit)
        {
            return Err(TencentError::new(
                "RequestLimitExceeded",
                format!(
                    "{} allows {limit} requests per second per SecretId; retry later",
                    endpoint.action()
                ),
            ));
        }

        let decoded: Value = match transport {
            Transport::Json => endpoint.schema().decode_json(endpoint.action(), body),
            Transport::Query | Transport::Form => {
                endpoint.schema().decode_flat(endpoint.action(), params)
            }
        }
        .map_err(|e| match endpoint {
            Endpoint::Dcdb(action) => dcdb::param_error(action, e),
            Endpoint::Gse(_) => TencentError::new(e.code(), e.to_string()),
        })?;

        let caller = Caller {
            account: credential.account.clone(),
            region: region.or_else(|| self.region.clone()).unwrap_or_default(),
        };
        Ok((endpoint, caller, decoded))
    }
}

/// Reads the parameters from where the transport puts them: JSON body, query string or form body.
async fn decode_transport(
    head: &http::request::Parts,
    body: Incoming,
) -> Result<(Transport, Bytes, Vec<(String, String)>), TencentError> {
    let too_large = |limit: usize| {
        TencentError::new(
            "RequestSizeLimitExceeded",
            format!("the request is larger than {limit} bytes"),
        )
    };
    let read = |body: Incoming, limit: usize| async move {
        read_body(head, body, limit).await.map_err(|e| match e {
            BodyError::TooLarge(limit) => too_large(limit),
            BodyError::Read(reason) => TencentError::new(
                "InvalidRequest",
                format!("the request body could not be read: {reason}"),
            ),
        })
    };
    match head.method {
        http::Method::GET => {
            let query = head.uri.query().unwrap_or("");
            if query.len() > MAX_QUERY {
                return Err(too_large(MAX_QUERY));
            }
            let params = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            // A GET body is not covered by the signature: ignore it.
            drop(body);
            Ok((Transport::Query, Bytes::new(), params))
        }
        http::Method::POST => {
            let content_type = header(head, "content-type")
                .unwrap_or("")
                .to_ascii_lowercase();
            if content_type.starts_with("application/json") {
                Ok((
                    Transport::Json,
                    read(body, MAX_JSON_BODY).await?,
                    Vec::new(),
                ))
            } else if content_type.starts_with("application/x-www-form-urlencoded") {
                let body = read(body, MAX_FORM_BODY).await?;
                let params = form_urlencoded::parse(&body).into_owned().collect();
                Ok((Transport::Form, body, params))
            } else if content_type.starts_with("multipart/") {
                Err(TencentError::new(
                    "UnsupportedProtocol",
                    "multipart requests are only for upload actions, which sessiond does not serve",
                ))
            } else {
                Err(TencentError::new(
                    "InvalidParameter",
                    format!("Content-Type {content_type:?} is not served; use application/json or application/x-www-form-urlencoded"),
                ))
            }
        }
        _ => Err(TencentError::new(
            "UnsupportedProtocol",
            format!(
                "HTTP method {} is not allowed; use GET or POST",
                head.method
            ),
        )),
    }
}

impl Dialect for TencentApi {
    fn name(&self) -> &'static str {
        "tencent"
    }

    fn claims(&self, head: &http::request::Parts) -> bool {
        head.uri.path() == "/"
    }

    fn handle(&self, head: http::request::Parts, body: Incoming) -> HandlerFuture<'_> {
        Box::pin(self.answer(head, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        assert_eq!(
            success_body(b"{}", "r1"),
            br#"{"Response":{"RequestId":"r1"}}"#.to_vec()
        );
        assert_eq!(
            success_body(br#"{"A":1}"#, "r1"),
            br#"{"Response":{"A":1,"RequestId":"r1"}}"#.to_vec()
        );
        let v: Value =
            serde_json::from_slice(&error_body(&TencentError::new("X", "m"), "r")).unwrap();
        assert_eq!(v["Response"]["Error"]["Code"], "X");
        assert_eq!(v["Response"]["RequestId"], "r");
    }

    fn record_request(
        rec: &Value,
    ) -> (
        http::request::Parts,
        Transport,
        Bytes,
        Vec<(String, String)>,
    ) {
        let mut builder = http::Request::builder()
            .method(rec["method"].as_str().unwrap())
            .uri(rec["path"].as_str().unwrap());
        for (name, value) in rec["headers"].as_object().unwrap() {
            builder = builder.header(name.as_str(), value.as_str().unwrap());
        }
        let (head, ()) = builder.body(()).unwrap().into_parts();
        let body = Bytes::from(rec["body"].as_str().unwrap().as_bytes().to_vec());
        if head.method == http::Method::GET {
            let params = form_urlencoded::parse(head.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
            (head, Transport::Query, Bytes::new(), params)
        } else {
            (head, Transport::Json, body, Vec::new())
        }
    }

    fn gate(now: i64, id: &str, key: &str, region: Option<&str>) -> Gate {
        Gate {
            credentials: Arc::new(Credentials::new(vec![sessiond_api_common::Credential {
                access_key_id: id.to_string(),
                secret: sessiond_api_common::Secret::new(key.as_bytes().to_vec()),
                account: sessiond_core::AccountId("100000000001".into()),
            }])),
            limiter: RateLimiter::default(),
            limits: RateLimits::default(),
            region: region.map(str::to_string),
            now: Box::new(move || now),
        }
    }

    fn admit(
        gate: &Gate,
        req: &(
            http::request::Parts,
            Transport,
            Bytes,
            Vec<(String, String)>,
        ),
    ) -> Result<(Endpoint, Caller, Value), TencentError> {
        let mut action = String::new();
        gate.admit(&req.0, &req.1, &req.2, &req.3, &mut action)
    }

    /// The captured requests of the official DCDB clients (SDK TC3 POST and GET, tccli with
    /// `Host: http://…`) pass the whole admission: routing, signature, scope, region, decoding.
    #[test]
    fn captured_dcdb_requests_are_admitted() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/vectors/tencent-dcdb-captured.jsonl");
        let text = std::fs::read_to_string(&path).expect("the DCDB vectors");
        let mut count = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let rec: Value = serde_json::from_str(line).unwrap();
            let label = rec["id"].as_str().unwrap().to_string();
            let now = rec["server_time"].as_i64().unwrap();
            let g = gate(
                now,
                rec["secret_id"].as_str().unwrap(),
                rec["secret_key"].as_str().unwrap(),
                Some("ap-guangzhou"),
            );
            let req = record_request(&rec);
            let action = rec["action"].as_str().unwrap();
            if label.starts_with("dcdb-03") {
                // DescribeDCDBShards with the body `{}`: signed fine, but InstanceId is required.
                assert_eq!(admit(&g, &req).unwrap_err().code, "MissingParameter");
                count += 1;
                continue;
            }
            let (endpoint, caller, decoded) =
                admit(&g, &req).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(
                endpoint,
                Endpoint::Dcdb(DcdbAction::parse(action).unwrap()),
                "{label}"
            );
            assert_eq!(caller.account.0, "100000000001");
            if action == "KillSession" {
                assert_eq!(
                    decoded["SessionId"],
                    serde_json::json!([1111, 2222]),
                    "{label}"
                );
                assert_eq!(decoded["InstanceId"], "tdsqlshard-2gk4nxyz", "{label}");
            }
            count += 1;

            // One flipped byte of the signed content fails the signature.
            let mut tampered = record_request(&rec);
            if tampered.0.method == http::Method::GET {
                let query = tampered.0.uri.query().unwrap().replace("1111", "1112");
                tampered.0.uri = format!("/?{query}").parse().unwrap();
                tampered.3 = form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
            } else {
                let mut body = tampered.2.to_vec();
                let i = body.iter().position(|b| b.is_ascii_digit()).unwrap();
                body[i] = if body[i] == b'9' { b'8' } else { body[i] + 1 };
                tampered.2 = Bytes::from(body);
            }
            assert_eq!(
                admit(&g, &tampered).unwrap_err().code,
                "AuthFailure.SignatureFailure",
                "{label}"
            );
            // Outside the clock window.
            let late = gate(
                now + 301,
                rec["secret_id"].as_str().unwrap(),
                rec["secret_key"].as_str().unwrap(),
                None,
            );
            assert_eq!(
                admit(&late, &req).unwrap_err().code,
                "AuthFailure.SignatureExpire",
                "{label}"
            );
            // Another served region.
            let elsewhere = gate(
                now,
                rec["secret_id"].as_str().unwrap(),
                rec["secret_key"].as_str().unwrap(),
                Some("ap-shanghai"),
            );
            let e = admit(&elsewhere, &req).unwrap_err();
            assert_eq!(e.code, "UnsupportedRegion", "{label}");
        }
        assert_eq!(count, 5);
    }

    /// A signature scoped to one product does not open another: the version and action headers
    /// are not signed, so the scope is what binds a TC3 signature to its product.
    #[test]
    fn tc3_scope_must_name_the_product() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/vectors/tencent-dcdb-captured.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let rec: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let g = gate(
            rec["server_time"].as_i64().unwrap(),
            rec["secret_id"].as_str().unwrap(),
            rec["secret_key"].as_str().unwrap(),
            None,
        );
        let mut req = record_request(&rec);
        req.0
            .headers
            .insert("x-tc-version", http::HeaderValue::from_static("2019-11-12"));
        req.0.headers.insert(
            "x-tc-action",
            http::HeaderValue::from_static("DescribeAssets"),
        );
        let e = admit(&g, &req).unwrap_err();
        assert_eq!(e.code, "AuthFailure.SignatureFailure");
        assert!(e.message.contains("\"dcdb\""), "{}", e.message);

        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/vectors/tencent-golden.json");
        let golden: Value =
            serde_json::from_str(&std::fs::read_to_string(golden).unwrap()).unwrap();
        let rec = &golden["requests"][0];
        let g = gate(
            1_700_000_000,
            golden["secret_id"].as_str().unwrap(),
            golden["secret_key"].as_str().unwrap(),
            None,
        );
        let mut req = record_request(rec);
        assert!(admit(&g, &req).is_ok(), "the GSE record itself is fine");
        req.0
            .headers
            .insert("x-tc-version", http::HeaderValue::from_static("2018-04-11"));
        req.0.headers.insert(
            "x-tc-action",
            http::HeaderValue::from_static("DescribeFlow"),
        );
        let e = admit(&g, &req).unwrap_err();
        assert_eq!(e.code, "AuthFailure.SignatureFailure");
    }

    #[test]
    fn dcdb_region_is_optional_gse_region_is_not() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/vectors/tencent-dcdb-captured.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let rec: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let g = gate(
            rec["server_time"].as_i64().unwrap(),
            rec["secret_id"].as_str().unwrap(),
            rec["secret_key"].as_str().unwrap(),
            Some("ap-guangzhou"),
        );
        let mut req = record_request(&rec);
        req.0.headers.remove("x-tc-region");
        let (_, caller, _) = admit(&g, &req).unwrap();
        assert_eq!(caller.region, "ap-guangzhou", "the served region stands in");

        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/vectors/tencent-golden.json");
        let golden: Value =
            serde_json::from_str(&std::fs::read_to_string(golden).unwrap()).unwrap();
        let g = gate(
            1_700_000_000,
            golden["secret_id"].as_str().unwrap(),
            golden["secret_key"].as_str().unwrap(),
            None,
        );
        let mut req = record_request(&golden["requests"][0]);
        req.0.headers.remove("x-tc-region");
        let e = admit(&g, &req).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        assert!(e.message.contains("Region"), "{}", e.message);
    }

    #[test]
    fn dcdb_rate_limits() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/vectors/tencent-dcdb-captured.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let rec: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let g = gate(
            rec["server_time"].as_i64().unwrap(),
            rec["secret_id"].as_str().unwrap(),
            rec["secret_key"].as_str().unwrap(),
            None,
        );
        let req = record_request(&rec);
        let mut refused = 0;
        for _ in 0..25 {
            match admit(&g, &req) {
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.code, "RequestLimitExceeded");
                    refused += 1;
                }
            }
        }
        assert!(refused >= 4, "{refused}");
        assert_eq!(
            RateLimits::default().limit(Endpoint::Dcdb(DcdbAction::KillSession)),
            20
        );
        let mut overrides = HashMap::new();
        overrides.insert("dcdb.DescribeFlow".to_string(), 1000);
        assert_eq!(
            RateLimits::new(overrides).limit(Endpoint::Dcdb(DcdbAction::DescribeFlow)),
            1000
        );
    }

    #[test]
    fn endpoints_route_by_version_and_action() {
        assert_eq!(
            Endpoint::parse("2018-04-11", "KillSession").unwrap(),
            Endpoint::Dcdb(DcdbAction::KillSession)
        );
        assert_eq!(
            Endpoint::parse("2018-04-11", "DescribeDCDBPrice")
                .unwrap_err()
                .code,
            "UnsupportedOperation"
        );
        assert_eq!(
            Endpoint::parse("2018-04-11", "JoinGameServerSession")
                .unwrap_err()
                .code,
            "InvalidAction"
        );
        assert_eq!(
            Endpoint::parse("2019-11-12", "KillSession")
                .unwrap_err()
                .code,
            "InvalidAction"
        );
        assert_eq!(
            Endpoint::parse("2019-11-12", "JoinGameServerSession").unwrap(),
            Endpoint::Gse(GseAction::JoinGameServerSession)
        );
        assert_eq!(
            Endpoint::parse("2019-11-12", "CreateAlias")
                .unwrap_err()
                .code,
            "UnsupportedOperation"
        );
        assert_eq!(
            Endpoint::parse("2019-11-12", "Nope").unwrap_err().code,
            "InvalidAction"
        );
        assert_eq!(
            Endpoint::parse("2000-01-01", "JoinGameServerSession")
                .unwrap_err()
                .code,
            "NoSuchVersion"
        );
    }
}
