//! The HTTP API: one axum router built from one route table ([`table`]). Every HTTP Lambda runs
//! its function's part of it with `lambda_http::run` ([`lambda`]); `paygate dev` serves all of it
//! behind a middleware that does what API Gateway does (`cli/src/gateway.rs`). Every route
//! authenticates its caller itself (`auth`, through the `Principal` extractor).
//! template.yaml is the other place routes are written; `tests/it/template_routes.rs` checks the two.

pub mod api_keys;
pub mod endpoints;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod list_params;
pub mod objects;
pub mod params;
pub mod rate_limit;

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::handler::Handler;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use http::{HeaderValue, Method};
use lambda_http::request::RequestContext;

use crate::auth::Authenticator;
use crate::error::{ApiError, Code};
use crate::model::api_key::{Needs, Resource};
use crate::store::EventStore;
use crate::store::api_keys::ApiKeyStore;
use crate::store::deliveries::DeliveryStore;
use crate::store::endpoints::EndpointStore;
use crate::store::idempotency::IdempotencyStore;
use crate::webhook::fanout::Fanout;
use crate::webhook::ssrf::UrlPolicy;

/// What the handlers need, built once (in a Lambda's `main`, or by `paygate dev`).
#[derive(Debug, Clone)]
pub struct Api {
    /// Who a request speaks for (every route authenticates; there is no separate authorizer).
    pub auth: Arc<Authenticator>,
    /// Each account's requests a second (`rate_limit`).
    pub limiter: Arc<rate_limit::RateLimiter>,
    /// The per-second request counts the instances share (`rate_limit::SharedWindows`).
    pub rate_windows: crate::store::rate_windows::RateWindowStore,
    /// Each address's failed authentications a minute (`rate_limit`).
    pub failed_auths: Arc<rate_limit::FailedAuths>,
    /// The account's keys (`/v1/api_keys`); the authenticator reads the same table.
    pub keys: ApiKeyStore,
    pub events: EventStore,
    pub endpoints: EndpointStore,
    pub idempotency: IdempotencyStore,
    pub deliveries: DeliveryStore,
    /// Each endpoint's delivery health (its breaker), shown on the endpoint.
    pub health: crate::store::health::HealthStore,
    pub fanout: Fanout,
    pub policy: UrlPolicy,
}

/// The template's HTTP functions: each serves the routes the table gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    GetEvent,
    ListEvents,
    WebhookEndpoints,
    ApiKeys,
}

impl Function {
    /// The function's logical id in template.yaml.
    pub fn logical_id(self) -> &'static str {
        match self {
            Function::GetEvent => "GetEventFunction",
            Function::ListEvents => "ListEventsFunction",
            Function::WebhookEndpoints => "WebhookEndpointsFunction",
            Function::ApiKeys => "ApiKeysFunction",
        }
    }
}

/// One route: `METHOD /path` (API Gateway's and axum's path syntax agree), its function, and what
/// the caller's key needs to be allowed it.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub function: Function,
    pub needs: Needs,
}

impl Route {
    /// API Gateway's route key, `GET /v1/events/{id}`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

type Handlers = MethodRouter<Arc<Api>>;

/// A route of the table: its handler sees what it [`Needs`] as a request extension, which the
/// `Principal` extractor checks the caller's key against.
fn route<H: Handler<T, Arc<Api>>, T: 'static>(method: Method, path: &'static str, function: Function, needs: Needs, handler: H) -> (Route, Handlers) {
    let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
    (Route { method, path, function, needs }, on(filter, handler).layer(axum::Extension(needs)))
}

/// Every route of the API, its function and its handler: the one place routes are written.
pub fn table() -> Vec<(Route, Handlers)> {
    use Function::*;
    use Resource as R;
    let (read, write) = (Needs::read, Needs::write);
    vec![
        route(Method::GET, "/v1/events", ListEvents, read(R::Events), events::list),
        route(Method::GET, "/v1/events/{id}", GetEvent, read(R::Events), events::retrieve),
        route(Method::GET, "/v1/events/{id}/deliveries", WebhookEndpoints, read(R::WebhookEndpoints), events::deliveries),
        route(Method::GET, "/v1/webhook_endpoints", WebhookEndpoints, read(R::WebhookEndpoints), endpoints::list),
        route(Method::POST, "/v1/webhook_endpoints", WebhookEndpoints, write(R::WebhookEndpoints), endpoints::create),
        route(Method::GET, "/v1/webhook_endpoints/{id}", WebhookEndpoints, read(R::WebhookEndpoints), endpoints::retrieve),
        route(Method::POST, "/v1/webhook_endpoints/{id}", WebhookEndpoints, write(R::WebhookEndpoints), endpoints::update),
        route(Method::DELETE, "/v1/webhook_endpoints/{id}", WebhookEndpoints, write(R::WebhookEndpoints), endpoints::delete),
        route(Method::POST, "/v1/webhook_endpoints/{id}/rotate_secret", WebhookEndpoints, write(R::WebhookEndpoints), endpoints::rotate_secret),
        route(Method::POST, "/v1/webhook_endpoints/{id}/resend", WebhookEndpoints, write(R::WebhookEndpoints), endpoints::resend),
        route(Method::POST, "/v1/webhook_endpoints/{id}/recover", WebhookEndpoints, write(R::WebhookEndpoints), endpoints::recover),
        route(Method::GET, "/v1/webhook_endpoints/{id}/stats", WebhookEndpoints, read(R::WebhookEndpoints), endpoints::stats),
        route(Method::GET, "/v1/api_keys", ApiKeys, read(R::ApiKeys), api_keys::list),
        route(Method::POST, "/v1/api_keys", ApiKeys, write(R::ApiKeys), api_keys::create),
        route(Method::POST, "/v1/api_keys/{id}/roll", ApiKeys, write(R::ApiKeys), api_keys::roll),
        route(Method::POST, "/v1/api_keys/{id}/revoke", ApiKeys, write(R::ApiKeys), api_keys::revoke),
    ]
}

