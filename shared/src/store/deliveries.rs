//! Delivery records in the Deliveries table: pk `{account}#{mode}#{event id}`, sk `{endpoint id}#state`
//! for the state of one (event, endpoint) and `{endpoint id}#attempt#{ulid}` for each attempt. So "the
//! attempts of event X" is one Query and "did endpoint Y get event X" one GetItem.
//!
//! These states are the source of truth of delivery; SQS only schedules. A state is opened in the
//! same transaction as its event (see `ingest`), so `pending_webhooks` counts it from the event's
//! first moment, and it moves with the state in the same transaction ever after: -1 when the state
//! settles (pending → succeeded, failed or canceled), +1 when a resend or recover re-opens it. A
//! state settles once, so the count drops exactly once per (event, endpoint).
//!
//! Sparse indexes make unfinished work findable by a key condition:
//! - `ByDue` (`due_shard`, `due_at`): every pending state, with the time at which the scheduler
//!   (`webhook::sweeper`) must enqueue it: a retry's next attempt, or, for a state whose message
//!   should be on its way (just opened, just enqueued), that time plus the redrive grace. The
//!   scheduler enqueues the states whose time has passed, whatever happened to their messages, so
//!   waiting retries live here and not as invisible messages in SQS.
//! - `ByFailed` (`failed_pk` = `{account}#{mode}#{endpoint}`, `event_id`): every finally failed
//!   state, so `recover` finds an endpoint's failures since a time with one Query.
//! - `ByEndpoint` (`endpoint_pk` = `{account}#{mode}#{endpoint}#{s}`, `attempt_id`, a ULID): every
//!   attempt, with what an endpoint's health needs projected, so its attempts over a time range are
//!   key-condition Queries (`GET /v1/webhook_endpoints/{id}/stats`). Written over
//!   [`ENDPOINT_SHARDS`] keys (`s` from the attempt id), so one endpoint's attempts are not limited
//!   to one partition key's 1,000 write units a second; read from every shard (and from
//!   `{account}#{mode}#{endpoint}`, where attempts written before the shards are) and merged.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::EventJson;
use crate::ids::{AttemptId, EndpointId, EventId, Principal, unix_now};
use crate::store::endpoints::EndpointStore;
use crate::store::events::EventStore;
use crate::store::health::HealthStore;
use crate::store::{ItemRef, SortKey, StoreError, conditional, get_many, key_item, principal_of_partition, transact_write};
use crate::webhook::breaker::Health;
use crate::webhook::endpoints::Endpoint;

/// Kept for as long as events are.
const RETENTION_SECS: u64 = 30 * 86_400;
/// Partitions of the `ByDue` index, so that no single index partition takes every write: the
/// default (`PAYGATE_DUE_SHARDS`; the template's `DueShards` sets 512 for the platform's goal).
/// Raising the count loses nothing (the sweeper reads shards `0..count`, which hold every item
/// written with a smaller count); lowering it would strand the states of the shards it drops.
pub const DUE_SHARDS: u32 = 4;
/// The most `ByDue` shards a stack may have: the sweeper reads each one every second.
pub const MAX_DUE_SHARDS: u32 = 1024;
/// The `ByDue` index.
pub const DUE_INDEX: &str = "ByDue";
/// The `ByFailed` index.
pub const FAILED_INDEX: &str = "ByFailed";
/// The `ByEndpoint` index.
pub const ENDPOINT_INDEX: &str = "ByEndpoint";
/// `ByEndpoint` keys per endpoint: an attempt costs its key 2 write units, so 8 keys take one
/// endpoint to 4,000 attempts a second (`make capacity`). Only ever raised: a lower count would
/// leave the higher shards' attempts unread.
pub const ENDPOINT_SHARDS: u32 = 8;

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
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Canceled => "canceled",
        }
    }
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
    /// Attempts made since the state last opened.
    #[serde(default)]
    attempts: u32,
    /// Unix seconds before which no attempt is due (the backoff); 0 for "now".
    #[serde(default)]
    next_attempt_at: u64,
    /// Unix seconds when the state (last) opened: its retry schedule runs from here. Absent from
    /// states written before it was kept (their event's time stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    opened_at: Option<u64>,
    /// `ByDue` keys, present while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_shard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_at: Option<u64>,
    /// `ByFailed` key, present while finally failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed_pk: Option<String>,
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

