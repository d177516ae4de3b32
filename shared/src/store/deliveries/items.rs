//! The Deliveries table's item shapes as stored: a delivery state, an attempt, and what the
//! `ByFailed` and `ByEndpoint` indexes hold of them.

use serde::{Deserialize, Serialize};

use crate::model::ids::{EndpointId, EventId};

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StateItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) event_id: EventId,
    pub(super) endpoint_id: EndpointId,
    pub(super) status: DeliveryStatus,
    pub(super) updated_at: u64,
    pub(super) expires_at: u64,
    /// Attempts made since the state last opened.
    #[serde(default)]
    pub(super) attempts: u32,
    /// Unix seconds before which no attempt is due (the backoff); 0 for "now".
    #[serde(default)]
    pub(super) next_attempt_at: u64,
    /// Unix seconds when the state (last) opened: its retry schedule runs from here. Absent from
    /// states written before it was kept (their event's time stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) opened_at: Option<u64>,
    /// `ByDue` keys, present while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) due_shard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) due_at: Option<u64>,
    /// `ByFailed` key, present while finally failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) failed_pk: Option<String>,
}

impl From<StateItem> for DeliveryState {
    fn from(s: StateItem) -> Self {
        DeliveryState {
            event_id: s.event_id,
            endpoint_id: s.endpoint_id,
            status: s.status,
            attempts: s.attempts,
            next_attempt_at: s.next_attempt_at,
            opened_at: s.opened_at.unwrap_or(s.event_id.created_ms() / 1000),
        }
    }
}

/// What the `ByFailed` index projects (its keys).
#[derive(Debug, Deserialize)]
pub(super) struct FailedKey {
    pub(super) event_id: EventId,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AttemptItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) expires_at: u64,
    pub(super) attempt: Attempt,
    /// `ByEndpoint` keys (absent from attempts written before the index existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) endpoint_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) attempt_id: Option<String>,
    /// What `ByEndpoint` projects besides its keys, at the top level where an index can see it.
    #[serde(flatten)]
    pub(super) summary: Option<SummaryFields>,
}

/// An attempt's fields that `ByEndpoint` projects (template.yaml lists the same names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SummaryFields {
    pub(super) event_id: EventId,
    pub(super) attempt_number: u32,
    pub(super) ok: bool,
    pub(super) latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SummaryItem {
    pub(super) attempt_id: String,
    #[serde(flatten)]
    pub(super) fields: SummaryFields,
}
