//! Webhook endpoints: the model and the WebhookEndpoints table (pk `{account}#{mode}`, sort key `id`).
//! At most [`MAX_ENDPOINTS`] per account and mode, enforced by a counter item in the same
//! transaction as the put, so concurrent creates cannot exceed it.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, Code};
use crate::event_type::{EventType, TypeSelector};
use crate::ids::{CreatedAt, MalformedId, Mode, Principal, unix_now};
use crate::store::{StoreError, transact_write};
use crate::webhook::signature::WebhookSecret;

pub const MAX_ENDPOINTS: u32 = 16;
/// How long the old secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_SECS: u64 = 24 * 3600;
const COUNTER_ID: &str = "meta#endpoint_count";

/// `we_` + ULID: time-ordered like event ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(String);

impl EndpointId {
    pub fn generate() -> Self {
        EndpointId(format!("we_{}", ulid::Ulid::generate()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the endpoint was created, in unix milliseconds (from the ULID).
    pub fn created_ms(&self) -> u64 {
        ulid::Ulid::from_string(&self.0[3..]).map(|u| u.timestamp_ms()).unwrap_or(0)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EndpointId {
    type Err = MalformedId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("we_").map(ulid::Ulid::from_string) {
            Some(Ok(u)) if s[3..] == u.to_string() => Ok(EndpointId(s.to_owned())),
            _ => Err(MalformedId { kind: "webhook endpoint id", value: s.chars().take(80).collect() }),
        }
    }
}

impl Serialize for EndpointId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EndpointId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

impl FromStr for EndpointStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "enabled" => Ok(EndpointStatus::Enabled),
            "disabled" => Ok(EndpointStatus::Disabled),
            _ => Err(()),
        }
    }
}

/// What an endpoint subscribes to: everything (`["*"]`) or a set of types and family wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnabledEvents {
    All,
    Selected(Vec<TypeSelector>),
}

impl EnabledEvents {
    /// Parses the `enabled_events` parameter: non-empty; `*` alone or known types / `family.*`.
    pub fn parse(values: &[String]) -> Result<Self, ApiError> {
        let bad = |m: String| ApiError::invalid(Code::ParameterInvalid, "enabled_events", m);
        if values.is_empty() {
            return Err(bad("enabled_events must name at least one event type, or \"*\".".into()));
        }
        if values.iter().any(|v| v == "*") {
            return if values.len() == 1 { Ok(EnabledEvents::All) } else { Err(bad("\"*\" must be the only entry of enabled_events.".into())) };
        }
        let mut selectors = values
            .iter()
            .map(|v| v.parse::<TypeSelector>().map_err(|_| bad(format!("Invalid event type: '{v}'."))))
            .collect::<Result<Vec<_>, _>>()?;
        selectors.sort();
        selectors.dedup();
        Ok(EnabledEvents::Selected(selectors))
    }

    pub fn matches(&self, t: EventType) -> bool {
        match self {
            EnabledEvents::All => true,
            EnabledEvents::Selected(s) => s.iter().any(|sel| sel.matches(t)),
        }
    }

    pub fn to_strings(&self) -> Vec<String> {
        match self {
            EnabledEvents::All => vec!["*".to_owned()],
            EnabledEvents::Selected(s) => s.iter().map(ToString::to_string).collect(),
        }
    }
}

/// What [`EndpointStore::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// Nothing: the account and mode have this many endpoints already (or, for a fixed id such as
    /// the samples', an endpoint with this id exists).
    LimitReached(u32),
}

/// The WebhookEndpoints table's item.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EndpointItem {
    pk: String,
    id: EndpointId,
    url: String,
    enabled_events: Vec<String>,
    description: Option<String>,
    status: EndpointStatus,
    created_at: CreatedAt,
    secret: WebhookSecret,
    previous_secret: Option<WebhookSecret>,
    previous_secret_expires_at: Option<u64>,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub mode: Mode,
    pub url: String,
    pub enabled_events: EnabledEvents,
    pub description: Option<String>,
    pub status: EndpointStatus,
    pub created_at: CreatedAt,
    pub secret: WebhookSecret,
    pub previous_secret: Option<(WebhookSecret, u64)>,
}

