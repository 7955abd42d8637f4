//! The AWS JSON error: an exception shape name (sent as `x-amzn-ErrorType` and `__type`), a
//! status and a message.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        AwsError::new(400, "ValidationException", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AwsError::new(404, "ResourceNotFoundException", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        AwsError::new(409, "ConflictException", message)
    }

    pub fn quota(message: impl Into<String>) -> Self {
        AwsError::new(402, "ServiceQuotaExceededException", message)
    }

    pub fn throttling(message: impl Into<String>) -> Self {
        AwsError::new(429, "ThrottlingException", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        AwsError::new(400, "SerializationException", message)
    }

    /// Internal failures: the detail goes to the log, the caller gets the request id to quote.
    pub fn internal(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(%detail, "internal error");
        AwsError::new(
            500,
            "InternalServerException",
            "sessiond could not complete the request; its log has the details under this request id",
        )
    }

    /// The JSON body `{"__type": ..., "message": ...}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "__type": self.code,
            "message": self.message,
        }))
        .unwrap_or_default()
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}
