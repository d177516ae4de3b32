//! `paygate dev`'s stand-in for API Gateway (HTTP API) in front of `paygate::http`'s router, the one
//! the Lambdas run, and of the dashboard's (`paygate_dashboard`): what API Gateway refuses itself
//! (URLs over 8 KiB, bodies over 1 MiB).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use paygate::error::{ApiError, Code};
use paygate::http::extract::SourceIp;
use paygate::http::{Api, router, with_request_ids};

/// Longest request target (path and query) accepted.
const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Everything the API needs, built once: the handlers' state.
#[derive(Debug, Clone)]
pub struct Functions {
    pub api: Arc<Api>,
}

/// The whole API as API Gateway and the Lambdas serve it, and the dashboard at `/dashboard`.
pub fn app(functions: Functions) -> axum::Router {
    with_request_ids(paygate_dashboard::router().merge(router(functions.api, None)).layer(from_fn(limits)))
}

/// API Gateway's own limits, answered before any function runs; and the caller's address, as API
/// Gateway's `sourceIp` gives it.
async fn limits(req: Request, next: Next) -> Response {
    if req.uri().path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return refused(414, Code::UriTooLong, format!("The request URL is longer than {MAX_URI_BYTES} bytes."));
    }
    let (mut parts, body) = req.into_parts();
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied() {
        parts.extensions.insert(SourceIp(peer.ip()));
    }
    match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(_) => refused(413, Code::RequestTooLarge, format!("The request body is larger than {MAX_BODY_BYTES} bytes.")),
    }
}

fn refused(status: u16, code: Code, message: String) -> Response {
    ApiError::Gateway { status, code, message }.into_response()
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    functions: Functions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(functions).into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await
}
