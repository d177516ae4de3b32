//! The one error type of the HTTP API, and its Stripe-style body:
//! `{"error":{"type","code","message","param"}}`.

use serde_json::{Value, json};

/// Every error a client can see. `status()` and `body()` are the only place errors become HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (bad parameter, unknown parameter, conflicting parameters).
    #[error("{message}")]
    InvalidRequest { code: &'static str, message: String, param: Option<String> },
    /// 400: an `Idempotency-Key` was reused with different parameters.
    #[error("{message}")]
    Idempotency { message: String },
    /// 401: no key, a malformed key, an unknown or revoked key.
    #[error("{message}")]
    Authentication { code: &'static str, message: String },
    /// 404: no such object for this account and mode.
    #[error("{message}")]
    NotFound { message: String, param: Option<String> },
    /// 409: another request with the same `Idempotency-Key` is still running.
    #[error("{message}")]
    Conflict { message: String },
    /// 429: too many requests (DynamoDB throttled us).
    #[error("{message}")]
    RateLimited { message: String },
    /// 500: our fault. The message is generic; the cause is logged, never sent.
    #[error("{message}")]
    Internal { message: String },
}

impl ApiError {
    pub fn invalid(code: &'static str, param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest { code, message: message.into(), param: Some(param.into()) }
    }

    pub fn unknown_parameter(param: &str) -> Self {
        ApiError::invalid("parameter_unknown", param, format!("Received unknown parameter: {param}"))
    }

    pub fn not_found(kind: &str, id: &str, param: &str) -> Self {
        ApiError::NotFound {
            message: format!("No such {kind}: '{id}'"),
            param: Some(param.to_owned()),
        }
    }

    pub fn internal() -> Self {
        ApiError::Internal {
            message: "An unexpected error occurred on our side. Please retry the request.".to_owned(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidRequest { .. } | ApiError::Idempotency { .. } => 400,
            ApiError::Authentication { .. } => 401,
            ApiError::NotFound { .. } => 404,
            ApiError::Conflict { .. } => 409,
            ApiError::RateLimited { .. } => 429,
            ApiError::Internal { .. } => 500,
        }
    }

    fn parts(&self) -> (&'static str, Option<&'static str>, Option<&str>) {
        match self {
            ApiError::InvalidRequest { code, param, .. } => ("invalid_request_error", Some(code), param.as_deref()),
            ApiError::Idempotency { .. } => ("idempotency_error", Some("idempotency_key_reused"), None),
            ApiError::Authentication { code, .. } => ("authentication_error", Some(code), None),
            ApiError::NotFound { param, .. } => ("invalid_request_error", Some("resource_missing"), param.as_deref()),
            ApiError::Conflict { .. } => ("idempotency_error", Some("idempotency_key_in_use"), None),
            ApiError::RateLimited { .. } => ("rate_limit_error", Some("rate_limit"), None),
            ApiError::Internal { .. } => ("api_error", None, None),
        }
    }

    /// The response body. `code` and `param` are always present, `null` when they do not apply.
    pub fn body(&self) -> Value {
        let (error_type, code, param) = self.parts();
        json!({
            "error": {
                "type": error_type,
                "code": code,
                "message": self.to_string(),
                "param": param,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_stripe_bodies() {
        let e = ApiError::invalid("parameter_invalid_integer", "limit", "Invalid integer: abc");
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.body(),
            json!({"error": {"type": "invalid_request_error", "code": "parameter_invalid_integer",
                             "message": "Invalid integer: abc", "param": "limit"}})
        );
        let nf = ApiError::not_found("event", "evt_x", "id");
        assert_eq!(nf.status(), 404);
        assert_eq!(nf.body()["error"]["code"], "resource_missing");
        assert_eq!(nf.body()["error"]["param"], "id");
        let auth = ApiError::Authentication { code: "api_key_invalid", message: "no".into() };
        assert_eq!(auth.status(), 401);
        assert_eq!(auth.body()["error"]["type"], "authentication_error");
        assert_eq!(auth.body()["error"]["param"], Value::Null);
        assert_eq!(ApiError::internal().status(), 500);
        assert_eq!(ApiError::internal().body()["error"]["type"], "api_error");
    }
}
