//! What handlers take from a request, already typed: the caller (`Principal`), the query
//! ([`Query`], [`NoQuery`], `ListParams`), the body ([`Form`]) and the path's id ([`PathId`]).
//! A rejection is an [`ApiError`], so it answers in Stripe's shape like everything else.

use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use http::request::Parts;

use crate::auth::{Caller, Presented};
use crate::error::{ApiError, Code};
use crate::http::Api;
use crate::http::params::{MAX_BODY_BYTES, Params};
use crate::http::rate_limit::Count;
use crate::model::api_key::{KeyKind, Needs, Resource};
use crate::model::ids::Principal;
use crate::model::list::ListParams;

/// The caller, admitted ([`admit`]) and checked against what the route [`Needs`] (set by the route
/// table; the idempotency layer, which admits POSTs before it is set, leaves that check to here).
impl FromRequestParts<Arc<Api>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        let caller = admit(parts, api).await?;
        if let Some(needs) = parts.extensions.get::<Needs>().copied() {
            permitted(&caller, needs)?;
        }
        Ok(caller.principal.clone())
    }
}

/// A request's caller once admitted: authenticated and counted against its rate limit.
#[derive(Debug, Clone)]
pub struct Admitted(pub Caller);

/// The caller of the request, from the `Authorization` header (`auth::Authenticator`), counted
/// once against its account's rate limit: the first call authenticates and counts, and keeps the
/// caller in the request ([`Admitted`]); later calls (the handler's, after the idempotency
/// layer's) take it from there.
pub async fn admit(parts: &mut Parts, api: &Api) -> Result<Caller, ApiError> {
    if let Some(Admitted(caller)) = parts.extensions.get::<Admitted>() {
        return Ok(caller.clone());
    }
    let header = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = authenticated(api, header, source_ip(parts)).await?;
    limited(api, &caller.principal).await?;
    parts.extensions.insert(Admitted(caller.clone()));
    Ok(caller)
}

/// A 429 when `principal` is over its rate limit: this instance's bucket, then the count the
/// instances share, added to once a tenth of the limit was served here this second
/// (`rate_limit`'s module docs). A failure to add is logged; the bucket alone applies then.
async fn limited(api: &Api, principal: &Principal) -> Result<(), ApiError> {
    let limit = api.limiter.limit(principal.mode);
    let refusal = |secs: u64| ApiError::RateLimited {
        message: format!("Too many requests for this account in {} mode: at most {limit} a second. Please retry after {secs} s.", principal.mode),
        retry_after: Some(secs),
    };
    api.limiter.take(principal, std::time::Instant::now()).map_err(refusal)?;
    let second = crate::model::ids::unix_now();
    match api.limiter.shared.count(principal, second, limit) {
        Count::Allow => Ok(()),
        Count::Over => Err(refusal(1)),
        Count::Add(n) => {
            match api.rate_windows.add(principal, second, n).await {
                Ok(total) => api.limiter.shared.synced(principal, second, total),
                Err(e) => tracing::warn!(error = %e, "could not add to the shared request count; this instance's limit alone applies"),
            }
            Ok(())
        }
    }
}

/// A 403 unless the caller's key may do what the route needs.
fn permitted(caller: &Caller, needs: Needs) -> Result<(), ApiError> {
    if caller.grant.allows(needs) {
        return Ok(());
    }
    let message = match needs.resource {
        Resource::ApiKeys => format!(
            "The provided key '{}' is a restricted key: managing API keys takes a secret key ({}_{}_…).",
            caller.redacted(),
            KeyKind::Secret.prefix(),
            caller.principal.mode
        ),
        _ => format!(
            "The provided key '{}' does not have the required permissions for this endpoint on account '{}'. Having the '{needs}' permission would allow this request to continue.",
            caller.redacted(),
            caller.principal.account
        ),
    };
    Err(ApiError::Permission { message })
}

/// The caller of a request from `source`. A failed authentication counts against the address
/// (`rate_limit::FailedAuths`); an address past its limit is answered 429 without its key being
/// looked up, unless the key is one this instance already knows is valid.
async fn authenticated(api: &Api, header: Option<&str>, source: Option<std::net::IpAddr>) -> Result<Caller, ApiError> {
    // Parsed and hashed once, whichever of the paths below it takes.
    let presented = Presented::from_header(header);
    let Some(ip) = source else { return api.auth.caller_of(presented?).await };
    if let Some(known) = presented.as_ref().ok().and_then(|p| api.auth.known(p)) {
        return Ok(known);
    }
    let now = std::time::Instant::now();
    api.failed_auths.check(ip, now).map_err(|secs| api.failed_auths.refusal(secs))?;
    let result = match presented {
        Ok(p) => api.auth.caller_of(p).await,
        Err(e) => Err(e),
    };
    if let Err(ApiError::Authentication { .. }) = &result {
        api.failed_auths.failed(ip, now);
    }
    result
}

/// The address a request came from, as a gateway in front of the router says (`paygate dev`'s
/// puts the peer's here; API Gateway's is in its request context).
#[derive(Debug, Clone, Copy)]
pub struct SourceIp(pub std::net::IpAddr);

/// The address the request came from: API Gateway's `sourceIp`, or [`SourceIp`].
fn source_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    use lambda_http::request::RequestContext;
    if let Some(RequestContext::ApiGatewayV2(ctx)) = parts.extensions.get::<RequestContext>() {
        return ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok());
    }
    parts.extensions.get::<SourceIp>().map(|s| s.0)
}

/// The query string's parameters; the handler takes what it knows and calls `done`.
pub struct Query(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Params::from_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// A route that takes no query parameters: any is an unknown parameter.
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).next() {
            Some((k, _)) => Err(ApiError::unknown_parameter(&k)),
            None => Ok(NoQuery),
        }
    }
}

/// `GET /v1/events`'s parameters.
impl<S: Send + Sync> FromRequestParts<S> for ListParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        ListParams::parse(parts.uri.query().unwrap_or(""))
    }
}

/// The `{id}` of the path, percent-decoded, as the client wrote it (each handler parses it into
/// its own id type: a malformed id is a 404 of that kind).
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(PathId(id)),
            Err(_) => Err(ApiError::NotFound { message: format!("Unrecognized request URL ({}).", parts.uri.path()), param: None }),
        }
    }
}

/// The body's parameters, form-encoded or JSON (as the idempotency layer parsed them, when it ran).
pub struct Form(pub Params);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = ApiError;

    async fn from_request(mut req: Request, _: &S) -> Result<Self, ApiError> {
        if let Some(params) = req.extensions_mut().remove::<Params>() {
            return Ok(Form(params));
        }
        let (parts, body) = req.into_parts();
        let bytes = read_body(body).await?;
        Params::from_body(&parts.headers, &bytes).map(Form)
    }
}

/// The whole body, refused past [`MAX_BODY_BYTES`].
pub async fn read_body(body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::request(Code::ParameterInvalid, format!("The request body is larger than {MAX_BODY_BYTES} bytes, the most accepted.")))
}
