//! The webhook endpoints API: create, list, retrieve, update, delete, rotate the secret, resend an
//! event, recover failed deliveries, health stats. Bodies are JSON or form-encoded (`http::params`); every POST
//! honours `Idempotency-Key` (`http::idempotency`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{ApiError, Code};
use crate::http::Api;
use crate::http::extract::{Form, NoQuery, PathId, Query};
use crate::http::objects::{EndpointObject, ListObject, StatsObject};
use crate::http::params::{Params, exclusive, missing};
use crate::model::Invalid;
use crate::model::endpoint::{EnabledEvents, Endpoint, EndpointStatus, MAX_RATE_LIMIT, new_endpoint, rotate};
use crate::model::health::Health;
use crate::model::ids::EndpointId;
use crate::model::ids::{EventId, Principal, Timestamp, unix_now};
use crate::model::list::Page;
use crate::store::endpoints::{Created, Replaced};
use crate::webhook::recover::{self, Recovery};
use crate::webhook::ssrf::check_url;
use crate::webhook::stats::{MAX_ATTEMPTS, Window};

const MAX_DESCRIPTION: usize = 5000;

type Reply = Result<Response, ApiError>;

/// `POST /v1/webhook_endpoints`.
pub async fn create(State(api): State<Arc<Api>>, principal: Principal, Form(mut p): Form) -> Reply {
    let url = p.required("url")?;
    let enabled_events = enabled_events(&mut p)?.ok_or_else(|| missing("enabled_events"))?;
    let description = description(p.string("description")?)?;
    let rate_limit = rate_limit(&mut p)?.flatten();
    p.done()?;
    let url = check_url(&url, principal.mode, api.policy).await?;
    let endpoint = Endpoint { rate_limit, ..new_endpoint(principal.mode, url, enabled_events, description) };
    match api.endpoints.create(&principal, &endpoint).await? {
        Created::Created => {}
        Created::LimitReached(max) => {
            return Err(ApiError::invalid(
                Code::ResourceLimitExceeded,
                "url",
                format!("You have reached the maximum of {max} webhook endpoints for this account and mode."),
            ));
        }
    }
    tracing::info!(endpoint_id = %endpoint.id, "webhook endpoint created");
    Ok(Json(EndpointObject::new(&endpoint, &Health::default(), true)).into_response())
}

/// `GET /v1/webhook_endpoints`: Stripe's list; at most 16 endpoints exist, read in one Query.
pub async fn list(State(api): State<Arc<Api>>, principal: Principal, Query(mut p): Query) -> Result<Response, ApiError> {
    let query = p.page::<EndpointId>("a webhook endpoint id (we_…)")?;
    p.done()?;
    let all = api.endpoints.list(&principal).await?; // newest first
    let page = Page::of(all, |e| &e.id, &query);
    let ids: Vec<EndpointId> = page.data.iter().map(|e| e.id).collect();
    let health = api.health.get_all(&principal, &ids).await?;
    let data: Vec<EndpointObject> = page.data.iter().zip(&health).map(|(e, h)| EndpointObject::new(e, h, false)).collect();
    Ok(Json(ListObject::of(&Page { data, has_more: page.has_more }, "/v1/webhook_endpoints")).into_response())
}

/// `GET /v1/webhook_endpoints/{id}`.
pub async fn retrieve(State(api): State<Arc<Api>>, principal: Principal, _: NoQuery, PathId(id): PathId) -> Reply {
    let endpoint = api.endpoint(&principal, &id).await?;
    let health = api.health.get(&principal, &endpoint.id).await?;
    Ok(Json(EndpointObject::new(&endpoint, &health, false)).into_response())
}

/// The `webhook_recovery` object: what one `recover` call re-opened since `since`.
pub fn recovery_json(r: &Recovery, since: Timestamp) -> Value {
    json!({
        "object": "webhook_recovery",
        "endpoint": r.endpoint,
        "since": since,
        "queued": r.events.len(),
        "events": r.events,
        "has_more": r.has_more,
    })
}

/// Reads and writes an endpoint change makes at most, when other writes keep coming in between
/// (each after a short random pause, so that concurrent changes take turns).
const CHANGE_TRIES: u64 = 10;

