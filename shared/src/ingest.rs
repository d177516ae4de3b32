//! Publishing events: other services hand us `{account_id, mode, type, data, request}`.
//!
//! An event is written together with the pending delivery state of every endpoint subscribed to
//! it, in one transaction: from its first moment the event's `pending_webhooks` counts exactly
//! the deliveries it owes, and no delivery depends on a stream record or a queue message arriving.

use serde::Deserialize;

use crate::error::{ApiError, Code};
use crate::event::{Event, EventRequest};
use crate::event_type::EventType;
use crate::ids::{AccountId, Mode, Principal};
use crate::store::{EventStore, StoreError};
use crate::store::deliveries::DeliveryStore;
use crate::store::endpoints::EndpointStore;

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
    pub object: DataObject,
}

/// `data.object`: a JSON object with a string `id` and a string `object` (its kind), as every
/// PayGate object has.
#[derive(Debug, Clone, PartialEq)]
pub struct DataObject(serde_json::Map<String, serde_json::Value>);

impl DataObject {
    pub fn parse(value: serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(map) = value else {
            return Err("data.object must be a JSON object".to_owned());
        };
        for field in ["id", "object"] {
            match map.get(field) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => {}
                _ => return Err(format!("data.object must have a non-empty string `{field}`")),
            }
        }
        Ok(DataObject(map))
    }

    pub fn into_inner(self) -> serde_json::Map<String, serde_json::Value> {
        self.0
    }
}

impl<'de> Deserialize<'de> for DataObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DataObject::parse(serde_json::Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl IngestRequest {
    /// Parses a JSON value; a bad input is a 400-style error naming the problem.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ApiError> {
        let object_problem = match value.pointer("/data/object") {
            None => Some("data.object is required".to_owned()),
            Some(o) => DataObject::parse(o.clone()).err(),
        };
        if let Some(message) = object_problem {
            return Err(ApiError::invalid(Code::ParameterInvalid, "data.object", format!("Invalid event: {message}.")));
        }
        serde_json::from_value(value).map_err(|e| ApiError::request(Code::ParameterInvalid, format!("Invalid event: {e}")))
    }
}

/// What publishing needs, built once.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub events: EventStore,
    pub endpoints: EndpointStore,
    pub deliveries: DeliveryStore,
}

impl Publisher {
    /// Assigns id and `created_at` and writes the event with the delivery state of every endpoint
    /// that wants it, in one transaction that never overwrites an event.
    pub async fn publish(&self, input: IngestRequest) -> Result<Event, StoreError> {
        let principal = Principal { account: input.account_id, mode: input.mode };
        let mut event = Event::new(input.event_type, input.data.object.into_inner(), input.request);
        let subscribed: Vec<_> =
            self.endpoints.list(&principal).await?.into_iter().filter(|ep| ep.wants(&event)).map(|ep| ep.id).collect();
        event.pending_webhooks = subscribed.len() as u32;
        if subscribed.is_empty() {
            self.events.put_new(&principal, &event).await?;
        } else {
            let states = self.deliveries.opening(&principal, event.id, &subscribed)?;
            self.events.put_new_with(&principal, &event, states).await?;
        }
        tracing::info!(event_id = %event.id, event_type = %event.event_type, endpoints = subscribed.len(), "event published");
        Ok(event)
    }

    /// The `ingest-event` function: parse, publish, return the event as the API shows it.
    pub async fn handle(&self, input: serde_json::Value) -> Result<serde_json::Value, IngestError> {
        let input = IngestRequest::from_json(input).map_err(IngestError::Invalid)?;
        let event = self.publish(input).await?;
        Ok(serde_json::to_value(event).expect("events serialise"))
    }
}

/// Why an ingestion failed: a bad input (the caller's fault) or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid input: {0}")]
    Invalid(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_object_needs_an_id_and_a_kind() {
        let ok = serde_json::json!({"account_id": "acct_1", "mode": "test", "type": "payment.succeeded",
            "data": {"object": {"id": "pay_1", "object": "payment", "metadata": {}}}});
        assert!(IngestRequest::from_json(ok.clone()).is_ok());
        for bad in [serde_json::json!({}), serde_json::json!({"id": "pay_1"}), serde_json::json!({"object": "payment"}), serde_json::json!([1]), serde_json::json!({"id": 1, "object": "payment"})] {
            let mut v = ok.clone();
            v["data"]["object"] = bad.clone();
            let e = IngestRequest::from_json(v).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
            assert_eq!(e.body()["error"]["param"], "data.object", "{bad}");
        }
        let mut missing = ok.clone();
        missing["data"] = serde_json::json!({});
        assert_eq!(IngestRequest::from_json(missing).unwrap_err().body()["error"]["param"], "data.object");
    }
}
