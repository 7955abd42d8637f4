//! The Huawei error: HTTP status, `error_code` from the DCS v2 list (or the API gateway's
//! `APIGW.*`), and a message a person can act on. Body `{"error_code", "error_msg"}`.

use http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HuaweiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl HuaweiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        HuaweiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 DCS.4800: a parameter of the request is invalid; the message names it.
    pub fn invalid(param: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "DCS.4800",
            format!("Invalid {param} in the request: {reason}"),
        )
    }

    /// 400 DCS.4005: the body is not valid JSON.
    pub fn bad_json(reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "DCS.4005",
            format!("The request body is not valid JSON: {reason}"),
        )
    }

    /// 401 APIGW.0301: the signature could not be verified (the message says why).
    pub fn auth(reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "APIGW.0301",
            format!("Incorrect IAM authentication information: {reason}"),
        )
    }

    /// 401 DCS.1004: the project id does not match.
    pub fn project(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "DCS.1004", reason)
    }

    /// 404 DCS.3022.
    pub fn instance_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "DCS.3022",
            format!(
                "The DCS instance {:?} does not exist in this project; ShowNodesInformation and the sessiond config ([[dcs.instances]]) list the declared instances",
                echo(id)
            ),
        )
    }

    /// 400 DCS.3053.
    pub fn node_not_found(instance: &str, node: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "DCS.3053",
            format!(
                "Incorrect node ID: {:?} is not a node of instance {instance}; ShowNodesInformation lists its node_id values",
                echo(node)
            ),
        )
    }

    /// 404 DCS.4001.
    pub fn url_not_found(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "DCS.4001",
            format!("The URL does not exist: {detail}"),
        )
    }

    /// 405 DCS.5001.
    pub fn method_not_allowed(method: &str, allowed: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "DCS.5001",
            format!(
                "Method {} is not allowed on this URL; use {allowed}",
                echo(method)
            ),
        )
    }

    /// 400 DCS.4027.
    pub fn not_supported(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "DCS.4027", reason)
    }

    /// 429 APIGW.0308: the gateway's throttling answer.
    pub fn throttled(operation: &str, limit: u32) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "APIGW.0308",
            format!("The throttling threshold has been reached: {operation} allows {limit} requests per second per access key; retry later"),
        )
    }

    /// 500 DCS.5000 with a message that says what failed.
    pub fn service(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "DCS.5000", message)
    }

    /// 500 DCS.5000 for failures inside sessiond: the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::service(
            "Internal service error: sessiond could not complete the request; its log has the details under this X-Request-Id",
        )
    }

    /// The response body.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        let mut value = serde_json::json!({
            "error_code": self.code,
            "error_msg": self.message,
        });
        if self.code.starts_with("APIGW.") {
            // The API gateway adds the request id to its own errors.
            value["request_id"] = serde_json::Value::from(request_id);
        }
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

impl std::fmt::Display for HuaweiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

/// Untrusted input shown in a message: bounded, no control characters.
pub fn echo(s: &str) -> String {
    s.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
