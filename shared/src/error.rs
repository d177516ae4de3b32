//! The one error type of the HTTP API, its error codes, and its Stripe-style body:
//! `{"error":{"type","code","message","param"}}`. [`ApiError::status`] and [`ApiError::body`]
//! are the only place errors become HTTP; `IntoResponse` (in `http`) uses them.

use serde_json::{Value, json};

use crate::store::StoreError;

/// Every `error.code` the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ApiKeyMissing,
    ApiKeyInvalid,
    ApiKeyExpired,
    InsufficientPermissions,
    ParameterInvalid,
    ParameterInvalidInteger,
    ParameterMissing,
    ParameterUnknown,
    ParameterDuplicated,
    ParametersExclusive,
    ResourceMissing,
    ResourceLimitExceeded,
    UrlInvalid,
    EndpointDisabled,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    IdempotencyKeyInUse,
    RateLimit,
    MethodNotAllowed,
    UriTooLong,
    RequestTooLarge,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ApiKeyMissing => "api_key_missing",
            Code::ApiKeyInvalid => "api_key_invalid",
            Code::ApiKeyExpired => "api_key_expired",
            Code::InsufficientPermissions => "insufficient_permissions",
            Code::ParameterInvalid => "parameter_invalid",
            Code::ParameterInvalidInteger => "parameter_invalid_integer",
            Code::ParameterMissing => "parameter_missing",
            Code::ParameterUnknown => "parameter_unknown",
            Code::ParameterDuplicated => "parameter_duplicated",
            Code::ParametersExclusive => "parameters_exclusive",
            Code::ResourceMissing => "resource_missing",
            Code::ResourceLimitExceeded => "resource_limit_exceeded",
            Code::UrlInvalid => "url_invalid",
            Code::EndpointDisabled => "endpoint_disabled",
            Code::IdempotencyKeyInvalid => "idempotency_key_invalid",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::IdempotencyKeyInUse => "idempotency_key_in_use",
            Code::RateLimit => "rate_limit",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::UriTooLong => "uri_too_long",
            Code::RequestTooLarge => "request_too_large",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every error a client can see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (bad parameter, unknown parameter, conflicting parameters).
    #[error("{message}")]
    InvalidRequest { code: Code, message: String, param: Option<String> },
    /// 400: an `Idempotency-Key` was reused with different parameters.
    #[error("{message}")]
    Idempotency { message: String },
    /// 401: no key, a malformed key, an unknown or revoked key.
    #[error("{message}")]
    Authentication { code: Code, message: String },
    /// 403: the key is valid but may not do this (a restricted key without the permission, or a
    /// restricted key managing keys).
    #[error("{message}")]
    Permission { message: String },
    /// 404: no such object for this account and mode; or no such route (`param` and `code` null).
    #[error("{message}")]
    NotFound { message: String, param: Option<String> },
    /// 405, 413, 414: what API Gateway refuses before any function runs.
    #[error("{message}")]
    Gateway { status: u16, code: Code, message: String },
    /// 409: another request with the same `Idempotency-Key` is still running.
    #[error("{message}")]
    Conflict { message: String },
    /// 429: too many requests (the account's rate limit, DynamoDB throttling us, or an endpoint
    /// changed by too many requests at once); `retry_after` seconds when known (`Retry-After`).
    #[error("{message}")]
    RateLimited { message: String, retry_after: Option<u64> },
    /// 500: our fault. The message is generic; the cause is logged, never sent.
    #[error("{message}")]
    Internal { message: String },
}

impl ApiError {
    /// A 400 about one parameter.
    pub fn invalid(code: Code, param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest { code, message: message.into(), param: Some(param.into()) }
    }

    /// A 400 about the request as a whole.
    pub fn request(code: Code, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest { code, message: message.into(), param: None }
    }

    pub fn unknown_parameter(param: &str) -> Self {
        let param = shorten(param);
        ApiError::invalid(Code::ParameterUnknown, &param, format!("Received unknown parameter: {param}"))
    }

    /// No `kind` with this id; `param` names where the id came from.
    pub fn not_found(kind: &str, id: &str, param: &str) -> Self {
        ApiError::NotFound { message: format!("No such {kind}: '{}'", shorten(id)), param: Some(param.to_owned()) }
    }

