//! `Idempotency-Key` on every POST, as one layer around the handlers: the key is claimed for the
//! request's path and parsed parameters, a replay answers the stored response, and the first
//! response is stored (`store::idempotency` holds the records).

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method};
use serde_json::Value;

use crate::error::{ApiError, Code};
use crate::http::Api;
use crate::http::extract::read_body;
use crate::http::params::Params;
use crate::store::idempotency::{Claim, IdempotencyKey, MAX_KEY_LEN, fingerprint};

pub async fn layer(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    match idempotent(&api, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn idempotent(api: &Arc<Api>, req: Request, next: Next) -> Result<Response, Response> {
    let (mut parts, body) = req.into_parts();
    let refuse = |e: ApiError| e.into_response();
    let principal = crate::http::extract::admit(&mut parts, api).await.map_err(refuse)?.principal.clone();
    let bytes = read_body(body).await.map_err(refuse)?;
    let params = Params::from_body(&parts.headers, &bytes).map_err(refuse)?;
    let key = key_of(parts.headers.get("idempotency-key")).map_err(refuse)?;
    let print = fingerprint(&[parts.uri.path()], &Value::Object(params.as_json().clone()));
    // Parsed once: the handler's `Form` takes them from here.
    parts.extensions.insert(params);
    let claim = api.idempotency.claim(&principal, key.as_ref(), &print).await.map_err(|e| refuse(e.into()))?;
    let key = match claim {
        Claim::Replay(status, body) => {
            let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
            let mut response = (status, axum::Json(body)).into_response();
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
        Claim::NoKey => return Ok(next.run(Request::from_parts(parts, Body::from(bytes))).await),
        Claim::Fresh(key) => key,
        refused => return Err(refusal(refused).into_response()),
    };
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (head, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // A new API key is shown once: a replay answers the key without it.
    if head.extensions.get::<crate::http::api_keys::ShownOnce>().is_some()
        && let Some(object) = json.as_object_mut()
    {
        object.remove("secret");
    }
    if let Err(e) = api.idempotency.finish(&principal, &key, head.status.as_u16(), &json).await {
        tracing::error!(error = %e, "could not store the idempotent response");
    }
    Ok(Response::from_parts(head, Body::from(body)))
}

/// The `Idempotency-Key` header, if the request has one; a 400 for anything but 1 to
/// [`MAX_KEY_LEN`] printable ASCII characters, never ignored.
pub fn key_of(value: Option<&HeaderValue>) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    IdempotencyKey::parse(value.as_bytes()).map(Some).ok_or_else(|| {
        ApiError::invalid(Code::IdempotencyKeyInvalid, "Idempotency-Key", format!("Idempotency keys are 1 to {MAX_KEY_LEN} printable ASCII characters."))
    })
}

/// The answer to a claim that does not run the request.
pub fn refusal(claim: Claim) -> ApiError {
    match claim {
        Claim::Mismatch(key) => ApiError::Idempotency {
            message: format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                 Try using a key other than '{key}' if you meant to execute a different request."
            ),
        },
        Claim::InProgress => {
            ApiError::Conflict { message: "There is currently another in-progress request using this Idempotency-Key; retry later.".to_owned() }
        }
        // Released, or one that runs (never passed here): our side, try again.
        _ => ApiError::internal(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_and_never_ignored() {
        let ok = HeaderValue::from_static("order-1234 retry");
        assert_eq!(key_of(Some(&ok)).unwrap().unwrap().as_str(), "order-1234 retry");
        assert_eq!(key_of(None).unwrap(), None);
        let non_ascii = HeaderValue::from_bytes("clé-ünïcode".as_bytes()).unwrap();
        let empty = HeaderValue::from_static("");
        let long = HeaderValue::from_str(&"k".repeat(256)).unwrap();
        for bad in [non_ascii, empty, long] {
            let e = key_of(Some(&bad)).unwrap_err();
            assert_eq!(e.status(), 400);
            assert_eq!(e.body()["error"]["param"], "Idempotency-Key");
        }
    }
}
