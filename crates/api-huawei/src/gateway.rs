//! The Huawei API front: typed endpoint (before auth), bounded body, SDK-HMAC-SHA256, project
//! check, rate limit, then one DCS operation. Every response carries `X-Request-Id`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use sessiond_api_common::server::HandlerFuture;
use sessiond_api_common::{
    read_body, request_id, unix_now, BodyError, Credentials, Dialect, HttpResponse, Metrics,
    RateLimiter,
};
use sessiond_core::dcs::DcsService;
use sessiond_core::AccountId;

use crate::auth::{self, SignedRequest};
use crate::dcs::{DcsApi, Reply};
use crate::endpoint::{Endpoint, Operation};
use crate::error::{echo, HuaweiError};

const MAX_BODY: usize = 1024 * 1024;
const MAX_QUERY: usize = 32 * 1024;

/// Requests per second per access key per operation; keys `"dcs.<Operation>"` override the
/// defaults of [`Operation::default_rate_limit`].
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    overrides: HashMap<String, u32>,
}

impl RateLimits {
    pub fn new(overrides: HashMap<String, u32>) -> Self {
        RateLimits { overrides }
    }

    pub fn limit(&self, operation: Operation) -> u32 {
        self.overrides
            .get(&format!("dcs.{}", operation.name()))
            .copied()
            .unwrap_or_else(|| operation.default_rate_limit())
    }
}

pub struct HuaweiApi {
    dcs: DcsApi,
    credentials: Arc<Credentials>,
    limiter: RateLimiter,
    limits: RateLimits,
    metrics: Arc<Metrics>,
}

fn header<'a>(head: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    head.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl HuaweiApi {
    pub fn new(
        service: Arc<DcsService>,
        credentials: Arc<Credentials>,
        limits: RateLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        HuaweiApi {
            dcs: DcsApi::new(service),
            credentials,
            limiter: RateLimiter::default(),
            limits,
            metrics,
        }
    }

    async fn answer(&self, head: http::request::Parts, body: Incoming) -> HttpResponse {
        let started = Instant::now();
        let request_id = request_id();
        let mut operation = "-";
        let result = self.process(head, body, &mut operation).await;
        let (outcome, mut response) = match result {
            Ok(Reply::NoContent) => ("Success", respond(StatusCode::NO_CONTENT, Bytes::new())),
            Ok(Reply::Json(body)) => ("Success", respond(StatusCode::OK, Bytes::from(body))),
            Err(error) => {
                tracing::debug!(%request_id, operation, code = error.code, message = %error.message, "request refused");
                (
                    error.code,
                    respond(error.status, Bytes::from(error.body(&request_id))),
                )
            }
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        self.metrics.record(
            "huawei",
            operation,
            outcome,
            started.elapsed().as_micros() as u64,
        );
        response
    }

    async fn process(
        &self,
        head: http::request::Parts,
        body: Incoming,
        operation_name: &mut &'static str,
    ) -> Result<Reply, HuaweiError> {
        let endpoint = Endpoint::parse(&head.method, head.uri.path())?;
        let operation = endpoint.operation;
        *operation_name = operation.name();
        let raw_query = head.uri.query().unwrap_or("");
        if raw_query.len() > MAX_QUERY {
            return Err(HuaweiError::invalid(
                "query",
                format!("the query string is longer than {MAX_QUERY} bytes"),
            ));
        }
        let body = read_body(&head, body, MAX_BODY)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge(limit) => HuaweiError::invalid(
                    "body",
                    format!("the request body is larger than {limit} bytes"),
                ),
                BodyError::Read(reason) => HuaweiError::invalid(
                    "body",
                    format!("the request body could not be read: {reason}"),
                ),
            })?;

        let signed = SignedRequest {
            method: head.method.as_str(),
            raw_path: head.uri.path(),
            raw_query,
            headers: &head.headers,
            body: &body,
        };
        let credentials = &self.credentials;
        let verified = auth::verify(&signed, unix_now(), |ak| {
            credentials.get(ak).map(|c| c.secret.expose().to_vec())
        })
        .map_err(HuaweiError::auth)?;
        let credential = self
            .credentials
            .get(&verified.access_key)
            .ok_or_else(|| HuaweiError::auth("the access key is unknown to this server"))?;
        let project = check_project(
            &endpoint,
            header(&head, "x-project-id"),
            &credential.account,
        )?;

        let limit = self.limits.limit(operation);
        if !self
            .limiter
            .allow(&verified.access_key, operation.name(), limit)
        {
            return Err(HuaweiError::throttled(operation.name(), limit));
        }

        let id = endpoint.resource_id.as_str();
        match operation {
            Operation::HangUpClients => self.dcs.hang_up_clients(&project, id, &body).await,
            Operation::HangUpKillAllClients => {
                self.dcs.hang_up_kill_all_clients(&project, id, &body).await
            }
            Operation::ScanClients => self.dcs.scan_clients(&project, id, &body).await,
            Operation::ListClients => self.dcs.list_clients(&project, id, raw_query).await,
            Operation::ShowNodesInformation => self.dcs.show_nodes_information(&project, id).await,
            Operation::ListGroupReplicationInfo => {
                self.dcs.list_group_replication_info(&project, id).await
            }
            Operation::ShowInstance => self.dcs.show_instance(&project, id).await,
            Operation::ShowJobInfo => self.dcs.show_job_info(&project, id),
        }
    }
}

