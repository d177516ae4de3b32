//! The HTTP handlers, as plain async functions over `lambda_http` requests: the Lambdas and the
//! local dev server call the very same functions.

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

use crate::auth::principal_from_context;
use crate::error::ApiError;
use crate::ids::{EventId, Principal};
use crate::list::{ListParams, list_events};
use crate::store::EventStore;

/// `GET /v1/events/{id}`.
pub async fn get_event(store: &EventStore, req: Request) -> Response<Body> {
    let result = async {
        let principal = principal(&req)?;
        no_query_parameters(&req)?;
        let raw = path_param(&req, "id");
        // A malformed id cannot name an event: 404 without reading the table.
        let missing = || ApiError::not_found("event", &raw, "id");
        let id: EventId = raw.parse().map_err(|_| missing())?;
        let event = store.get(&principal, id).await?.ok_or_else(missing)?;
        Ok(serde_json::to_value(event).expect("events serialise"))
    }
    .await;
    respond(&req, result)
}

/// `GET /v1/events`.
pub async fn list_events_handler(store: &EventStore, req: Request) -> Response<Body> {
    let result = async {
        let principal = principal(&req)?;
        let params = ListParams::parse(req.uri().query().unwrap_or(""))?;
        let page = list_events(store, &principal, &params).await?;
        Ok(page.to_json())
    }
    .await;
    respond(&req, result)
}

/// The caller, from the authorizer's context (fails closed).
pub fn principal(req: &Request) -> Result<Principal, ApiError> {
    principal_from_context(authorizer_fields(req))
}

fn authorizer_fields(req: &Request) -> Option<&HashMap<String, Value>> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.authorizer.as_ref().map(|a| &a.fields),
        _ => None,
    }
}

pub fn no_query_parameters(req: &Request) -> Result<(), ApiError> {
    let query = req.uri().query().unwrap_or("");
    match form_urlencoded::parse(query.as_bytes()).next() {
        Some((k, _)) => Err(ApiError::unknown_parameter(&k)),
        None => Ok(()),
    }
}

/// `Request-Id` of a response: API Gateway's request id, prefixed as Stripe's are.
pub fn request_id(req: &Request) -> String {
    let from_gateway = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    format!("req_{}", from_gateway.unwrap_or_else(|| ulid::Ulid::generate().to_string()))
}

/// The one place a result becomes a status and a body (errors in Stripe's shape).
pub fn status_and_body(result: Result<Value, ApiError>) -> (u16, Value) {
    match result {
        Ok(body) => (200, body),
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(status = e.status(), "request failed");
            } else {
                tracing::info!(status = e.status(), code = ?e.body()["error"]["code"], "request refused");
            }
            (e.status(), e.body())
        }
    }
}

/// A result as an HTTP response.
pub fn respond(req: &Request, result: Result<Value, ApiError>) -> Response<Body> {
    let (status, body) = status_and_body(result);
    response(req, status, &body, false)
}

/// A JSON response with `Request-Id` (and `Idempotent-Replayed` when it replays an earlier one).
pub fn response(req: &Request, status: u16, body: &Value, replayed: bool) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("request-id", request_id(req));
    if replayed {
        builder = builder.header("idempotent-replayed", "true");
    }
    builder.body(Body::Text(body.to_string())).expect("valid response")
}

/// The route key API Gateway matched (`POST /v1/webhook_endpoints/{id}`).
pub fn route_key(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.route_key.as_deref(),
        _ => None,
    }
}

/// A path parameter, as API Gateway decoded it.
pub fn path_param(req: &Request, name: &str) -> String {
    req.path_parameters_ref().and_then(|p| p.first(name)).unwrap_or_default().to_owned()
}
