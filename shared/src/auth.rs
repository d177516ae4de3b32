//! Authentication: the `Authorization` header → a principal (keys are stored only as SHA-256
//! hashes, `store::api_keys`), and the authorizer's decision.
//!
//! API Gateway HTTP APIs cannot shape the body of a denied request, so the authorizer always answers
//! `isAuthorized: true` with either `{account_id, mode}` or `{auth_error, auth_message}` in its context,
//! and every handler turns the context into a `Principal` or a Stripe-style 401 (fail closed: a
//! request without a valid context is refused). A store that fails or hangs (the SDK's timeouts end
//! it within seconds) is decided the same way, with `auth_error: api_error`: the handler answers a
//! Stripe-style 500 `api_error`, where an authorizer error would give API Gateway's own body. The
//! authorizer's results are not cached, so the next request asks the store again.

use std::collections::HashMap;

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use serde_json::Value;

use crate::error::{ApiError, Code};
use crate::ids::{ApiKey, Principal};
use crate::store::api_keys::ApiKeyStore;

const CTX_ACCOUNT: &str = "account_id";
const CTX_MODE: &str = "mode";
const CTX_ERROR: &str = "auth_error";
const CTX_MESSAGE: &str = "auth_message";
/// `auth_error` when the key could not be checked (the store failed): a 500 `api_error`, not a 401.
const CTX_API_ERROR: &str = "api_error";

/// Who the `Authorization` header's value speaks for, or the error to answer: a 401, or the
/// store's failure (a 500 or 429).
pub async fn authenticate(keys: &ApiKeyStore, authorization: Option<&str>) -> Result<Principal, ApiError> {
    let key = parse_authorization(authorization)?;
    match keys.find(&key).await? {
        None => Err(auth_error(Code::ApiKeyInvalid, format!("Invalid API Key provided: {key}"))),
        Some(stored) if stored.revoked => Err(auth_error(Code::ApiKeyExpired, format!("Expired API Key provided: {key}"))),
        // Cannot happen for keys we issued (the mode is part of the hashed key); refuse anyway.
        Some(stored) if stored.principal.mode != key.mode() => Err(auth_error(Code::ApiKeyInvalid, format!("Invalid API Key provided: {key}"))),
        Some(stored) => Ok(stored.principal),
    }
}

