//! The API's objects, as responses serialise them, built from model values: a `list`, the
//! `webhook_endpoint` with its `health`, its `webhook_endpoint_stats`, and the
//! `webhook_delivery_attempt`. (Fields are in the
//! order the API has always answered them.)

use serde::Serialize;

use crate::model::delivery::Attempt;
use crate::model::endpoint::{Endpoint, EndpointStatus};
use crate::model::health::Health;
use crate::model::ids::{AttemptId, EndpointId, EventId, Mode, Timestamp};
use crate::model::list::Page;
use crate::model::webhook_url::WebhookUrl;
use crate::webhook::stats::Stats;

/// Stripe's `list` object, serialised straight from a page (no intermediate JSON tree).
#[derive(Debug, Serialize)]
pub struct ListObject<'a, T> {
    object: &'static str,
    data: &'a [T],
    has_more: bool,
    url: &'a str,
}

impl<'a, T: Serialize> ListObject<'a, T> {
    pub fn of(page: &'a Page<T>, url: &'a str) -> Self {
        ListObject { object: "list", data: &page.data, has_more: page.has_more, url }
    }
}

/// The `webhook_endpoint` object; `secret` only in the answers that made it (creation, rotation).
#[derive(Debug, Serialize)]
pub struct EndpointObject<'a> {
    pub id: EndpointId,
    pub object: &'static str,
    pub url: &'a WebhookUrl,
    pub enabled_events: Vec<String>,
    pub description: &'a Option<String>,
    pub status: EndpointStatus,
    pub created_at: Timestamp,
    pub livemode: bool,
    pub rate_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
    pub health: HealthObject<'a>,
}

impl<'a> EndpointObject<'a> {
    pub fn new(e: &'a Endpoint, health: &'a Health, with_secret: bool) -> Self {
        EndpointObject {
            id: e.id,
            object: "webhook_endpoint",
            url: &e.url,
            enabled_events: e.enabled_events.to_strings(),
            description: &e.description,
            status: e.status,
            created_at: e.created_at,
            livemode: e.mode == Mode::Live,
            rate_limit: e.rate_limit,
            secret: with_secret.then(|| e.secret.expose()),
            health: HealthObject::from(health),
        }
    }
}

/// The `webhook_endpoint_stats` object: the endpoint's stats over a window, and its health now.
#[derive(Debug, Serialize)]
pub struct StatsObject<'a> {
    pub object: &'static str,
    pub endpoint: EndpointId,
    #[serde(flatten)]
    pub stats: &'a Stats,
    pub health: HealthObject<'a>,
}

impl<'a> StatsObject<'a> {
    pub fn new(endpoint: EndpointId, stats: &'a Stats, health: &'a Health) -> Self {
        StatsObject { object: "webhook_endpoint_stats", endpoint, stats, health: HealthObject::from(health) }
    }
}

/// An endpoint's `health`: its circuit breaker as the API shows it.
#[derive(Debug, Serialize)]
pub struct HealthObject<'a> {
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub failing_since: Option<Timestamp>,
    pub next_probe_at: Option<Timestamp>,
    pub paused_until: Option<Timestamp>,
    pub disabled_reason: &'a Option<String>,
    /// Its attempts take 2 s or more: each takes one of its leases.
    pub slow: bool,
    /// Its attempts take 0.5 s or more: its deliveries go through the slow lane.
    pub slow_lane: bool,
}

impl<'a> From<&'a Health> for HealthObject<'a> {
    fn from(h: &'a Health) -> Self {
        HealthObject {
            state: if h.is_open() { "open" } else { "closed" },
            consecutive_failures: h.consecutive_failures,
            failing_since: h.failing_since.map(Timestamp),
            next_probe_at: h.next_probe_at.map(Timestamp),
            paused_until: h.paused_until.map(Timestamp),
            disabled_reason: &h.disabled_reason,
            slow: h.slow_since.is_some(),
            slow_lane: h.in_slow_lane(),
        }
    }
}

/// The `webhook_delivery_attempt` object.
#[derive(Debug, Serialize)]
pub struct AttemptObject<'a> {
    pub object: &'static str,
    pub event: EventId,
    pub endpoint: EndpointId,
    pub attempt: u32,
    pub status: &'static str,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub error: &'a Option<String>,
    pub response_body: &'a Option<String>,
    pub created_at: Timestamp,
    pub next_retry_at: Option<Timestamp>,
    pub id: AttemptId,
}

impl<'a> AttemptObject<'a> {
    pub fn new(id: AttemptId, a: &'a Attempt) -> Self {
        AttemptObject {
            object: "webhook_delivery_attempt",
            event: a.event_id,
            endpoint: a.endpoint_id,
            attempt: a.attempt,
            status: if a.succeeded { "succeeded" } else { "failed" },
            http_status: a.http_status,
            latency_ms: a.latency_ms,
            error: &a.error,
            response_body: &a.response_body,
            created_at: Timestamp(a.created_at),
            next_retry_at: a.next_retry_at.map(Timestamp),
            id,
        }
    }
}
