//! Publishing events: other services hand us `{account_id, mode, type, data, request,
//! idempotency_key}`.
//!
//! An event is written together with the pending delivery state of every endpoint subscribed to
//! it, in one transaction: from its first moment the event's `pending_webhooks` counts exactly
//! the deliveries it owes, and no delivery depends on a stream record or a queue message arriving.
//!
//! A producer's `idempotency_key` (unique per account and mode for 24 hours) makes a publish
//! exactly-once: the key is claimed in that same transaction (`store::publish_keys`), so a retry,
//! or any number of concurrent duplicates, returns the one event the key published, with its id
//! and `created_at`, and opens no delivery. The same key with a different type, object or request
//! is refused, naming the key. It is not the event's `request.idempotency_key`, which is the
//! merchant's API request key the event shows.

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, Code};
use crate::model::event::{Event, EventRequest};
use crate::model::event_type::EventType;
use crate::model::ids::{AccountId, Mode, Principal};
use crate::store::deliveries::DeliveryStore;
use crate::store::endpoints::EndpointStore;
use crate::store::idempotency;
use crate::store::publish_keys::{self, KeyRecord};
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
    /// The producer's key for this publish (optional on direct invoke).
    #[serde(default)]
    pub idempotency_key: Option<PublishKey>,
}

/// A producer's key for one publish: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishKey(String);