/// `POST /v1/webhook_endpoints/{id}`: any of url, enabled_events (or events), description, status,
/// rate_limit. Enabling a disabled endpoint resets its breaker.
pub async fn update(State(api): State<Arc<Api>>, principal: Principal, PathId(id): PathId, Form(mut p): Form) -> Reply {
    let url = p.string("url")?;
    let events = enabled_events(&mut p)?;
    let desc = p.string("description")?;
    let status = p.string("status")?;
    let limit = rate_limit(&mut p)?;
    p.done()?;
    let url = match url {
        Some(url) => Some(check_url(&url, principal.mode, api.policy).await?),
        None => None,
    };
    let desc = if desc.is_some() { Some(description(desc)?) } else { None };
    let status = match status {
        Some(s) => Some(s.parse::<EndpointStatus>().map_err(|_| ApiError::invalid(Code::ParameterInvalid, "status", "status must be enabled or disabled."))?),
        None => None,
    };
    let (was, endpoint) = api
        .change(&principal, &id, |endpoint| {
            if let Some(limit) = limit {
                endpoint.rate_limit = limit;
            }
            if let Some(url) = &url {
                endpoint.url = url.clone();
            }
            if let Some(events) = &events {
                endpoint.enabled_events = events.clone();
            }
            if let Some(desc) = &desc {
                endpoint.description = desc.clone();
            }
            if let Some(status) = status {
                endpoint.status = status;
            }
        })
        .await?;
    if was.status == EndpointStatus::Disabled && endpoint.status == EndpointStatus::Enabled {
        api.health.clear(&principal, &endpoint.id).await?;
        tracing::info!(endpoint_id = %endpoint.id, "endpoint enabled again: its breaker is reset");
    }
    let health = api.health.get(&principal, &endpoint.id).await?;
    Ok(Json(EndpointObject::new(&endpoint, &health, false)).into_response())
}

/// `DELETE /v1/webhook_endpoints/{id}`.
pub async fn delete(State(api): State<Arc<Api>>, principal: Principal, _: NoQuery, PathId(id): PathId) -> Reply {
    let ep_id: EndpointId = id.parse().map_err(|_| endpoint_missing(&id))?;
    if !api.endpoints.delete(&principal, &ep_id).await? {
        return Err(endpoint_missing(&id));
    }
    Ok(Json(json!({"id": ep_id, "object": "webhook_endpoint", "deleted": true})).into_response())
}

/// `POST /v1/webhook_endpoints/{id}/rotate_secret`: a new secret; the old one signs for 24 more hours.
pub async fn rotate_secret(State(api): State<Arc<Api>>, principal: Principal, PathId(id): PathId, Form(p): Form) -> Reply {
    p.done()?;
    let (_, endpoint) = api.change(&principal, &id, |endpoint| rotate(endpoint, unix_now())).await?;
    tracing::info!(endpoint_id = %endpoint.id, "webhook secret rotated");
    let health = api.health.get(&principal, &endpoint.id).await?;
    Ok(Json(EndpointObject::new(&endpoint, &health, true)).into_response())
}

/// `POST /v1/webhook_endpoints/{id}/resend` with `event`: delivers the event to the endpoint again.
pub async fn resend(State(api): State<Arc<Api>>, principal: Principal, PathId(id): PathId, Form(mut p): Form) -> Reply {
    let raw = p.required("event")?;
    p.done()?;
    let endpoint = api.endpoint(&principal, &id).await?;
    let missing = || ApiError::not_found("event", &raw, "event");
    let event_id: EventId = raw.parse().map_err(|_| missing())?;
    api.events.get(&principal, event_id).await?.ok_or_else(missing)?;
    enabled(&endpoint)?;
    api.deliveries.reopen(&principal, event_id, &endpoint.id).await?;
    recover::schedule(&api.fanout, &principal, &endpoint.id, &[event_id]).await;
    Ok(Json(json!({"object": "webhook_resend", "event": event_id, "endpoint": endpoint.id, "status": "pending"})).into_response())
}

/// `POST /v1/webhook_endpoints/{id}/recover` with `since`: every finally failed delivery since then,
/// delivered again.
pub async fn recover(State(api): State<Arc<Api>>, principal: Principal, PathId(id): PathId, Form(mut p): Form) -> Reply {
    let since = p.timestamp("since")?.ok_or_else(|| missing("since"))?;
    p.done()?;
    let recovery = api.recover(&principal, &id, since).await?;
    Ok(Json(recovery_json(&recovery, since)).into_response())
}