impl Endpoint {
    /// Whether this endpoint gets `event`: enabled, subscribed to its type, and older than the
    /// event (endpoints get the events made after them, as Stripe's do; ids carry their times).
    pub fn wants(&self, event: &crate::event::Event) -> bool {
        self.status == EndpointStatus::Enabled
            && self.enabled_events.matches(event.event_type)
            && self.id.created_ms() <= event.id.ulid().timestamp_ms()
    }

    /// The secrets that sign a delivery now: the current one, and the previous one during its overlap.
    pub fn signing_secrets(&self, now: u64) -> Vec<&WebhookSecret> {
        let mut v = vec![&self.secret];
        if let Some((old, until)) = &self.previous_secret {
            if now < *until {
                v.push(old);
            }
        }
        v
    }

    /// The API's `webhook_endpoint` object; the secret only when asked (creation, rotation).
    pub fn to_json(&self, with_secret: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "enabled_events": self.enabled_events.to_strings(),
            "description": self.description,
            "status": self.status,
            "created_at": self.created_at,
            "livemode": self.mode == Mode::Live,
        });
        if with_secret {
            v["secret"] = Value::String(self.secret.expose().to_owned());
        }
        v
    }

    fn from_item(item: EndpointItem, mode: Mode) -> Result<Self, StoreError> {
        let enabled_events = EnabledEvents::parse(&item.enabled_events)
            .map_err(|e| StoreError::Dynamo(format!("stored enabled_events: {e}")))?;
        Ok(Endpoint {
            id: item.id,
            mode,
            url: item.url,
            enabled_events,
            description: item.description,
            status: item.status,
            created_at: item.created_at,
            secret: item.secret,
            previous_secret: item.previous_secret.zip(item.previous_secret_expires_at),
        })
    }

    fn to_item(&self, principal: &Principal) -> EndpointItem {
        EndpointItem {
            pk: principal.partition(),
            id: self.id.clone(),
            url: self.url.clone(),
            enabled_events: self.enabled_events.to_strings(),
            description: self.description.clone(),
            status: self.status,
            created_at: self.created_at,
            secret: self.secret.clone(),
            previous_secret: self.previous_secret.as_ref().map(|(s, _)| s.clone()),
            previous_secret_expires_at: self.previous_secret.as_ref().map(|(_, t)| *t),
        }
    }
}

/// The changes of `POST /v1/webhook_endpoints/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub enabled_events: Option<EnabledEvents>,
    pub description: Option<Option<String>>,
    pub status: Option<EndpointStatus>,
}

#[derive(Debug, Clone)]
pub struct EndpointStore {
    client: Client,
    table: String,
}

fn key(principal: &Principal, id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(principal.partition())),
        ("id".to_owned(), AttributeValue::S(id.to_owned())),
    ])
}