/// One delivery as the deliverer reads it before sending: its state, its event and its endpoint,
/// each `None` when it does not exist, and the endpoint's health (default: healthy).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: Option<DeliveryState>,
    pub event: Option<EventJson>,
    pub endpoint: Option<Endpoint>,
    pub health: Health,
}

/// Changes per transaction in [`DeliveryStore::apply_all`]: at most three items each (the state,
/// the attempt, its event's count), within DynamoDB's 100 items per transaction.
pub const CHANGES_PER_TRANSACTION: usize = 25;

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

/// What the `ByFailed` index projects (its keys).
#[derive(Debug, Deserialize)]
struct FailedKey {
    event_id: EventId,
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
            "created_at": crate::ids::Timestamp(self.created_at),
            "next_retry_at": self.next_retry_at.map(crate::ids::Timestamp),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AttemptItem {
    pk: String,
    sk: String,
    expires_at: u64,
    attempt: Attempt,
    /// `ByEndpoint` keys (absent from attempts written before the index existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attempt_id: Option<String>,
    /// What `ByEndpoint` projects besides its keys, at the top level where an index can see it.
    #[serde(flatten)]
    summary: Option<SummaryFields>,
}

/// An attempt's fields that `ByEndpoint` projects (template.yaml lists the same names).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SummaryFields {
    event_id: EventId,
    attempt_number: u32,
    ok: bool,
    latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
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

#[derive(Debug, Deserialize)]
struct SummaryItem {
    attempt_id: String,
    #[serde(flatten)]
    fields: SummaryFields,
}

/// One `ByEndpoint` key being read newest first: what was read and not yet taken, and where its
/// next page starts.
struct KeyPager {
    key: String,
    items: std::collections::VecDeque<SummaryItem>,
    next: Option<HashMap<String, AttributeValue>>,
    done: bool,
}

/// The newest attempts to an endpoint in a time range, newest first, and whether there were more
/// than were read.
#[derive(Debug, Clone, Default)]
pub struct EndpointAttempts {
    pub attempts: Vec<AttemptSummary>,
    pub has_more: bool,
}

/// The writes of one state change, and the event whose `pending_webhooks` it releases (if any).
type ChangeItems = (Vec<TransactWriteItem>, Option<(Principal, EventId)>);

#[derive(Debug, Clone)]
pub struct DeliveryStore {
    client: Client,
    table: String,
    /// Where each event's `pending_webhooks` is (its key follows its account's shard plan).
    events: EventStore,
    /// How long a pending state may go untouched past its next attempt before the sweeper
    /// enqueues it again (`PAYGATE_REDRIVE_AFTER_SECONDS`).
    redrive_after: u64,
    /// How many `ByDue` shards states are spread over (and the sweeper reads).
    due_shards: u32,
}

fn pk(principal: &Principal, event: EventId) -> String {
    format!("{}#{}", principal.partition(), event)
}

fn state_key(principal: &Principal, event: EventId, endpoint: &EndpointId) -> HashMap<String, AttributeValue> {
    key_item(&SortKey { pk: pk(principal, event), sk: format!("{endpoint}#state") })
}

/// The `ByDue` partition of an event's states, of `shards`: from the random part of its id, so
/// every state of one event shares a partition and the partitions fill evenly.
fn due_shard(event: EventId, shards: u32) -> String {
    due_partition((event.ulid().random() % u128::from(shards.max(1))) as u32)
}

/// The `ByDue` partition key of shard number `shard`.
fn due_partition(shard: u32) -> String {
    format!("due#{shard}")
}

/// `{account}#{mode}#{endpoint}`: the partition of an endpoint's failures (`ByFailed`), of its
/// health item, and of its attempts written before `ByEndpoint` was sharded.
pub(crate) fn endpoint_partition(principal: &Principal, endpoint: &EndpointId) -> String {
    format!("{}#{endpoint}", principal.partition())
}

/// The `ByEndpoint` shard of an attempt: from its id's random part.
fn attempt_shard(id: &ulid::Ulid) -> u32 {
    (id.random() % u128::from(ENDPOINT_SHARDS)) as u32
}

/// `{account}#{mode}#{endpoint}#{shard}`: one of an endpoint's `ByEndpoint` keys.
fn endpoint_attempts_partition(principal: &Principal, endpoint: &EndpointId, shard: u32) -> String {
    format!("{}#{shard}", endpoint_partition(principal, endpoint))
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl DeliveryStore {
    pub fn new(client: Client, table: impl Into<String>, events: EventStore, redrive_after: Duration) -> Self {
        DeliveryStore { client, table: table.into(), events, redrive_after: redrive_after.as_secs(), due_shards: DUE_SHARDS }
    }

    /// The same store, spreading states over `shards` `ByDue` shards (1 to [`MAX_DUE_SHARDS`]).
    pub fn with_due_shards(mut self, shards: u32) -> Self {
        self.due_shards = shards.clamp(1, MAX_DUE_SHARDS);
        self
    }

    /// How many `ByDue` shards the sweeper reads.
    pub fn due_shards(&self) -> u32 {
        self.due_shards
    }

    /// The Deliveries table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The redrive grace, in seconds.
    pub fn redrive_after(&self) -> u64 {
        self.redrive_after
    }

    async fn pending_change(&self, principal: &Principal, event: EventId, delta: i32) -> Result<TransactWriteItem, StoreError> {
        self.events.pending_change(principal, event, delta).await
    }

    fn new_state(&self, principal: &Principal, event: EventId, endpoint: &EndpointId, now: u64) -> StateItem {
        StateItem {
            pk: pk(principal, event),
            sk: format!("{endpoint}#state"),
            event_id: event,
            endpoint_id: *endpoint,
            status: DeliveryStatus::Pending,
            updated_at: now,
            expires_at: now + RETENTION_SECS,
            attempts: 0,
            next_attempt_at: 0,
            opened_at: Some(now),
            due_shard: Some(due_shard(event, self.due_shards)),
            due_at: Some(now + self.redrive_after),
            failed_pk: None,
        }
    }

    /// The puts that open the pending states of a new event, one per subscribed endpoint, for the
    /// event's own transaction (the event item counts them in its `pending_webhooks`).
    pub fn opening(&self, principal: &Principal, event: EventId, endpoints: &[EndpointId]) -> Result<Vec<TransactWriteItem>, StoreError> {
        let now = unix_now();
        endpoints
            .iter()
            .map(|ep| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(serde_dynamo::to_item(self.new_state(principal, event, ep, now))?))
                    .condition_expression("attribute_not_exists(sk)")
                    .build()?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect()
    }

    /// Opens the state of (event, endpoint) again after it settled (a resend, a recover, a message
    /// moved back from the dead-letter queue), or for the first time, and counts it in
    /// `pending_webhooks`. Its attempts start again from 1. False when it is pending already.
    pub async fn reopen(&self, principal: &Principal, event: EventId, endpoint: &EndpointId) -> Result<bool, StoreError> {
        let now = unix_now();
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(state_key(principal, event, endpoint)))
            .update_expression(
                "SET #s = :pending, updated_at = :now, opened_at = :now, attempts = :zero, next_attempt_at = :zero, due_shard = :shard, due_at = :due REMOVE failed_pk",
            )
            .condition_expression("attribute_exists(sk) AND #s <> :pending")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":shard", s(due_shard(event, self.due_shards)))
            .expression_attribute_values(":due", n(now + self.redrive_after))
            .build()?;
        if transact_write(&self.client, vec![TransactWriteItem::builder().update(update).build(), self.pending_change(principal, event, 1).await?]).await? {
            return Ok(true);
        }
        // No state at all (an endpoint the event never went to): open one.
        let mut items = self.opening(principal, event, std::slice::from_ref(endpoint))?;
        items.push(self.pending_change(principal, event, 1).await?);
        transact_write(&self.client, items).await
    }