/// The path's project must be the credential's project (its account), and `X-Project-Id`,
/// when sent, the same.
fn check_project(
    endpoint: &Endpoint,
    x_project_id: Option<&str>,
    account: &AccountId,
) -> Result<AccountId, HuaweiError> {
    let path_project = endpoint.project_id.as_str();
    if path_project == "{project_id}" {
        return Err(HuaweiError::project(format!(
            "Project ID does not match: the path holds the literal {{project_id}}; create the SDK credentials with the project id, BasicCredentials(ak, sk, \"{account}\")"
        )));
    }
    if let Some(header) = x_project_id {
        if header != path_project {
            return Err(HuaweiError::project(format!(
                "Project ID does not match: X-Project-Id {:?} differs from the project {:?} in the path",
                echo(header),
                echo(path_project)
            )));
        }
    }
    if path_project != account.0 {
        return Err(HuaweiError::project(format!(
            "Project ID does not match: this access key belongs to project {account}, the request names {:?}",
            echo(path_project)
        )));
    }
    Ok(account.clone())
}

fn respond(status: StatusCode, body: Bytes) -> HttpResponse {
    let has_body = !body.is_empty();
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    if has_body {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
    }
    response
}

impl Dialect for HuaweiApi {
    fn name(&self) -> &'static str {
        "huawei"
    }

    fn claims(&self, head: &http::request::Parts) -> bool {
        head.uri.path().starts_with("/v2/")
    }

    fn handle(&self, head: http::request::Parts, body: Incoming) -> HandlerFuture<'_> {
        Box::pin(self.answer(head, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(project: &str) -> Endpoint {
        Endpoint {
            operation: Operation::ShowInstance,
            project_id: project.into(),
            resource_id: "i".into(),
        }
    }

    #[test]
    fn projects_must_match() {
        let account = AccountId("p1".into());
        assert_eq!(
            check_project(&endpoint("p1"), Some("p1"), &account).unwrap(),
            account
        );
        assert_eq!(
            check_project(&endpoint("p1"), None, &account).unwrap(),
            account
        );
        for (path, header) in [
            ("p2", Some("p2")),
            ("p1", Some("p2")),
            ("p2", None),
            ("{project_id}", None),
        ] {
            let err = check_project(&endpoint(path), header, &account).unwrap_err();
            assert_eq!((err.status.as_u16(), err.code), (401, "DCS.1004"), "{path}");
        }
    }

    #[test]
    fn limits_default_and_override() {
        let limits = RateLimits::new(HashMap::from([("dcs.ListClients".to_string(), 7)]));
        assert_eq!(limits.limit(Operation::ListClients), 7);
        assert_eq!(limits.limit(Operation::HangUpClients), 20);
    }

    #[test]
    fn error_bodies() {
        let e = HuaweiError::instance_not_found("x");
        let v: serde_json::Value = serde_json::from_slice(&e.body("r")).unwrap();
        assert_eq!(v["error_code"], "DCS.3022");
        assert!(v.get("request_id").is_none());
        let e = HuaweiError::auth("bad");
        let v: serde_json::Value = serde_json::from_slice(&e.body("r")).unwrap();
        assert_eq!(v["error_code"], "APIGW.0301");
        assert_eq!(v["request_id"], "r");
    }
}