impl EndpointStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        EndpointStore { client, table: table.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates an endpoint, unless the account+mode has [`MAX_ENDPOINTS`] already.
    pub async fn create(&self, principal: &Principal, endpoint: &Endpoint) -> Result<Created, StoreError> {
        let item = serde_dynamo::to_item(endpoint.to_item(principal))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .build()?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(principal, COUNTER_ID)))
            .update_expression("SET n = if_not_exists(n, :zero) + :one")
            .condition_expression("attribute_not_exists(n) OR n < :max")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":max", AttributeValue::N(MAX_ENDPOINTS.to_string()))
            .build()?;
        let items = vec![TransactWriteItem::builder().update(count).build(), TransactWriteItem::builder().put(put).build()];
        Ok(if transact_write(&self.client, items).await? { Created::Created } else { Created::LimitReached(MAX_ENDPOINTS) })
    }

    pub async fn get(&self, principal: &Principal, id: &EndpointId) -> Result<Option<Endpoint>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(principal, id.as_str())))
            .consistent_read(true)
            .send()
            .await?;
        out.item.map(|i| Endpoint::from_item(serde_dynamo::from_item(i)?, principal.mode)).transpose()
    }

    /// Every endpoint of the account+mode (at most 16), newest first: one Query.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<Endpoint>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(id, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(principal.partition()))
            .expression_attribute_values(":prefix", AttributeValue::S("we_".into()))
            .scan_index_forward(false)
            .consistent_read(true)
            .send()
            .await?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| Endpoint::from_item(serde_dynamo::from_item(i)?, principal.mode))
            .collect()
    }

    /// Writes an endpoint back (after an update or a rotation), only if it still exists.
    pub async fn replace(&self, principal: &Principal, endpoint: &Endpoint) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(endpoint.to_item(principal))?))
            .condition_expression("attribute_exists(id)")
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets the status only (410 Gone disables an endpoint).
    pub async fn set_status(&self, principal: &Principal, id: &EndpointId, status: EndpointStatus) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(principal, id.as_str())))
            .update_expression("SET #s = :s")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", AttributeValue::S(format!("{status:?}").to_lowercase()))
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes an endpoint and releases its place under the limit. False when there was none.
    pub async fn delete(&self, principal: &Principal, id: &EndpointId) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(principal, id.as_str())))
            .condition_expression("attribute_exists(id)")
            .build()?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(principal, COUNTER_ID)))
            .update_expression("SET n = n - :one")
            .condition_expression("n > :zero")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()?;
        transact_write(&self.client, vec![TransactWriteItem::builder().delete(delete).build(), TransactWriteItem::builder().update(count).build()])
            .await
    }
}

/// A new endpoint (not yet stored).
pub fn new_endpoint(mode: Mode, url: String, enabled_events: EnabledEvents, description: Option<String>) -> Endpoint {
    Endpoint {
        id: EndpointId::generate(),
        mode,
        url,
        enabled_events,
        description,
        status: EndpointStatus::Enabled,
        created_at: CreatedAt(unix_now()),
        secret: WebhookSecret::generate(),
        previous_secret: None,
    }
}

/// Rolls the secret; the old one keeps signing for [`ROTATION_OVERLAP_SECS`].
pub fn rotate(endpoint: &mut Endpoint, now: u64) {
    let old = std::mem::replace(&mut endpoint.secret, WebhookSecret::generate());
    endpoint.previous_secret = Some((old, now + ROTATION_OVERLAP_SECS));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_type::Family;

    #[test]
    fn enabled_events_parse_and_match() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(EnabledEvents::parse(&s(&["*"])).unwrap(), EnabledEvents::All);
        assert!(EnabledEvents::All.matches(EventType::CustomerDeleted));
        let e = EnabledEvents::parse(&s(&["payment.*", "refund.failed", "payment.*"])).unwrap();
        assert_eq!(
            e,
            EnabledEvents::Selected(vec![TypeSelector::Exact(EventType::RefundFailed), TypeSelector::Family(Family::Payment)])
        );
        assert!(e.matches(EventType::PaymentCanceled) && e.matches(EventType::RefundFailed));
        assert!(!e.matches(EventType::RefundCreated));
        for bad in [&[][..], &["*", "payment.created"][..], &["payment.nope"][..], &[""][..]] {
            let err = EnabledEvents::parse(&s(bad)).unwrap_err();
            assert_eq!(err.body()["error"]["param"], "enabled_events");
        }
    }

    #[test]
    fn ids_and_rotation() {
        let id = EndpointId::generate();
        assert_eq!(id.as_str().parse::<EndpointId>().unwrap(), id);
        assert!("we_nope".parse::<EndpointId>().is_err());
        let mut ep = new_endpoint(Mode::Test, "https://example.com/h".into(), EnabledEvents::All, None);
        let first = ep.secret.clone();
        rotate(&mut ep, 1000);
        assert_ne!(ep.secret, first);
        assert_eq!(ep.signing_secrets(1000).len(), 2);
        assert_eq!(ep.signing_secrets(1000 + ROTATION_OVERLAP_SECS).len(), 1);
        let v = ep.to_json(false);
        assert!(v.get("secret").is_none());
        assert_eq!(ep.to_json(true)["secret"], ep.secret.expose());
    }
}
