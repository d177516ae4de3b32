//! `paygate dev`'s stand-in for API Gateway (HTTP API, payload 2.0) in front of `paygate::http`'s
//! router, the one the Lambdas run: what API Gateway refuses itself (URLs over 8 KiB, bodies over
//! 1 MiB), and the authorizer Lambda's own function run on the same payload API Gateway sends it,
//! its context handed to the route as API Gateway hands it.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequestContext};
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use paygate::auth::authorize;
use paygate::store::api_keys::ApiKeyStore;
use paygate::error::{ApiError, Code};
use paygate::http::{Api, RequestId, router, with_request_ids};

/// Longest request target (path and query) accepted.
const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Everything the API needs, built once: the handlers' state and the authorizer's key store.
#[derive(Debug, Clone)]
pub struct Functions {
    pub api: Arc<Api>,
    pub keys: ApiKeyStore,
}

/// The whole API as API Gateway and the Lambdas serve it.
pub fn app(functions: Functions) -> axum::Router {
    let routes = router(functions.api, None).route_layer(from_fn_with_state(functions.keys, authorizer)).layer(from_fn(limits));
    with_request_ids(routes)
}

/// API Gateway's own limits, answered before any function runs.
async fn limits(req: Request, next: Next) -> Response {
    if req.uri().path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return refused(414, Code::UriTooLong, format!("The request URL is longer than {MAX_URI_BYTES} bytes."));
    }
    let (parts, body) = req.into_parts();
    match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(_) => refused(413, Code::RequestTooLarge, format!("The request body is larger than {MAX_BODY_BYTES} bytes.")),
    }
}

fn refused(status: u16, code: Code, message: String) -> Response {
    ApiError::Gateway { status, code, message }.into_response()
}

/// The authorizer, on a matched route: its decision goes to the route as the request context's
/// `authorizer` fields, where the Lambdas find it.
async fn authorizer(State(keys): State<ApiKeyStore>, path: MatchedPath, mut req: Request, next: Next) -> Response {
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(format!("{} {}", req.method(), path.as_str()));
    context.stage = Some("$default".to_owned());
    context.request_id = req.extensions().get::<RequestId>().map(|r| r.0.trim_start_matches("req_").to_owned());
    context.domain_name = header(&req, http::header::HOST);
    context.time_epoch = chrono_now_ms();
    context.http.method = req.method().clone();
    context.http.path = Some(req.uri().path().to_owned());
    context.http.protocol = Some("HTTP/1.1".to_owned());
    context.http.source_ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    context.http.user_agent = header(&req, http::header::USER_AGENT);

    let mut auth_req = ApiGatewayV2CustomAuthorizerV2Request::default();
    auth_req.version = Some("2.0".to_owned());
    auth_req.type_ = Some("REQUEST".to_owned());
    auth_req.route_key = context.route_key.clone();
    auth_req.raw_path = Some(req.uri().path().to_owned());
    auth_req.raw_query_string = Some(req.uri().query().unwrap_or("").to_owned());
    // `http` header names are lower case already, as payload 2.0 sends them.
    auth_req.headers = req.headers().clone();
    auth_req.request_context = context.clone();
    let decision = authorize(&keys, &auth_req).await;
    if !decision.is_authorized {
        return ApiError::Gateway { status: 403, code: Code::ApiKeyInvalid, message: "Forbidden.".to_owned() }.into_response();
    }
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.fields = decision.context;
    context.authorizer = Some(authorizer);
    req.extensions_mut().insert(RequestContext::ApiGatewayV2(context));
    next.run(req).await
}

fn header(req: &Request, name: http::header::HeaderName) -> Option<String> {
    req.headers().get(name).and_then(|h| h.to_str().ok()).map(str::to_owned)
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    functions: Functions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(functions).into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await
}