    pub fn authentication(code: Code, message: impl Into<String>) -> Self {
        ApiError::Authentication { code, message: message.into() }
    }

    pub fn internal() -> Self {
        ApiError::Internal { message: "An unexpected error occurred on our side. Please retry the request.".to_owned() }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidRequest { .. } | ApiError::Idempotency { .. } => 400,
            ApiError::Authentication { .. } => 401,
            ApiError::Permission { .. } => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::Gateway { status, .. } => *status,
            ApiError::Conflict { .. } => 409,
            ApiError::RateLimited { .. } => 429,
            ApiError::Internal { .. } => 500,
        }
    }

    /// `error.type`, `error.code` and `error.param`.
    fn parts(&self) -> (&'static str, Option<Code>, Option<&str>) {
        match self {
            ApiError::InvalidRequest { code, param, .. } => ("invalid_request_error", Some(*code), param.as_deref()),
            ApiError::Idempotency { .. } => ("idempotency_error", Some(Code::IdempotencyKeyReused), None),
            ApiError::Authentication { code, .. } => ("authentication_error", Some(*code), None),
            ApiError::Permission { .. } => ("permission_error", Some(Code::InsufficientPermissions), None),
            ApiError::NotFound { param: None, .. } => ("invalid_request_error", None, None),
            ApiError::NotFound { param, .. } => ("invalid_request_error", Some(Code::ResourceMissing), param.as_deref()),
            ApiError::Gateway { code, .. } => ("invalid_request_error", Some(*code), None),
            ApiError::Conflict { .. } => ("idempotency_error", Some(Code::IdempotencyKeyInUse), None),
            ApiError::RateLimited { .. } => ("rate_limit_error", Some(Code::RateLimit), None),
            ApiError::Internal { .. } => ("api_error", None, None),
        }
    }

    /// The response body. `code` and `param` are always present, `null` when they do not apply.
    pub fn body(&self) -> Value {
        let (error_type, code, param) = self.parts();
        json!({
            "error": {
                "type": error_type,
                "code": code.map(Code::as_str),
                "message": self.to_string(),
                "param": param,
            }
        })
    }
}

/// Input echoed in an error message, at most 64 characters (then `…`): a request may carry
/// kilobytes where an id or a name belongs, and the error should not send them back.
pub fn shorten(v: &str) -> String {
    if v.chars().count() > 64 { format!("{}…", v.chars().take(64).collect::<String>()) } else { v.to_owned() }
}

/// A value that does not parse, as the API answers it: a 400 naming the parameter.
impl From<crate::model::Invalid> for ApiError {
    fn from(e: crate::model::Invalid) -> Self {
        let code = match e.kind {
            crate::model::InvalidKind::Parameter => Code::ParameterInvalid,
            crate::model::InvalidKind::Url => Code::UrlInvalid,
        };
        ApiError::invalid(code, e.param, e.message)
    }
}

/// A store failure as the API answers it: throttling is a 429 to retry with backoff, anything else
/// a 500 (logged here with its cause; the body never shows it).
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "store error");
        match err {
            StoreError::Throttled(_) => {
                ApiError::RateLimited { message: "Too many requests hit the API too quickly. Please retry with backoff.".to_owned(), retry_after: None }
            }
            _ => ApiError::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_stripe_bodies() {
        let e = ApiError::invalid(Code::ParameterInvalidInteger, "limit", "Invalid integer: abc");
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
        let auth = ApiError::authentication(Code::ApiKeyInvalid, "no");
        assert_eq!(auth.status(), 401);
        assert_eq!(auth.body()["error"]["type"], "authentication_error");
        assert_eq!(auth.body()["error"]["param"], Value::Null);
        assert_eq!(ApiError::internal().status(), 500);
        assert_eq!(ApiError::internal().body()["error"]["type"], "api_error");
        let too_long = ApiError::Gateway { status: 414, code: Code::UriTooLong, message: "long".into() };
        assert_eq!((too_long.status(), too_long.body()["error"]["code"].as_str()), (414, Some("uri_too_long")));
    }
}