    /// For each (principal, event, endpoint): its state, its event, its endpoint (its delivery
    /// copy, under the endpoint's own key) and the endpoint's health, strongly consistent, all in
    /// one BatchGetItem across the three tables (up to 25 deliveries; an endpoint's items are read
    /// once however many deliveries go to it). An endpoint with no copy yet (written before copies
    /// existed) is read from the merchant's key in a second BatchGetItem, and its copy written.
    pub async fn snapshots(
        &self,
        events: &EventStore,
        endpoints: &EndpointStore,
        health: &HealthStore,
        deliveries: &[(Principal, EventId, EndpointId)],
    ) -> Result<Vec<Snapshot>, StoreError> {
        let mut refs: Vec<ItemRef> = Vec::with_capacity(deliveries.len() * 4);
        for (principal, event, endpoint) in deliveries {
            refs.extend([
                ItemRef { table: self.table.clone(), key: state_key(principal, *event, endpoint) },
                events.item_ref(principal, *event).await?,
                endpoints.copy_ref(principal, endpoint),
                health.item_ref(principal, endpoint),
            ]);
        }
        let mut items = get_many(&self.client, &refs).await?;
        let uncopied: Vec<usize> = (0..deliveries.len()).filter(|i| items[i * 4 + 2].is_none()).collect();
        if !uncopied.is_empty() {
            let originals: Vec<ItemRef> = uncopied.iter().map(|&i| endpoints.item_ref(&deliveries[i].0, &deliveries[i].2)).collect();
            for (&i, original) in uncopied.iter().zip(get_many(&self.client, &originals).await?) {
                if let Some(original) = &original {
                    endpoints.copy_from(&deliveries[i].0, &deliveries[i].2, original).await?;
                }
                items[i * 4 + 2] = original;
            }
        }
        let mut items = items.into_iter();
        deliveries
            .iter()
            .map(|(principal, _, _)| {
                let (state, event, endpoint, h) = (items.next().flatten(), items.next().flatten(), items.next().flatten(), items.next().flatten());
                Ok(Snapshot {
                    state: state.map(serde_dynamo::from_item::<_, StateItem>).transpose()?.map(DeliveryState::from),
                    event: event.map(EventStore::event_of).transpose()?,
                    endpoint: endpoint.map(|i| EndpointStore::endpoint_of(i, principal.mode)).transpose()?,
                    health: h.map(HealthStore::health_of).transpose()?.unwrap_or_default(),
                })
            })
            .collect()
    }

