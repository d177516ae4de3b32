//! A delivery: the state of one (event, endpoint), its attempts, and the changes the deliverer
//! makes to it. Kept by `store::deliveries` (the source of truth of delivery); decided by
//! `webhook::decision`.

use serde::{Deserialize, Serialize};

use crate::model::endpoint::Endpoint;
use crate::model::event::EventJson;
use crate::model::health::Health;
use crate::model::ids::{EndpointId, EventId, Principal};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    /// The endpoint or the event went away before delivery.
    Canceled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Canceled => "canceled",
        }
    }
}

/// The state of one (event, endpoint) delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    pub status: DeliveryStatus,
    /// Attempts made since the state last opened.
    pub attempts: u32,
    /// Unix seconds before which no attempt is due.
    pub next_attempt_at: u64,
    /// Unix seconds when it (last) opened: its retry schedule runs from here.
    pub opened_at: u64,
}

/// One delivery as the deliverer reads it before sending: its state, its event and its endpoint,
/// each `None` when it does not exist, and the endpoint's health (default: healthy).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: Option<DeliveryState>,
    pub event: Option<EventJson>,
    pub endpoint: Option<Endpoint>,
    pub health: Health,
}

/// What the deliverer writes to a delivery state after an attempt, or instead of one.
#[derive(Debug, Clone, PartialEq)]
pub enum StateChange {
    /// Settles a pending state with `status`, recording the attempt that settled it (if any), and
    /// releases its count in the event's `pending_webhooks` when the event still exists.
    Settle { principal: Principal, event: EventId, endpoint: EndpointId, status: DeliveryStatus, attempt: Option<Attempt>, event_exists: bool },
    /// Records a failed attempt and when the next one is due (`attempt.next_retry_at`); the state
    /// stays pending, and the scheduler enqueues it at that time.
    RetryLater { principal: Principal, attempt: Attempt },
    /// Leaves a pending state unattempted until `until` (its endpoint's breaker is open or the
    /// endpoint paused): the scheduler enqueues it then. Its attempts do not change.
    Hold { principal: Principal, event: EventId, endpoint: EndpointId, until: u64 },
}

/// A pending delivery the sweeper found overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    pub principal: Principal,
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    /// Its due time as the sweeper read it.
    pub due_at: u64,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    /// 1 for the first attempt (SQS's receive count).
    pub attempt: u32,
    pub succeeded: bool,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The start of the response body (at most 2 kB kept).
    pub response_body: Option<String>,
    pub created_at: u64,
    /// Unix seconds of the next attempt, when this one failed and will be retried; `None` after a
    /// success or a final failure.
    #[serde(default)]
    pub next_retry_at: Option<u64>,
}

/// One attempt as `ByEndpoint` holds it: what an endpoint's health is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptSummary {
    /// Unix milliseconds when it was made (from its ULID).
    pub at_ms: u64,
    pub event_id: EventId,
    pub attempt: u32,
    pub succeeded: bool,
    pub latency_ms: u64,
    pub http_status: Option<u16>,
    pub error: Option<String>,
}

/// The newest attempts to an endpoint in a time range, newest first, and whether there were more
/// than were read.
#[derive(Debug, Clone, Default)]
pub struct EndpointAttempts {
    pub attempts: Vec<AttemptSummary>,
    pub has_more: bool,
}
