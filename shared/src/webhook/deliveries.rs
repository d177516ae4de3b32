//! Delivery records in the Deliveries table: pk `{account}#{mode}#{event id}`, sk `{endpoint id}#state`
//! for the state of one (event, endpoint) and `{endpoint id}#attempt#{ulid}` for each attempt. So "the
//! attempts of event X" is one Query and "did endpoint Y get event X" one GetItem.
//!
//! `pending_webhooks` of the event moves with the state in the same transaction: +1 when a state
//! opens, -1 when it closes (pending → succeeded, failed or canceled). A state closes once, so the
//! count drops exactly once per (event, endpoint) however often SQS delivers a message.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ids::{EventId, Principal, unix_now};
use crate::store::{StoreError, transact_write};
use crate::webhook::endpoints::EndpointId;

/// Kept for as long as events are.
const RETENTION_SECS: u64 = 30 * 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    /// The endpoint or the event went away before delivery.
    Canceled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateItem {
    pk: String,
    sk: String,
    event_id: EventId,
    endpoint_id: EndpointId,
    status: DeliveryStatus,
    updated_at: u64,
    expires_at: u64,
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
}

impl Attempt {
    pub fn to_json(&self) -> Value {
        json!({
            "object": "webhook_delivery_attempt",
            "event": self.event_id,
            "endpoint": self.endpoint_id,
            "attempt": self.attempt,
            "status": if self.succeeded { "succeeded" } else { "failed" },
            "http_status": self.http_status,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "response_body": self.response_body,
            "created_at": crate::ids::CreatedAt(self.created_at),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AttemptItem {
    pk: String,
    sk: String,
    expires_at: u64,
    attempt: Attempt,
}

#[derive(Debug, Clone)]
pub struct DeliveryStore {
    client: Client,
    table: String,
    events_table: String,
}

fn pk(principal: &Principal, event: EventId) -> String {
    format!("{}#{}", principal.partition(), event)
}

fn state_key(principal: &Principal, event: EventId, endpoint: &EndpointId) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk(principal, event))),
        ("sk".to_owned(), AttributeValue::S(format!("{endpoint}#state"))),
    ])
}

impl DeliveryStore {
    pub fn new(client: Client, table: impl Into<String>, events_table: impl Into<String>) -> Self {
        DeliveryStore { client, table: table.into(), events_table: events_table.into() }
    }

    fn pending_change(&self, principal: &Principal, event: EventId, delta: i32) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.events_table)
            .key("pk", AttributeValue::S(principal.partition()))
            .key("id", AttributeValue::S(event.to_string()))
            .update_expression("ADD pending_webhooks :d")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_values(":d", AttributeValue::N(delta.to_string()))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Opens the pending state of (event, endpoint) and counts it in `pending_webhooks`, once.
    /// False when it was open or done already (a re-processed stream record).
    pub async fn open(&self, principal: &Principal, event: EventId, endpoint: &EndpointId) -> Result<bool, StoreError> {
        let now = unix_now();
        let item = StateItem {
            pk: pk(principal, event),
            sk: format!("{endpoint}#state"),
            event_id: event,
            endpoint_id: endpoint.clone(),
            status: DeliveryStatus::Pending,
            updated_at: now,
            expires_at: now + RETENTION_SECS,
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .condition_expression("attribute_not_exists(sk)")
            .build()?;
        transact_write(&self.client, vec![TransactWriteItem::builder().put(put).build(), self.pending_change(principal, event, 1)?])
            .await
    }

    /// Re-opens a closed state (a resend). False when it is pending already.
    pub async fn reopen(&self, principal: &Principal, event: EventId, endpoint: &EndpointId) -> Result<bool, StoreError> {
        if self.open(principal, event, endpoint).await? {
            return Ok(true);
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(state_key(principal, event, endpoint)))
            .update_expression("SET #s = :pending, updated_at = :now")
            .condition_expression("#s <> :pending")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .expression_attribute_values(":now", AttributeValue::N(unix_now().to_string()))
            .build()?;
        transact_write(&self.client, vec![TransactWriteItem::builder().update(update).build(), self.pending_change(principal, event, 1)?])
            .await
    }

    pub async fn status(&self, principal: &Principal, event: EventId, endpoint: &EndpointId) -> Result<Option<DeliveryStatus>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(state_key(principal, event, endpoint)))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.map(serde_dynamo::from_item::<_, StateItem>).transpose()?.map(|s| s.status))
    }

    /// Closes a pending state with `status` and, when the event still exists, decrements its
    /// `pending_webhooks`, in one transaction. False when it was closed already: the decrement
    /// happens once.
    pub async fn close(
        &self,
        principal: &Principal,
        event: EventId,
        endpoint: &EndpointId,
        status: DeliveryStatus,
        event_exists: bool,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(state_key(principal, event, endpoint)))
            .update_expression("SET #s = :final, updated_at = :now")
            .condition_expression("#s = :pending")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":final", AttributeValue::S(serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()))
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .expression_attribute_values(":now", AttributeValue::N(unix_now().to_string()))
            .build()?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        // The event may be gone (TTL); the state still closes.
        if event_exists {
            items.push(self.pending_change(principal, event, -1)?);
        }
        transact_write(&self.client, items).await
    }

    pub async fn record_attempt(&self, principal: &Principal, attempt: &Attempt) -> Result<(), StoreError> {
        let item = AttemptItem {
            pk: pk(principal, attempt.event_id),
            sk: format!("{}#attempt#{}", attempt.endpoint_id, ulid::Ulid::generate()),
            expires_at: attempt.created_at + RETENTION_SECS,
            attempt: attempt.clone(),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .send()
            .await?;
        Ok(())
    }

    /// Every attempt at delivering `event`, to any endpoint, oldest first: one Query.
    pub async fn attempts(&self, principal: &Principal, event: EventId) -> Result<Vec<Attempt>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk(principal, event)))
            .consistent_read(true)
            .send()
            .await?;
        let mut attempts: Vec<(String, Attempt)> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.get("sk").and_then(|s| s.as_s().ok()).is_some_and(|s| s.contains("#attempt#")))
            .map(|i| serde_dynamo::from_item::<_, AttemptItem>(i).map(|a| (a.sk.rsplit('#').next().unwrap_or_default().to_owned(), a.attempt)))
            .collect::<Result<_, _>>()?;
        attempts.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(attempts.into_iter().map(|(_, a)| a).collect())
    }
}
