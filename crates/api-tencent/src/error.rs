//! The Tencent API 3.0 error: a code from the documented list and a message. Always answered
//! as HTTP 200 with `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TencentError {
    pub code: &'static str,
    pub message: String,
}

impl TencentError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        TencentError {
            code,
            message: message.into(),
        }
    }

    /// Internal failures: the detail goes to the log, the caller gets the request id to quote.
    pub fn internal(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(%detail, "internal error");
        TencentError::new(
            "InternalError",
            "sessiond could not complete the request; its log has the details under this RequestId",
        )
    }
}

impl std::fmt::Display for TencentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
