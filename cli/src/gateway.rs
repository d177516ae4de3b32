//! A local stand-in for API Gateway (HTTP API, payload 2.0): routes a request exactly as the deployed
//! API does (authorizer first, then the route's function), building the same events the Lambdas
//! receive and calling the very same handler functions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequest,
    ApiGatewayV2httpRequestContext,
};
use axum::body::{Body as AxumBody, to_bytes};
use axum::extract::State;
use axum::response::Response as AxumResponse;
use http::{Method, StatusCode};
use lambda_http::Body;
use lambda_http::request::LambdaRequest;
use paygate::api::{get_event, list_events_handler};
use paygate::auth::{ApiKeyStore, authorize};
use paygate::store::EventStore;
use paygate::webhook::api::WebhookApi;
use serde_json::json;

/// Everything the functions behind the API need, built once.
#[derive(Debug, Clone)]
pub struct Functions {
    pub events: EventStore,
    pub keys: ApiKeyStore,
    pub webhooks: WebhookApi,
}

/// The functions behind the routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    GetEvent,
    ListEvents,
    WebhookEndpoints,
}

/// The routes of `template.yaml`'s HTTP API: route key and function.
const ROUTES: &[(&str, Function)] = &[
    ("GET /v1/events", Function::ListEvents),
    ("GET /v1/events/{id}", Function::GetEvent),
    ("GET /v1/events/{id}/deliveries", Function::WebhookEndpoints),
    ("GET /v1/webhook_endpoints", Function::WebhookEndpoints),
    ("POST /v1/webhook_endpoints", Function::WebhookEndpoints),
    ("GET /v1/webhook_endpoints/{id}", Function::WebhookEndpoints),
    ("POST /v1/webhook_endpoints/{id}", Function::WebhookEndpoints),
    ("DELETE /v1/webhook_endpoints/{id}", Function::WebhookEndpoints),
    ("POST /v1/webhook_endpoints/{id}/rotate_secret", Function::WebhookEndpoints),
    ("POST /v1/webhook_endpoints/{id}/resend", Function::WebhookEndpoints),
    ("POST /v1/webhook_endpoints/{id}/recover", Function::WebhookEndpoints),
];

/// Every route key the local API serves (`GET /v1/events` …).
pub fn route_keys() -> impl Iterator<Item = &'static str> {
    ROUTES.iter().map(|(key, _)| *key)
}

/// The route that `method path` matches, as API Gateway matches it, with its path parameters.
fn route(method: &Method, path: &str) -> Option<(&'static str, Function, HashMap<String, String>)> {
    ROUTES.iter().find_map(|(key, function)| {
        let (m, template) = key.split_once(' ')?;
        if m != method.as_str() {
            return None;
        }
        Some((*key, *function, path_matches(template, path)?))
    })
}

/// The methods that have a route for `path` (for a 405's `Allow`).
fn methods_for(path: &str) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter_map(|(key, _)| key.split_once(' '))
        .filter(|(_, template)| path_matches(template, path).is_some())
        .map(|(m, _)| m)
        .collect()
}

/// The path parameters when `path` fits the route `template`.
fn path_matches(template: &str, path: &str) -> Option<HashMap<String, String>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    {
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            return None;
        }
        let mut params = HashMap::new();
        for (t, s) in parts.iter().zip(&segments) {
            match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(name) if !s.is_empty() => {
                    params.insert(name.to_owned(), percent_decode(s));
                }
                Some(_) => return None,
                None if t == s => {}
                None => return None,
            }
        }
        Some(params)
    }
}

/// API Gateway passes path parameters percent-decoded.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Longest request target (path and query) accepted.
const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 1 << 20;

/// An error the gateway answers itself (no function ran), in the same Stripe shape and with a
/// `Request-Id`, as every response of the API has.
fn gateway_error(status: u16, code: Option<&str>, message: String) -> AxumResponse {
    let body = json!({"error": {"type": "invalid_request_error", "code": code, "param": null, "message": message}});
    AxumResponse::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("request-id", format!("req_{}", ulid::Ulid::generate()))
        .body(AxumBody::from(body.to_string()))
        .expect("valid response")
}