impl PublishKey {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err("idempotency_key must be 1 to 255 printable ASCII characters".to_owned());
        }
        Ok(PublishKey(s.to_owned()))
    }

    /// A fresh key (`paygate trigger` sends one with every publish).
    pub fn generate() -> Self {
        PublishKey(format!("pub_{}", ulid::Ulid::generate()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for PublishKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PublishKey::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for PublishKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
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
    /// that wants it, in one transaction that never overwrites an event. With an `idempotency_key`
    /// that published an event already (within 24 hours), that event, and nothing written.
    pub async fn publish(&self, input: IngestRequest) -> Result<Event, IngestError> {
        let principal = Principal { account: input.account_id, mode: input.mode };
        let mut event = Event::new(input.event_type, input.data.object.into_inner(), input.request);
        let subscribed: Vec<_> = self.endpoints.list(&principal).await?.into_iter().filter(|ep| ep.wants(&event)).map(|ep| ep.id).collect();
        event.pending_webhooks = subscribed.len() as u32;
        let mut with = if subscribed.is_empty() { Vec::new() } else { self.deliveries.opening(&principal, event.id, &subscribed)? };
        match input.idempotency_key {
            Some(key) => {
                let now = crate::model::ids::unix_now();
                let record = KeyRecord {
                    event_id: event.id,
                    pending_webhooks: event.pending_webhooks,
                    fingerprint: fingerprint(&event),
                    expires_at: now + publish_keys::WINDOW_SECS,
                };
                with.push(publish_keys::claim(self.deliveries.table(), &principal, key.as_str(), &record, now)?);
                let claim = with.len() - 1;
                if let Some(taken) = self.events.put_new_claimed(&principal, &event, with, claim).await? {
                    let first = publish_keys::record_of(taken)?;
                    if first.fingerprint != record.fingerprint {
                        return Err(IngestError::KeyReused(key));
                    }
                    tracing::info!(event_id = %first.event_id, idempotency_key = %key, "publish repeated; its event returned");
                    // The first publish's event: the same type, object and request (the fingerprints
                    // agree), with its id, time and count.
                    return Ok(Event { id: first.event_id, created_at: first.event_id.created_at(), pending_webhooks: first.pending_webhooks, ..event });
                }
            }
            None if with.is_empty() => self.events.put_new(&principal, &event).await?,
            None => self.events.put_new_with(&principal, &event, with).await?,
        }
        tracing::info!(event_id = %event.id, event_type = %event.event_type, endpoints = subscribed.len(), "event published");
        Ok(event)
    }

    /// The `ingest-event` function, whichever way it was invoked (see [`Invocation`]): one input
    /// → the event as the API shows it; a batch → a result per entry; an EventBridge event → its
    /// event; an SQS batch → the messages that failed, for the queue to retry.
    pub async fn handle(&self, input: Value) -> Result<Value, IngestError> {
        match Invocation::of(input)? {
            Invocation::One(input) => Ok(serde_json::to_value(self.publish(parsed(input, false)?).await?).expect("events serialise")),
            Invocation::Batch(entries) => Ok(json!({ "results": self.publish_batch(entries, false).await.into_iter().map(entry_result).collect::<Vec<_>>() })),
            Invocation::EventBridge(input) => Ok(serde_json::to_value(self.publish(parsed(input, true)?).await?).expect("events serialise")),
            Invocation::Sqs(messages) => {
                let (ids, bodies): (Vec<String>, Vec<Value>) = messages.into_iter().unzip();
                let results = self.publish_batch(bodies, true).await;
                let failures: Vec<Value> = ids
                    .into_iter()
                    .zip(results)
                    .filter_map(|(id, r)| {
                        let e = r.err()?;
                        tracing::error!(message_id = %id, error = %e, "ingest message not published; left to the queue's retries and DLQ");
                        Some(json!({ "itemIdentifier": id }))
                    })
                    .collect();
                Ok(json!({ "batchItemFailures": failures }))
            }
        }
    }

    /// Publishes up to [`MAX_BATCH`] inputs, each on its own (one transaction each, 16 at once): a
    /// result per input, in order; a bad input fails alone. `keys_required`: every input must carry
    /// an `idempotency_key` (the EventBridge and SQS ways in, whose deliveries may repeat).
    pub async fn publish_batch(&self, inputs: Vec<Value>, keys_required: bool) -> Vec<Result<Event, IngestError>> {
        let publishes: Vec<_> = inputs.into_iter().map(|input| async move { self.publish(parsed(input, keys_required)?).await }).collect();
        futures::stream::iter(publishes).buffered(16).collect().await
    }
}

/// Entries one batch invocation may hold.
pub const MAX_BATCH: usize = 100;

/// How the ingest function was invoked, told apart by the input's shape.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    /// `{account_id, mode, type, data, …}`: one publish (the direct, synchronous way).
    One(Value),
    /// `{"entries": [input, …]}`: up to [`MAX_BATCH`] publishes.
    Batch(Vec<Value>),
    /// An EventBridge event (`detail-type`, `detail`): its `detail` is the input.
    EventBridge(Value),
    /// An SQS batch (`Records` from `aws:sqs`): each message's id and its body, the input.
    Sqs(Vec<(String, Value)>),
}

impl Invocation {
    pub fn of(mut input: Value) -> Result<Invocation, IngestError> {
        let invalid = |param: &str, message: String| IngestError::Invalid(ApiError::invalid(Code::ParameterInvalid, param, message));
        if let Some(entries) = input.get_mut("entries").map(Value::take) {
            let Value::Array(entries) = entries else { return Err(invalid("entries", "entries must be a list of events to publish.".into())) };
            if entries.is_empty() || entries.len() > MAX_BATCH {
                return Err(invalid("entries", format!("A batch holds 1 to {MAX_BATCH} events; this one holds {}.", entries.len())));
            }
            return Ok(Invocation::Batch(entries));
        }
        if input.get("detail-type").is_some() && input.get("detail").is_some() {
            let detail = input.get_mut("detail").map(Value::take).unwrap_or_default();
            if detail.get("type") != input.get("detail-type") {
                return Err(invalid("detail-type", "An EventBridge event's detail-type must be its detail's type.".into()));
            }
            return Ok(Invocation::EventBridge(detail));
        }
        if let Some(Value::Array(records)) = input.get_mut("Records").map(Value::take) {
            let messages = records
                .into_iter()
                .map(|r| {
                    let id = r.get("messageId").and_then(Value::as_str).unwrap_or_default().to_owned();
                    // A body that is not JSON is published as what it is, and refused as such.
                    let body = r.get("body").and_then(Value::as_str).map(|b| serde_json::from_str(b).unwrap_or(Value::String(b.to_owned())));
                    (id, body.unwrap_or_default())
                })
                .collect();
            return Ok(Invocation::Sqs(messages));
        }
        Ok(Invocation::One(input))
    }
}

/// An input, parsed; `key_required`: it must carry an `idempotency_key` (the EventBridge and SQS
/// ways in, whose deliveries may repeat).
fn parsed(input: Value, key_required: bool) -> Result<IngestRequest, IngestError> {
    let input = IngestRequest::from_json(input).map_err(IngestError::Invalid)?;
    if key_required && input.idempotency_key.is_none() {
        return Err(IngestError::Invalid(ApiError::invalid(
            Code::ParameterMissing,
            "idempotency_key",
            "Publishing through EventBridge or SQS needs an idempotency_key: their deliveries may repeat.",
        )));
    }
    Ok(input)
}

/// One batch entry's result: `{"event": …}` or `{"error": {type, message, param?}}`.
pub fn entry_result(r: Result<Event, IngestError>) -> Value {
    match r {
        Ok(event) => json!({ "event": event }),
        Err(IngestError::Invalid(e)) => json!({ "error": e.body()["error"] }),
        Err(e @ IngestError::KeyReused(_)) => json!({ "error": { "type": "idempotency_error", "message": e.to_string(), "param": "idempotency_key" } }),
        Err(e @ IngestError::Store(_)) => json!({ "error": { "type": "api_error", "message": e.to_string() } }),
    }
}

/// What a publish asks, whatever the order of its objects' keys: its type, object and request.
fn fingerprint(event: &Event) -> String {
    let asked = serde_json::json!({"object": Value::Object(event.data.object.clone()), "request": event.request});
    idempotency::fingerprint(&[event.event_type.as_str()], &canonical(&asked))
}

/// `v` with every object's keys in order.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Why an ingestion failed: a bad input (the caller's fault) or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid input: {0}")]
    Invalid(ApiError),
    #[error("idempotency_key {0:?} published another event (a different type, object or request) in the last 24 hours")]
    KeyReused(PublishKey),
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
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"id": "pay_1"}),
            serde_json::json!({"object": "payment"}),
            serde_json::json!([1]),
            serde_json::json!({"id": 1, "object": "payment"}),
        ] {
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

    #[test]
    fn an_invocation_is_told_by_its_shape() {
        let one = serde_json::json!({"account_id": "acct_1", "mode": "test", "type": "payment.succeeded", "data": {}});
        assert_eq!(Invocation::of(one.clone()).unwrap(), Invocation::One(one.clone()));
        assert_eq!(Invocation::of(serde_json::json!({"entries": [one.clone(), 5]})).unwrap(), Invocation::Batch(vec![one.clone(), serde_json::json!(5)]));
        for bad in [serde_json::json!({"entries": []}), serde_json::json!({"entries": vec![1; 101]}), serde_json::json!({"entries": {}})] {
            let Err(IngestError::Invalid(e)) = Invocation::of(bad) else { panic!("refused") };
            assert_eq!(e.body()["error"]["param"], "entries");
        }
        let bridge = serde_json::json!({"version": "0", "source": "payments", "detail-type": "payment.succeeded", "detail": one});
        assert_eq!(Invocation::of(bridge).unwrap(), Invocation::EventBridge(one.clone()));
        let mislabelled = serde_json::json!({"detail-type": "payment.failed", "detail": one});
        assert!(matches!(Invocation::of(mislabelled), Err(IngestError::Invalid(_))));
        let sqs = serde_json::json!({"Records": [
            {"messageId": "m1", "eventSource": "aws:sqs", "body": one.to_string()},
            {"messageId": "m2", "eventSource": "aws:sqs", "body": "not json"},
        ]});
        assert_eq!(Invocation::of(sqs).unwrap(), Invocation::Sqs(vec![("m1".into(), one), ("m2".into(), serde_json::json!("not json"))]));
    }
}
