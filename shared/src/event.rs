//! The event object, exactly as the API reference shows it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event_type::EventType;
use crate::ids::{Timestamp, EventId};

/// An event: something that happened in an account. Serialises to the reference's shape:
/// `{"id","object":"event","type","created_at","data":{"object":{…}},"pending_webhooks","request":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub object: EventTag,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub created_at: Timestamp,
    pub data: EventData,
    pub pending_webhooks: u32,
    pub request: EventRequest,
}

impl Event {
    /// A new event of `event_type`, with a fresh id and `created_at` taken from that id.
    pub fn new(event_type: EventType, object: serde_json::Map<String, serde_json::Value>, request: EventRequest) -> Self {
        Self::with_id(EventId::generate(), event_type, object, request)
    }

    /// An event with a given id (imports, backfills, tests); `created_at` is the id's time.
    pub fn with_id(
        id: EventId,
        event_type: EventType,
        object: serde_json::Map<String, serde_json::Value>,
        request: EventRequest,
    ) -> Self {
        Event {
            id,
            object: EventTag,
            event_type,
            created_at: id.created_at(),
            data: EventData { object },
            pending_webhooks: 0,
            request,
        }
    }
}

/// `data`: the object the event is about (a payment, a subscription, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    pub object: serde_json::Map<String, serde_json::Value>,
}

/// `request`: the API request that caused the event; both fields are null for automatic events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRequest {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// The constant `"object": "event"`; anything else is refused when reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTag;

impl Serialize for EventTag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("event")
    }
}

impl<'de> Deserialize<'de> for EventTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "event" {
            Ok(EventTag)
        } else {
            Err(serde::de::Error::custom(format!("expected \"event\", found {s:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The reference's example, with a well-formed id (the reference's `evt_abc123def456` is a placeholder).
    fn reference_example() -> Value {
        json!({
            "id": "evt_01HM5Y8Z3K9Q2W4E6R8T0Y2V4J",
            "object": "event",
            "type": "payment.succeeded",
            "created_at": "2024-01-15T10:30:00Z",
            "data": {
                "object": {
                    "id": "pay_xyz789",
                    "object": "payment",
                    "amount": 5000,
                    "currency": "GHS",
                    "status": "succeeded",
                    "payment_method": "mobile_money",
                    "provider": "mtn",
                    "phone": "024****567"
                }
            },
            "pending_webhooks": 1,
            "request": { "id": "req_abc123", "idempotency_key": "order_1234" }
        })
    }

    fn shape(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
            Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
            Value::String(_) => json!("string"),
            Value::Number(_) => json!(0),
            Value::Bool(_) => json!(false),
            Value::Null => Value::Null,
        }
    }

    #[test]
    fn event_json_round_trips_in_the_reference_shape() {
        let example = reference_example();
        let event: Event = serde_json::from_value(example.clone()).unwrap();
        assert_eq!(event.event_type, EventType::PaymentSucceeded);
        assert_eq!(event.pending_webhooks, 1);
        assert_eq!(event.request.idempotency_key.as_deref(), Some("order_1234"));
        let back = serde_json::to_value(&event).unwrap();
        assert_eq!(back, example);
        assert_eq!(shape(&back), shape(&example));
    }

    #[test]
    fn new_events_take_created_at_from_their_id() {
        let e = Event::new(EventType::PayoutCreated, Default::default(), EventRequest::default());
        assert_eq!(e.created_at, e.id.created_at());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["object"], "event");
        assert_eq!(v["request"], json!({"id": null, "idempotency_key": null}));
        assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn wrong_object_or_type_is_refused() {
        let mut bad = reference_example();
        bad["object"] = json!("charge");
        assert!(serde_json::from_value::<Event>(bad).is_err());
        let mut bad = reference_example();
        bad["type"] = json!("payment.exploded");
        assert!(serde_json::from_value::<Event>(bad).is_err());
    }
}