/// Every route, without handlers.
pub fn routes() -> Vec<Route> {
    table().into_iter().map(|(r, _)| r).collect()
}

/// The routes of `function` (all of them for `None`), with what every route shares: HEAD refused
/// as API Gateway refuses it, `Idempotency-Key` on POSTs, and 404/405 in Stripe's shape.
/// Without request ids: see [`with_request_ids`].
pub fn router(api: Arc<Api>, function: Option<Function>) -> Router {
    let mut router = Router::new();
    for (route, handlers) in table() {
        if function.is_none_or(|f| f == route.function) {
            router = router.route(route.path, handlers);
        }
    }
    router
        .route_layer(from_fn_with_state(api.clone(), idempotency::layer))
        .route_layer(from_fn(refuse_head))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(no_store))
        .with_state(api)
}

/// Every API response, errors included: never stored by a cache (some carry secrets) and never
/// sniffed as another content type.
async fn no_store(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Sets `Request-Id` on every response: API Gateway's request id prefixed as Stripe's are, or a new
/// one. Outermost, so that what any layer answers carries one.
pub fn with_request_ids(router: Router) -> Router {
    router.layer(from_fn(request_id))
}

/// What an HTTP Lambda runs: its function's routes, behind the stage prefix API Gateway puts in
/// front of the path for a named stage (`/dev/v1/events`).
pub fn lambda(api: Arc<Api>, function: Function) -> LambdaService {
    lambda_service(router(api, Some(function)))
}

/// What `lambda_http::run` runs.
pub type LambdaService = tower::util::MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request>;

/// Any router as an HTTP Lambda serves it: with request ids, behind the stage prefix (the dashboard
/// function's too).
pub fn lambda_service(router: Router) -> LambdaService {
    use tower::ServiceExt;
    with_request_ids(router).map_request(without_stage as fn(_) -> _)
}

/// `/dev/v1/events` → `/v1/events` when the request came through the stage `dev`.
fn without_stage(mut req: lambda_http::Request) -> lambda_http::Request {
    let stage = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| s != "$default") else { return req };
    let prefix = format!("/{stage}");
    let uri = req.uri();
    let Some(rest) = uri.path().strip_prefix(&prefix).filter(|r| r.starts_with('/')) else { return req };
    let path_and_query = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(new) = http::Uri::from_parts(parts) {
        *req.uri_mut() = new;
    }
    req
}

/// The request's id, as `Request-Id` gives it back.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

async fn request_id(mut req: Request, next: Next) -> Response {
    let from_gateway = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    let id = format!("req_{}", from_gateway.unwrap_or_else(|| ulid::Ulid::generate().to_string()));
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(req).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// API Gateway does not route HEAD to a GET route; neither do we.
async fn refuse_head(path: MatchedPath, req: Request, next: Next) -> Response {
    if req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let allowed: Vec<String> = routes().iter().filter(|r| r.path == path.as_str()).map(|r| r.method.to_string()).collect();
    let mut response = ApiError::Gateway {
        status: 405,
        code: Code::MethodNotAllowed,
        message: format!("HEAD is not allowed on {}; use {}.", req.uri().path(), allowed.join(" or ")),
    }
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(http::header::ALLOW, value);
    }
    response
}

async fn not_found(method: Method, uri: http::Uri) -> ApiError {
    ApiError::NotFound { message: format!("Unrecognized request URL ({method}: {}).", uri.path()), param: None }
}

/// axum sets `Allow`.
async fn method_not_allowed(method: Method, uri: http::Uri) -> ApiError {
    ApiError::Gateway { status: 405, code: Code::MethodNotAllowed, message: format!("{method} is not allowed on {}.", uri.path()) }
}

/// The one place an error becomes a response (logged: a 5xx as an error, the rest as refusals).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status >= 500 {
            tracing::error!(status, "request failed");
        } else {
            tracing::info!(status, code = ?self.body()["error"]["code"], "request refused");
        }
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        if let ApiError::RateLimited { retry_after: Some(secs), .. } = self {
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