/// `GET /v1/webhook_endpoints/{id}/stats?since=…&until=…&interval=hour|day`: the endpoint's
/// success rate and latency over the window (the last 24 h by default), per hour or day, and its
/// most recent failures.
pub async fn stats(State(api): State<Arc<Api>>, principal: Principal, PathId(id): PathId, Query(mut p): Query) -> Reply {
    let since = p.timestamp("since")?;
    let until = p.timestamp("until")?;
    let interval = p.string("interval")?;
    p.done()?;
    let window = Window::parse(since, until, interval.as_deref(), unix_now())?;
    let endpoint = api.endpoint(&principal, &id).await?;
    let (from_ms, to_ms) = window.millis();
    let found = api.deliveries.endpoint_attempts(&principal, &endpoint.id, from_ms, to_ms, MAX_ATTEMPTS).await?;
    let health = api.health.get(&principal, &endpoint.id).await?;
    let stats = window.summarise(&found);
    Ok(Json(StatsObject::new(endpoint.id, &stats, &health)).into_response())
}

/// `enabled_events`, or its other name `events` (the reference's clients send it); not both.
fn enabled_events(p: &mut Params) -> Result<Option<EnabledEvents>, ApiError> {
    match (p.list("enabled_events")?, p.list("events")?) {
        (Some(_), Some(_)) => Err(exclusive("events", &["enabled_events", "events"])),
        (Some(v), None) => Ok(Some(EnabledEvents::parse(&v)?)),
        // A bad list names the parameter it came in.
        (None, Some(v)) => Ok(Some(EnabledEvents::parse(&v).map_err(|e| Invalid { param: "events".into(), ..e })?)),
        (None, None) => Ok(None),
    }
}

/// `rate_limit`: deliveries per second, 1 to [`MAX_RATE_LIMIT`]; empty (or JSON null) removes it.
fn rate_limit(p: &mut Params) -> Result<Option<Option<u32>>, ApiError> {
    p.clearable_number("rate_limit", 1, MAX_RATE_LIMIT)
}

/// `description`: at most [`MAX_DESCRIPTION`] characters; empty removes it.
fn description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => {
            Err(ApiError::invalid(Code::ParameterInvalid, "description", format!("description is at most {MAX_DESCRIPTION} characters.")))
        }
        Some(d) if d.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn enabled(endpoint: &Endpoint) -> Result<(), ApiError> {
    match endpoint.status {
        EndpointStatus::Enabled => Ok(()),
        EndpointStatus::Disabled => Err(ApiError::invalid(Code::EndpointDisabled, "id", "The webhook endpoint is disabled; enable it first.")),
    }
}

fn endpoint_missing(id: &str) -> ApiError {
    ApiError::not_found("webhook endpoint", id, "id")
}

impl Api {
    /// Re-opens the finally failed deliveries to the endpoint `id` (404 unless the principal has
    /// it, 400 while it is disabled) of the events created at or after `since`, at most
    /// [`recover::RECOVER_MAX`], and queues them (`webhook::recover`); `has_more` when there are
    /// more. Idempotent: what it re-opened is pending, no longer failed.
    pub async fn recover(&self, principal: &Principal, id: &str, since: Timestamp) -> Result<Recovery, ApiError> {
        let endpoint = self.endpoint(principal, id).await?;
        enabled(&endpoint)?;
        Ok(recover::reopen_failed(&self.deliveries, &self.fanout, principal, endpoint.id, since).await?)
    }

    /// The endpoint the path names, or a 404 (a malformed id names none).
    async fn endpoint(&self, principal: &Principal, id: &str) -> Result<Endpoint, ApiError> {
        let ep_id: EndpointId = id.parse().map_err(|_| endpoint_missing(id))?;
        self.endpoints.get(principal, &ep_id).await?.ok_or_else(|| endpoint_missing(id))
    }

    /// Reads the endpoint the path names, applies `change` and writes it back, unless another
    /// write (a rotation, a 410 that disabled it, another update) came in between: then it reads
    /// it again and applies `change` to that, so no change undoes a concurrent one. The endpoint as
    /// it was read last, and as written.
    async fn change(&self, principal: &Principal, id: &str, change: impl Fn(&mut Endpoint)) -> Result<(Endpoint, Endpoint), ApiError> {
        for attempt in 0..CHANGE_TRIES {
            if attempt > 0 {
                let pause = rand::Rng::random_range(&mut rand::rng(), 5..=20 * attempt);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            let was = self.endpoint(principal, id).await?;
            let mut endpoint = was.clone();
            change(&mut endpoint);
            match self.endpoints.replace(principal, &endpoint).await? {
                Replaced::Replaced => return Ok((was, Endpoint { version: endpoint.version + 1, ..endpoint })),
                Replaced::Missing => return Err(endpoint_missing(id)),
                Replaced::Changed => tracing::info!(endpoint_id = %endpoint.id, "endpoint written meanwhile; reading it again"),
            }
        }
        Err(ApiError::RateLimited { message: "The webhook endpoint is being changed by other requests; try again.".into(), retry_after: Some(1) })
    }
}