/// Handles one HTTP request as API Gateway + the Lambdas would.
pub async fn handle(functions: &Functions, req: axum::extract::Request, peer: Option<SocketAddr>) -> AxumResponse {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    if parts.uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return gateway_error(414, Some("uri_too_long"), format!("The request URL is longer than {MAX_URI_BYTES} bytes."));
    }
    let Some((route_key, function, path_parameters)) = route(&parts.method, &path) else {
        let allowed = methods_for(&path);
        if allowed.is_empty() {
            return gateway_error(404, None, format!("Unrecognized request URL ({}: {}).", parts.method, path));
        }
        let mut response = gateway_error(
            405,
            Some("method_not_allowed"),
            format!("{} is not allowed on {path}; use {}.", parts.method, allowed.join(" or ")),
        );
        response.headers_mut().insert(http::header::ALLOW, allowed.join(", ").parse().expect("method names"));
        return response;
    };
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return gateway_error(413, Some("request_too_large"), format!("The request body is larger than {MAX_BODY_BYTES} bytes.")),
    };
    let request_id = ulid::Ulid::generate().to_string();
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.to_owned());
    context.stage = Some("$default".to_owned());
    context.request_id = Some(request_id);
    context.domain_name = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned);
    context.time_epoch = chrono_now_ms();
    context.http.method = parts.method.clone();
    context.http.path = Some(path.clone());
    context.http.protocol = Some("HTTP/1.1".to_owned());
    context.http.source_ip = peer.map(|p| p.ip().to_string());
    context.http.user_agent = parts.headers.get(http::header::USER_AGENT).and_then(|h| h.to_str().ok()).map(str::to_owned);

    // 1. The authorizer, with the same payload API Gateway sends it.
    let mut auth_req = ApiGatewayV2CustomAuthorizerV2Request::default();
    auth_req.version = Some("2.0".to_owned());
    auth_req.type_ = Some("REQUEST".to_owned());
    auth_req.route_key = Some(route_key.to_owned());
    auth_req.raw_path = Some(path.clone());
    auth_req.raw_query_string = Some(raw_query.clone());
    // `http` header names are lower case already, as payload 2.0 sends them.
    auth_req.headers = parts.headers.clone();
    auth_req.path_parameters = path_parameters.clone();
    auth_req.request_context = context.clone();
    let decision = authorize(&functions.keys, &auth_req).await;
    if !decision.is_authorized {
        return gateway_error(403, None, "Forbidden.".to_owned());
    }

    // 2. The route's function, with the payload-2.0 event carrying the authorizer's context.
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.fields = decision.context;
    context.authorizer = Some(authorizer);
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(route_key.to_owned());
    event.raw_path = Some(path);
    event.raw_query_string = Some(raw_query);
    event.headers = parts.headers.clone();
    event.path_parameters = path_parameters;
    event.request_context = context;
    event.body = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
    let request: lambda_http::Request = LambdaRequest::ApiGatewayV2(event).into();
    let response = match function {
        Function::GetEvent => get_event(&functions.events, request).await,
        Function::ListEvents => list_events_handler(&functions.events, request).await,
        Function::WebhookEndpoints => functions.webhooks.handle(request).await,
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut out = AxumResponse::new(AxumBody::from(bytes));
    *out.status_mut() = StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *out.headers_mut() = parts.headers;
    out
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The router: every request goes through [`handle`].
pub fn router(functions: Arc<Functions>) -> axum::Router {
    axum::Router::new()
        .fallback(
            |State(f): State<Arc<Functions>>,
             axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
             req: axum::extract::Request| async move { handle(&f, req, Some(peer)).await },
        )
        .with_state(functions)
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    functions: Arc<Functions>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(functions).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
