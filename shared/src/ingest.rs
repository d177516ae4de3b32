//! Publishing events: other services hand us `{account_id, mode, type, data, request}`.

use serde::Deserialize;

use crate::error::ApiError;
use crate::event::{Event, EventRequest};
use crate::event_type::EventType;
use crate::ids::{AccountId, Mode, Principal};
use crate::store::{EventStore, StoreError};

/// The input of `ingest-event`, parsed (types, ids, mode) when it is deserialised.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    pub account_id: AccountId,
    pub mode: Mode,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub data: IngestData,
    #[serde(default)]
    pub request: EventRequest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestData {
    pub object: serde_json::Map<String, serde_json::Value>,
}

impl IngestRequest {
    /// Parses a JSON value; a bad input is a 400-style error naming the problem.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ApiError> {
        serde_json::from_value(value).map_err(|e| ApiError::InvalidRequest {
            code: "parameter_invalid",
            message: format!("Invalid event: {e}"),
            param: None,
        })
    }
}

/// Assigns id and `created_at` and writes the event (a conditional put that never overwrites).
pub async fn publish(store: &EventStore, input: IngestRequest) -> Result<Event, StoreError> {
    let principal = Principal { account: input.account_id, mode: input.mode };
    let event = Event::new(input.event_type, input.data.object, input.request);
    store.put_new(&principal, &event).await?;
    tracing::info!(event_id = %event.id, event_type = %event.event_type, "event published");
    Ok(event)
}

/// Why an ingestion failed: a bad input (the caller's fault) or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid input: {0}")]
    Invalid(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The `ingest-event` function: parse, publish, return the event as the API shows it.
pub async fn handle(store: &EventStore, input: serde_json::Value) -> Result<serde_json::Value, IngestError> {
    let input = IngestRequest::from_json(input).map_err(IngestError::Invalid)?;
    let event = publish(store, input).await?;
    Ok(serde_json::to_value(event).expect("events serialise"))
}