    pub async fn state(&self, principal: &Principal, event: EventId, endpoint: &EndpointId) -> Result<Option<DeliveryState>, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(state_key(principal, event, endpoint))).consistent_read(true).send().await?;
        Ok(out.item.map(serde_dynamo::from_item::<_, StateItem>).transpose()?.map(DeliveryState::from))
    }

    pub async fn status(&self, principal: &Principal, event: EventId, endpoint: &EndpointId) -> Result<Option<DeliveryStatus>, StoreError> {
        Ok(self.state(principal, event, endpoint).await?.map(|s| s.status))
    }

    /// Every item of one event's partition, states and attempts: one Query.
    async fn event_items(&self, principal: &Principal, event: EventId) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk(principal, event)))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.items.unwrap_or_default())
    }

    /// Every state of one event (one Query), attempts left out.
    pub async fn states(&self, principal: &Principal, event: EventId) -> Result<Vec<DeliveryState>, StoreError> {
        self.event_items(principal, event)
            .await?
            .into_iter()
            .filter(|i| i.get("sk").and_then(|s| s.as_s().ok()).is_some_and(|s| s.ends_with("#state")))
            .map(|i| serde_dynamo::from_item::<_, StateItem>(i).map(DeliveryState::from).map_err(StoreError::from))
            .collect()
    }

    fn attempt_put(&self, principal: &Principal, attempt: &Attempt) -> Result<TransactWriteItem, StoreError> {
        let id = ulid::Ulid::generate();
        let item = AttemptItem {
            pk: pk(principal, attempt.event_id),
            sk: format!("{}#attempt#{id}", attempt.endpoint_id),
            expires_at: attempt.created_at + RETENTION_SECS,
            attempt: attempt.clone(),
            endpoint_pk: Some(endpoint_attempts_partition(principal, &attempt.endpoint_id, attempt_shard(&id))),
            attempt_id: Some(id.to_string()),
            summary: Some(SummaryFields {
                event_id: attempt.event_id,
                attempt_number: attempt.attempt,
                ok: attempt.succeeded,
                latency_ms: attempt.latency_ms,
                http_status: attempt.http_status,
                error: attempt.error.clone(),
            }),
        };
        let put = Put::builder().table_name(&self.table).set_item(Some(serde_dynamo::to_item(item)?)).build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The writes of one change, and the event whose `pending_webhooks` it releases (if any).
    fn change_items(&self, change: &StateChange) -> Result<ChangeItems, StoreError> {
        match change {
            StateChange::Settle { principal, event, endpoint, status, attempt, event_exists } => {
                let mut update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(state_key(principal, *event, endpoint)))
                    .condition_expression("#s = :pending")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":final", s(status.as_str()))
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":now", n(unix_now()))
                    .expression_attribute_values(":one", n(u64::from(attempt.is_some())));
                // A final failure stays findable (`ByFailed`) for `recover`.
                update = if *status == DeliveryStatus::Failed {
                    update
                        .update_expression("SET #s = :final, updated_at = :now, failed_pk = :failed ADD attempts :one REMOVE due_shard, due_at")
                        .expression_attribute_values(":failed", s(endpoint_partition(principal, endpoint)))
                } else {
                    update.update_expression("SET #s = :final, updated_at = :now ADD attempts :one REMOVE due_shard, due_at")
                };
                let mut items = vec![TransactWriteItem::builder().update(update.build()?).build()];
                if let Some(a) = attempt {
                    items.push(self.attempt_put(principal, a)?);
                }
                // The event may be gone (TTL); the state still settles.
                Ok((items, event_exists.then(|| (principal.clone(), *event))))
            }
            StateChange::RetryLater { principal, attempt } => {
                let next_attempt_at = attempt.next_retry_at.unwrap_or_else(unix_now);
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(state_key(principal, attempt.event_id, &attempt.endpoint_id)))
                    .update_expression("SET updated_at = :now, next_attempt_at = :next, due_at = :due ADD attempts :one")
                    .condition_expression("#s = :pending")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":now", n(unix_now()))
                    .expression_attribute_values(":next", n(next_attempt_at))
                    // Due for the scheduler at the next attempt itself: it enqueues the state then.
                    .expression_attribute_values(":due", n(next_attempt_at))
                    .expression_attribute_values(":one", n(1))
                    .build()?;
                Ok((vec![TransactWriteItem::builder().update(update).build(), self.attempt_put(principal, attempt)?], None))
            }
            StateChange::Hold { principal, event, endpoint, until } => {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(state_key(principal, *event, endpoint)))
                    .update_expression("SET updated_at = :now, next_attempt_at = :until, due_at = :until")
                    .condition_expression("#s = :pending")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":now", n(unix_now()))
                    .expression_attribute_values(":until", n(*until))
                    .build()?;
                Ok((vec![TransactWriteItem::builder().update(update).build()], None))
            }
        }
    }

    /// Writes one change in one transaction, with the release of its event's `pending_webhooks`.
    /// False when the state was no longer pending (nothing written: the release happens once).
    pub async fn apply(&self, change: &StateChange) -> Result<bool, StoreError> {
        let (mut items, released) = self.change_items(change)?;
        if let Some((principal, event)) = released {
            items.push(self.pending_change(&principal, event, -1).await?);
        }
        transact_write(&self.client, items).await
    }

    /// Writes the changes of one batch together: one transaction per [`CHANGES_PER_TRANSACTION`],
    /// in which each event's `pending_webhooks` moves once, by the sum of its releases. A
    /// transaction that cannot be written whole (a state a duplicate settled meanwhile, an error)
    /// is written again change by change, as [`DeliveryStore::apply`] writes them. One result per
    /// change, in order.
    pub async fn apply_all(&self, changes: &[StateChange]) -> Vec<Result<bool, StoreError>> {
        let mut results = Vec::with_capacity(changes.len());
        for chunk in changes.chunks(CHANGES_PER_TRANSACTION) {
            if chunk.len() > 1 {
                match self.apply_together(chunk).await {
                    Ok(true) => {
                        results.extend(chunk.iter().map(|_| Ok(true)));
                        continue;
                    }
                    Ok(false) => tracing::info!("a state of the batch had changed meanwhile; writing each change alone"),
                    Err(e) => tracing::warn!(error = %e, "the batch's transaction failed; writing each change alone"),
                }
            }
            results.extend(join_all(chunk.iter().map(|c| self.apply(c))).await);
        }
        results
    }

    async fn apply_together(&self, changes: &[StateChange]) -> Result<bool, StoreError> {
        let mut items = Vec::new();
        let mut released: Vec<(Principal, EventId, i32)> = Vec::new();
        for change in changes {
            let (writes, release) = self.change_items(change)?;
            items.extend(writes);
            if let Some((principal, event)) = release {
                match released.iter_mut().find(|(p, e, _)| *p == principal && *e == event) {
                    Some((_, _, delta)) => *delta -= 1,
                    None => released.push((principal, event, -1)),
                }
            }
        }
        for (principal, event, delta) in released {
            items.push(self.pending_change(&principal, event, delta).await?);
        }
        transact_write(&self.client, items).await
    }

    /// Pending states of one `ByDue` shard whose time came at or before `now`, oldest first, at
    /// most `limit`: one Query on the index.
    pub async fn overdue(&self, shard: u32, now: u64, limit: i32) -> Result<Vec<Overdue>, StoreError> {
        let out = self
            .due_query(shard)
            .key_condition_expression("due_shard = :shard AND due_at <= :now")
            .expression_attribute_values(":now", n(now))
            .limit(limit)
            .send()
            .await?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| {
                let item: StateItem = serde_dynamo::from_item(i)?;
                let partition = item.pk.rsplit_once('#').map(|(p, _)| p).unwrap_or_default();
                let principal = principal_of_partition(partition).ok_or_else(|| StoreError::Malformed(format!("delivery key {:?}", item.pk)))?;
                Ok(Overdue { principal, event_id: item.event_id, endpoint_id: item.endpoint_id, due_at: item.due_at.unwrap_or_default() })
            })
            .collect()
    }

    /// The earliest due time in one `ByDue` shard, due or not (`None`: nothing pending there): one
    /// Query of one item.
    pub async fn next_due(&self, shard: u32) -> Result<Option<u64>, StoreError> {
        let out = self.due_query(shard).key_condition_expression("due_shard = :shard").limit(1).send().await?;
        Ok(out.items.unwrap_or_default().first().and_then(|i| i.get("due_at")?.as_n().ok()?.parse().ok()))
    }

    /// A Query of one `ByDue` shard, oldest due time first, with `:shard` bound; the caller adds
    /// its key condition (on `due_shard = :shard`, and on `due_at` if it wants).
    fn due_query(&self, shard: u32) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client.query().table_name(&self.table).index_name(DUE_INDEX).expression_attribute_values(":shard", s(due_partition(shard)))
    }

    /// Moves a pending state's due time to `until` (the sweeper, after enqueueing it), unless it
    /// changed since the sweeper read it: the message may have been handled already, and its new
    /// due time (a retry, a hold) stands. False when it is no longer pending, or changed.
    pub async fn postpone(&self, o: &Overdue, until: u64) -> Result<bool, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(state_key(&o.principal, o.event_id, &o.endpoint_id)))
            .update_expression("SET due_at = :until")
            .condition_expression("#s = :pending AND due_at = :seen")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":seen", n(o.due_at))
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        conditional(out)
    }

    /// The first `max` events whose delivery to `endpoint` finally failed, created at or after
    /// `since` (an id bound), oldest first, and whether there are more: Queries on `ByFailed`.
    pub async fn failed_since(&self, principal: &Principal, endpoint: &EndpointId, since: EventId, max: usize) -> Result<(Vec<EventId>, bool), StoreError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(FAILED_INDEX)
                .key_condition_expression("failed_pk = :f AND event_id >= :since")
                .expression_attribute_values(":f", s(endpoint_partition(principal, endpoint)))
                .expression_attribute_values(":since", s(since.to_string()))
                // One more than wanted: whether there are more is known without another read.
                .limit(i32::try_from(max + 1 - ids.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for i in out.items.unwrap_or_default() {
                ids.push(serde_dynamo::from_item::<_, FailedKey>(i)?.event_id);
            }
            if ids.len() > max {
                ids.truncate(max);
                return Ok((ids, true));
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok((ids, false));
            }
        }
    }

    /// Every attempt at delivering `event`, to any endpoint, oldest first: one Query.
    pub async fn attempts(&self, principal: &Principal, event: EventId) -> Result<Vec<Attempt>, StoreError> {
        Ok(self.attempts_with_ids(principal, event).await?.into_iter().map(|(_, a)| a).collect())
    }

    /// [`Self::attempts`], each with its id (its sort key's ULID).
    pub async fn attempts_with_ids(&self, principal: &Principal, event: EventId) -> Result<Vec<(AttemptId, Attempt)>, StoreError> {
        let mut attempts: Vec<(AttemptId, Attempt)> = self
            .event_items(principal, event)
            .await?
            .into_iter()
            .filter(|i| i.get("sk").and_then(|s| s.as_s().ok()).is_some_and(|s| s.contains("#attempt#")))
            .map(|i| {
                let a = serde_dynamo::from_item::<_, AttemptItem>(i)?;
                let ulid =
                    a.sk.rsplit('#')
                        .next()
                        .and_then(|u| u.parse::<ulid::Ulid>().ok())
                        .ok_or_else(|| StoreError::Malformed(format!("attempt sort key {}", a.sk)))?;
                Ok((AttemptId::from_ulid(ulid), a.attempt))
            })
            .collect::<Result<_, StoreError>>()?;
        attempts.sort_by_key(|(id, _)| *id);
        Ok(attempts)
    }

    /// The attempts to `endpoint` made in `[from_ms, to_ms)` (unix milliseconds), newest first, at
    /// most `max` of them: key-condition Queries on each of its `ByEndpoint` keys, merged newest
    /// first. Each key is read a page at a time, only when the merge needs its next item, so no
    /// more than `max` items plus one page per key are read.
    pub async fn endpoint_attempts(
        &self,
        principal: &Principal,
        endpoint: &EndpointId,
        from_ms: u64,
        to_ms: u64,
        max: usize,
    ) -> Result<EndpointAttempts, StoreError> {
        let keys: Vec<String> = std::iter::once(endpoint_partition(principal, endpoint))
            .chain((0..ENDPOINT_SHARDS).map(|s| endpoint_attempts_partition(principal, endpoint, s)))
            .collect();
        // A page of each key is a key's share of what is wanted, and at least a small page.
        let page = i32::try_from((max + 1).div_ceil(keys.len()).max(50)).unwrap_or(i32::MAX);
        let mut heads: Vec<KeyPager> = keys.into_iter().map(|key| KeyPager { key, items: Default::default(), next: None, done: false }).collect();
        let mut found = EndpointAttempts::default();
        loop {
            // Every key that has nothing read ahead but may have more reads its next page (at once).
            let reads = heads.iter_mut().filter(|h| h.items.is_empty() && !h.done).map(|h| self.attempts_page(h, from_ms, to_ms, page));
            for r in join_all(reads).await {
                r?;
            }
            // The newest attempt at the head of any key.
            let Some(newest) = heads.iter_mut().filter(|h| !h.items.is_empty()).max_by(|a, b| a.items[0].attempt_id.cmp(&b.items[0].attempt_id)) else {
                return Ok(found);
            };
            if found.attempts.len() == max {
                found.has_more = true;
                return Ok(found);
            }
            let item = newest.items.pop_front().expect("a head");
            let at_ms = item.attempt_id.parse::<ulid::Ulid>().map(|u| u.timestamp_ms()).unwrap_or_default();
            let f = item.fields;
            found.attempts.push(AttemptSummary {
                at_ms,
                event_id: f.event_id,
                attempt: f.attempt_number,
                succeeded: f.ok,
                latency_ms: f.latency_ms,
                http_status: f.http_status,
                error: f.error,
            });
        }
    }

    /// The next page of one `ByEndpoint` key's attempts in `[from_ms, to_ms)`, newest first.
    async fn attempts_page(&self, pager: &mut KeyPager, from_ms: u64, to_ms: u64, limit: i32) -> Result<(), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ENDPOINT_INDEX)
            .key_condition_expression("endpoint_pk = :e AND attempt_id BETWEEN :from AND :to")
            .expression_attribute_values(":e", s(pager.key.clone()))
            .expression_attribute_values(":from", s(ulid::Ulid::from_parts(from_ms, 0).to_string()))
            // The greatest ULID of the millisecond before `to_ms`.
            .expression_attribute_values(":to", s(ulid::Ulid::from_parts(to_ms.saturating_sub(1), u128::MAX).to_string()))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(pager.next.take())
            .send()
            .await?;
        for i in out.items.unwrap_or_default() {
            pager.items.push_back(serde_dynamo::from_item(i)?);
        }
        pager.next = out.last_evaluated_key;
        pager.done = pager.next.is_none();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Mode;

    fn attempt(error: Option<&str>) -> Attempt {
        Attempt {
            event_id: EventId::generate(),
            endpoint_id: EndpointId::generate(),
            attempt: 3,
            succeeded: error.is_none(),
            http_status: error.map(|_| 502),
            latency_ms: 41,
            error: error.map(str::to_owned),
            response_body: Some("bad gateway".into()),
            created_at: 1_780_000_000,
            next_retry_at: None,
        }
    }

    #[test]
    fn an_attempt_item_carries_what_by_endpoint_projects_and_reads_back() {
        let config = aws_sdk_dynamodb::Config::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let client = Client::from_conf(config);
        let store = DeliveryStore::new(client.clone(), "d", EventStore::new(client, "e", Duration::from_secs(60)), Duration::from_secs(60));
        let principal = Principal { account: crate::ids::AccountId::generate(), mode: Mode::Test };
        for a in [attempt(None), attempt(Some("HTTP 502"))] {
            let put = store.attempt_put(&principal, &a).unwrap().put.unwrap();
            let item = put.item;
            // One of the endpoint's ByEndpoint keys: its partition and a shard.
            let (key, shard) = item["endpoint_pk"].as_s().unwrap().rsplit_once('#').unwrap();
            assert_eq!(key, endpoint_partition(&principal, &a.endpoint_id));
            assert!(shard.parse::<u32>().unwrap() < ENDPOINT_SHARDS);
            assert_eq!(item["attempt_number"].as_n().unwrap(), "3");
            assert_eq!(item["ok"].as_bool().unwrap(), &a.succeeded);
            // What `attempts` reads back is the attempt as written.
            let back: AttemptItem = serde_dynamo::from_item(item.clone()).unwrap();
            assert_eq!(back.attempt.error, a.error);
            // What the index holds (its keys and projection only) reads as a summary.
            let projected: HashMap<_, _> = item
                .into_iter()
                .filter(|(k, _)| {
                    ["pk", "sk", "endpoint_pk", "attempt_id", "event_id", "attempt_number", "ok", "latency_ms", "http_status", "error"].contains(&k.as_str())
                })
                .collect();
            let s: SummaryItem = serde_dynamo::from_item(projected).unwrap();
            assert_eq!(
                (s.fields.event_id, s.fields.attempt_number, s.fields.ok, s.fields.latency_ms, s.fields.http_status),
                (a.event_id, 3, a.succeeded, 41, a.http_status)
            );
        }
    }

    #[test]
    fn an_attempt_written_before_the_index_still_reads() {
        let a = attempt(None);
        let old = serde_json::json!({"pk": "p", "sk": "s", "expires_at": 1, "attempt": serde_json::to_value(&a).unwrap()});
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(old).unwrap();
        let back: AttemptItem = serde_dynamo::from_item(item).unwrap();
        assert!(back.summary.is_none() && back.endpoint_pk.is_none());
        assert_eq!(back.attempt.latency_ms, 41);
    }
}
