//! The event object, exactly as the API reference shows it.

use std::fmt::Write;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::model::event_type::EventType;
use crate::model::ids::{EventId, Timestamp};

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
    pub fn with_id(id: EventId, event_type: EventType, object: serde_json::Map<String, serde_json::Value>, request: EventRequest) -> Self {
        Event { id, object: EventTag, event_type, created_at: id.created_at(), data: EventData { object }, pending_webhooks: 0, request }
    }
}

/// An event as the API and webhooks send it: its JSON, rendered once when the event was written and
/// read back as one string, with only `pending_webhooks` filled in at read time (see
/// [`EventJson::fill`]). Serialises as exactly that JSON; a page of events is a concatenation.
#[derive(Debug, Clone)]
pub struct EventJson {
    pub id: EventId,
    pub event_type: EventType,
    pub pending_webhooks: u32,
    json: Box<RawValue>,
}

/// What precedes `pending_webhooks`'s value in an event's JSON, and what follows it: the reference's
/// field order puts `request`, whose strings are escaped, after it, so the last match is the field.
const PENDING_KEY: &str = "\"pending_webhooks\":";
const PENDING_NEXT: &str = ",\"request\":";

impl EventJson {
    /// An event's JSON as written, and the byte offset of its `pending_webhooks` value in it.
    pub fn render(event: &Event) -> (String, usize) {
        let json = serde_json::to_string(event).expect("events serialise");
        let mark = format!("{PENDING_KEY}{}{PENDING_NEXT}", event.pending_webhooks);
        let at = json.rfind(&mark).expect("an event's JSON has pending_webhooks before request") + PENDING_KEY.len();
        (json, at)
    }

    /// The JSON of [`EventJson::render`] with the value at `at` replaced by `pending_webhooks`.
    /// `None` when `json` is not such a rendering.
    pub fn fill(id: EventId, event_type: EventType, json: &str, at: usize, pending_webhooks: u32) -> Option<EventJson> {
        let (head, rest) = (json.get(..at)?, json.get(at..)?);
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !head.ends_with(PENDING_KEY) || digits == 0 || !rest[digits..].starts_with(PENDING_NEXT) {
            return None;
        }
        let mut filled = String::with_capacity(json.len() + 10);
        filled.push_str(head);
        write!(filled, "{pending_webhooks}").expect("writing to a String");
        filled.push_str(&rest[digits..]);
        let json = RawValue::from_string(filled).ok()?;
        Some(EventJson { id, event_type, pending_webhooks, json })
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.json.get()
    }

    /// The event as a value (for code that looks inside `data`).
    pub fn to_event(&self) -> Result<Event, serde_json::Error> {
        serde_json::from_str(self.json.get())
    }
}

impl From<&Event> for EventJson {
    fn from(event: &Event) -> Self {
        let json = serde_json::value::to_raw_value(event).expect("events serialise");
        EventJson { id: event.id, event_type: event.event_type, pending_webhooks: event.pending_webhooks, json }
    }
}

/// Equal when the JSON is the same text (the other fields are read from it).
impl PartialEq for EventJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for EventJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
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
        if s == "event" { Ok(EventTag) } else { Err(serde::de::Error::custom(format!("expected \"event\", found {s:?}"))) }
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
    fn rendered_json_takes_the_current_pending_count() {
        let mut event: Event = serde_json::from_value(reference_example()).unwrap();
        // Strings that look like the field, in data and in request, do not fool the splice.
        event.data.object.insert("pending_webhooks".into(), json!(event.pending_webhooks));
        event.data.object.insert("request".into(), json!({"id": "req_in_data"}));
        event.data.object.insert("note".into(), json!("\"pending_webhooks\":1,\"request\":"));
        event.request.idempotency_key = Some("\"pending_webhooks\":1,\"request\":".into());
        let (json, at) = EventJson::render(&event);
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event, "what is stored is the event");
        for now in [0, 7, 1234, u32::MAX] {
            let filled = EventJson::fill(event.id, event.event_type, &json, at, now).unwrap();
            let mut expected = event.clone();
            expected.pending_webhooks = now;
            assert_eq!(filled.to_event().unwrap(), expected);
            assert_eq!(filled.as_str(), serde_json::to_string(&expected).unwrap(), "byte for byte what serde renders");
            assert_eq!(serde_json::to_string(&filled).unwrap(), filled.as_str());
        }
        let from = EventJson::from(&event);
        assert_eq!(from.as_str(), json);
    }

    #[test]
    fn a_json_that_is_not_a_rendering_is_refused() {
        let event: Event = serde_json::from_value(reference_example()).unwrap();
        let (json, at) = EventJson::render(&event);
        let fill = |j: &str, at: usize| EventJson::fill(event.id, event.event_type, j, at, 3);
        assert!(fill(&json, at).is_some());
        for wrong in [0, at - 1, at + 1, json.len(), json.len() + 5] {
            assert!(fill(&json, wrong).is_none(), "offset {wrong}");
        }
        assert!(fill(&json[..json.len() - 1], at).is_none(), "not JSON");
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