/// The HTTP API Lambda authorizer (payload 2.0, simple responses): always `isAuthorized: true`, with
/// the decision in the context (see the module docs), a DynamoDB failure included.
pub async fn authorize(
    keys: &ApiKeyStore,
    req: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<HashMap<String, Value>> {
    let header = req.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let decision = authenticate(keys, header).await;
    match &decision {
        Ok(p) => tracing::info!(account_id = %p.account, mode = %p.mode, "authorized"),
        Err(e) => tracing::info!(reason = %e, "not authorized"),
    }
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    response.is_authorized = true;
    response.context = authorizer_context(&decision);
    response
}

fn auth_error(code: Code, message: String) -> ApiError {
    ApiError::Authentication { code, message }
}

/// `Bearer sk_…` (scheme case-insensitive) → the key.
pub fn parse_authorization(value: Option<&str>) -> Result<ApiKey, ApiError> {
    let missing = || {
        auth_error(
            Code::ApiKeyMissing,
            "You did not provide an API key. You need to provide your API key in the Authorization header, \
             using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
                .to_owned(),
        )
    };
    let value = value.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(missing)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    token.trim().parse::<ApiKey>().map_err(|_| {
        auth_error(
            Code::ApiKeyInvalid,
            "Invalid API Key provided. Secret keys look like sk_test_… or sk_live_….".to_owned(),
        )
    })
}

/// The authorizer's context for a decision.
pub fn authorizer_context(decision: &Result<Principal, ApiError>) -> HashMap<String, Value> {
    match decision {
        Ok(p) => HashMap::from([
            (CTX_ACCOUNT.to_owned(), Value::String(p.account.to_string())),
            (CTX_MODE.to_owned(), Value::String(p.mode.to_string())),
        ]),
        Err(e) => {
            let code = match e {
                ApiError::Authentication { code, .. } => code.as_str(),
                ApiError::Internal { .. } | ApiError::RateLimited { .. } => CTX_API_ERROR,
                _ => Code::ApiKeyInvalid.as_str(),
            };
            HashMap::from([
                (CTX_ERROR.to_owned(), Value::String(code.to_owned())),
                (CTX_MESSAGE.to_owned(), Value::String(e.to_string())),
            ])
        }
    }
}

/// Reads the authorizer's context back: a principal, or the 401 to answer. Anything else fails closed.
pub fn principal_from_context(ctx: Option<&HashMap<String, Value>>) -> Result<Principal, ApiError> {
    let refused = |code: Code, message: &str| Err(auth_error(code, message.to_owned()));
    let Some(ctx) = ctx else {
        return refused(Code::ApiKeyMissing, "No authorizer context: the request was not authenticated.");
    };
    let text = |k: &str| ctx.get(k).and_then(Value::as_str);
    if let Some(code) = text(CTX_ERROR) {
        let code = match code {
            CTX_API_ERROR => return Err(ApiError::internal()),
            "api_key_missing" => Code::ApiKeyMissing,
            "api_key_expired" => Code::ApiKeyExpired,
            _ => Code::ApiKeyInvalid,
        };
        return refused(code, text(CTX_MESSAGE).unwrap_or("Invalid API Key provided."));
    }
    match (text(CTX_ACCOUNT).map(str::parse), text(CTX_MODE).map(str::parse)) {
        (Some(Ok(account)), Some(Ok(mode))) => Ok(Principal { account, mode }),
        _ => refused(Code::ApiKeyInvalid, "Invalid authorizer context."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, Mode};

    #[test]
    fn authorization_header_parsing() {
        let key = ApiKey::generate(Mode::Test);
        let ok = parse_authorization(Some(&format!("Bearer {}", key.expose()))).unwrap();
        assert_eq!(ok, key);
        assert!(parse_authorization(Some(&format!("bearer  {}", key.expose()))).is_ok());
        for (value, code) in [
            (None, "api_key_missing"),
            (Some(""), "api_key_missing"),
            (Some("Basic abc"), "api_key_missing"),
            (Some("Bearer"), "api_key_missing"),
            (Some("Bearer pk_test_abcd"), "api_key_invalid"),
            (Some("Bearer sk_test_"), "api_key_invalid"),
        ] {
            match parse_authorization(value) {
                Err(ApiError::Authentication { code: c, .. }) => assert_eq!(c.as_str(), code, "{value:?}"),
                other => panic!("{value:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn context_round_trip_fails_closed() {
        let p = Principal { account: AccountId::generate(), mode: Mode::Live };
        let ctx = authorizer_context(&Ok(p.clone()));
        assert_eq!(principal_from_context(Some(&ctx)).unwrap(), p);
        let denied = authorizer_context(&Err(auth_error(Code::ApiKeyExpired, "Expired".into())));
        let err = principal_from_context(Some(&denied)).unwrap_err();
        assert_eq!(err.status(), 401);
        assert_eq!(err.body()["error"]["code"], "api_key_expired");
        assert!(principal_from_context(None).is_err());
        let failed = authorizer_context(&Err(ApiError::internal()));
        let err = principal_from_context(Some(&failed)).unwrap_err();
        assert_eq!(err.status(), 500, "a store failure is ours, not the key's");
        assert_eq!(err.body()["error"]["type"], "api_error");
        assert!(principal_from_context(Some(&HashMap::new())).is_err());
        let forged = HashMap::from([(CTX_ACCOUNT.to_owned(), Value::String("acct_x".into()))]);
        assert!(principal_from_context(Some(&forged)).is_err());
    }
}
