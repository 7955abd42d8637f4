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
use sessiond_core::gse::GseService;
use sessiond_core::Caller;

use crate::auth::{self, SignedRequest};
use crate::error::TencentError;
use crate::gse::{GseAction, GseApi};
use crate::params::ApiSchema;

const GSE_VERSION: &str = "2019-11-12";
const MAX_JSON_BODY: usize = 10 * 1024 * 1024;
const MAX_FORM_BODY: usize = 1024 * 1024;
const MAX_QUERY: usize = 32 * 1024;

/// What a request asks for, known before it is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Gse(GseAction),
}

impl Endpoint {
    /// The product named in TC3 credential scopes and rate-limit keys.
    pub fn service(self) -> &'static str {
        match self {
            Endpoint::Gse(_) => "gse",
        }
    }

    pub fn action(self) -> &'static str {
        match self {
            Endpoint::Gse(a) => a.name(),
        }
    }

    fn default_rate_limit(self) -> u32 {
        match self {
            Endpoint::Gse(a) => a.default_rate_limit(),
        }
    }

    /// Routes by version, then action. Known actions that sessiond does not implement are
    /// UnsupportedOperation, names no version has are InvalidAction.
    fn parse(version: &str, action: &str) -> Result<Endpoint, TencentError> {
        let schema = match version {
            GSE_VERSION => ApiSchema::gse(),
            other => {
                return Err(TencentError::new(
                    "NoSuchVersion",
                    format!("API version {other:?} does not exist; GSE is served as {GSE_VERSION}"),
                ))
            }
        };
        if let Some(action) = GseAction::parse(action) {
            return Ok(Endpoint::Gse(action));
        }
        if schema.has_action(action) {
            Err(TencentError::new(
                "UnsupportedOperation",
                format!("sessiond does not implement the GSE action {action}"),
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
    credentials: Arc<Credentials>,
    limiter: RateLimiter,
    limits: RateLimits,
    metrics: Arc<Metrics>,
    region: Option<String>,
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
        credentials: Arc<Credentials>,
        limits: RateLimits,
        metrics: Arc<Metrics>,
        region: Option<String>,
    ) -> Self {
        TencentApi {
            gse: GseApi::new(gse),
            credentials,
            limiter: RateLimiter::default(),
            limits,
            metrics,
            region,
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
        let header_or_param = |h: &str, p: &str| {
            header(&head, h)
                .or_else(|| param(&params, p))
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
            body: &body,
            params: &params,
        };
        let credentials = &self.credentials;
        let verified = auth::verify(&signed, unix_now(), |id| {
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

        let region = header_or_param("x-tc-region", "Region").ok_or_else(|| {
            TencentError::new(
                "MissingParameter",
                "the common parameter Region (X-TC-Region) is required for GSE",
            )
        })?;
        if let Some(served) = &self.region {
            if &region != served {
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
            Transport::Json => endpoint.schema().decode_json(endpoint.action(), &body),
            Transport::Query | Transport::Form => {
                endpoint.schema().decode_flat(endpoint.action(), &params)
            }
        }
        .map_err(|e| TencentError::new(e.code(), e.to_string()))?;

        let caller = Caller {
            account: credential.account.clone(),
            region,
        };
        match endpoint {
            Endpoint::Gse(action) => self.gse.call(action, &caller, decoded).await,
        }
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

    #[test]
    fn endpoints_route_by_version_and_action() {
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
