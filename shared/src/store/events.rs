//! The Events table: conditional puts, strongly consistent gets, key-condition queries, and the
//! `pending_webhooks` counter ([`EventStore::pending_change`]). Which partition key an event has
//! is its account's shard plan's answer (`event_shards`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use crate::model::event::{Event, EventData, EventJson, EventRequest, EventTag};
use crate::model::event_type::{EventType, Family};
use crate::model::ids::{EventId, Principal, Timestamp};
use crate::store::event_shards::{ShardPlan, ShardPlans};
use crate::store::{IdKey, Item, ItemRef, StoreError, key_item, transact_write};

/// The Events table's item as written: the event's JSON, rendered once (what the API and webhooks
/// send), beside its keys, its TTL and the attributes reads need apart from it. `pending_webhooks`
/// is the one attribute that changes: the JSON keeps the value it was written with, and reads splice
/// the attribute's current value in at `json_pending_at` (see [`EventJson::fill`]). A page of 100 is
/// then 100 strings for the SDK to parse, not 100 trees of attributes.
/// Keys: `pk` = `{account}#{mode}` or, for an account whose plan shards its events,
/// `{account}#{mode}#{s}`; sort key `id`; GSI `ByType` on `type_pk` (`{pk}#{type}`), GSI `ByFamily`
/// on `family_pk` (`{pk}#{family}`).
#[derive(Debug, Serialize)]
struct EventItem {
    pk: String,
    id: EventId,
    type_pk: String,
    family_pk: String,
    #[serde(rename = "type")]
    event_type: EventType,
    created_at: Timestamp,
    pending_webhooks: u32,
    json: String,
    json_pending_at: usize,
    expires_at: u64,
}

impl EventItem {
    fn new(partition: String, event: &Event, expires_at: u64) -> Self {
        let (json, json_pending_at) = EventJson::render(event);
        EventItem {
            id: event.id,
            type_pk: type_partition(&partition, event.event_type),
            family_pk: family_partition(&partition, event.event_type.family()),
            pk: partition,
            event_type: event.event_type,
            created_at: event.created_at,
            pending_webhooks: event.pending_webhooks,
            json,
            json_pending_at,
            expires_at,
        }
    }
}

/// An item written before events carried their JSON (within the retention after an upgrade): the
/// event as attributes, `data` and `request` as maps.
#[derive(Debug, Deserialize)]
struct AttributeEvent {
    id: EventId,
    #[serde(rename = "type")]
    event_type: EventType,
    created_at: Timestamp,
    data: serde_json::Map<String, serde_json::Value>,
    pending_webhooks: u32,
    request: EventRequest,
}

impl From<AttributeEvent> for Event {
    fn from(f: AttributeEvent) -> Event {
        Event {
            id: f.id,
            object: EventTag,
            event_type: f.event_type,
            created_at: f.created_at,
            data: EventData { object: f.data },
            pending_webhooks: f.pending_webhooks,
            request: f.request,
        }
    }
}

/// What a Query takes of each item (`ProjectionExpression`, with [`projection_names`]): the JSON and
/// what fills it, not the keys of the indexes or the TTL; `data` and `request` exist only on items of
/// the older shape. A GetItem takes the whole item: for one item, DynamoDB Local's parsing of the
/// expression costs more than the four attributes it leaves out (`make bench`: GET 1.28× a raw
/// GetItem with it, 1.15–1.17× without).
const PROJECTION: &str = "#id, #type, pending_webhooks, #json, json_pending_at, created_at, #data, #request";

fn projection_names() -> HashMap<String, String> {
    [("#id", "id"), ("#type", "type"), ("#json", "json"), ("#data", "data"), ("#request", "request")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The `ByType` key of the events of type `t` under the Events key `partition`.
pub fn type_partition(partition: &str, t: EventType) -> String {
    format!("{partition}#{t}")
}

/// The `ByFamily` key of the events of family `f` under the Events key `partition`.
pub fn family_partition(partition: &str, f: Family) -> String {
    format!("{partition}#{f}")
}

/// Which partition a query reads: the whole account+mode, one type, or one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    All,
    Type(EventType),
    Family(Family),
}

/// One Query: a source under one Events key (one of the account's shards, [`ShardPlan::partitions`]),
/// an inclusive id range, a direction and a page size.
#[derive(Debug, Clone)]
pub struct RangeQuery {
    pub source: Source,
    pub partition: String,
    pub lo: EventId,
    pub hi: EventId,
    /// Oldest first when true; newest first when false.
    pub ascending: bool,
    pub limit: i32,
}

/// What a query returned, and how many items DynamoDB read for it (its `ScannedCount`).
#[derive(Debug, Default)]
pub struct QueryResult {
    pub events: Vec<EventJson>,
    pub items_read: u32,
}

#[derive(Debug, Clone)]
pub struct EventStore {
    client: Client,
    pub table: String,
    retention_secs: u64,
    /// The accounts' shard plans, cached (60 s unless [`EventStore::with_plan_cache`] says less).
    pub plans: ShardPlans,
}

impl EventStore {
    pub fn new(client: Client, table: impl Into<String>, retention: std::time::Duration) -> Self {
        let table = table.into();
        let plans = ShardPlans::new(client.clone(), &table, crate::store::event_shards::MAX_PLAN_CACHE);
        EventStore { client, table, retention_secs: retention.as_secs(), plans }
    }

    /// The same store, caching plans for `ttl` (the key cache bound: at most 60 s, below
    /// [`crate::store::event_shards::PLAN_NOTICE`]).
    pub fn with_plan_cache(mut self, ttl: std::time::Duration) -> Self {
        self.plans = ShardPlans::new(self.client.clone(), &self.table, ttl);
        self
    }

    /// The plan of `principal` (cached).
    pub async fn plan(&self, principal: &Principal) -> Result<std::sync::Arc<ShardPlan>, StoreError> {
        self.plans.get(principal).await
    }

    /// The key of the event `id`.
    async fn key(&self, principal: &Principal, id: EventId) -> Result<IdKey, StoreError> {
        Ok(IdKey { pk: self.plan(principal).await?.partition(principal, id), id: id.to_string() })
    }

    /// A new event's item, exactly as it is written (the benchmark seeds large accounts with it).
    pub async fn new_item(&self, principal: &Principal, event: &Event) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let partition = self.plan(principal).await?.partition(principal, event.id);
        let expires_at = event.created_at.unix_seconds() + self.retention_secs;
        Ok(serde_dynamo::to_item(EventItem::new(partition, event, expires_at))?)
    }

    /// Writes a new event; never overwrites one with the same id.
    pub async fn put_new(&self, principal: &Principal, event: &Event) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.new_item(principal, event).await?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await?;
        Ok(())
    }

    /// Writes a new event together with `with` (its delivery states) in one transaction; never
    /// overwrites an event. `StoreError::Conflict` when the id exists.
    pub async fn put_new_with(&self, principal: &Principal, event: &Event, with: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        let items = self.put_new_and(principal, event, with).await?;
        if transact_write(&self.client, items).await? { Ok(()) } else { Err(StoreError::Conflict) }
    }

    /// A new event's conditional put (never over an existing id), then `with`: one transaction's items.
    async fn put_new_and(&self, principal: &Principal, event: &Event, with: Vec<TransactWriteItem>) -> Result<Vec<TransactWriteItem>, StoreError> {
        let item = self.new_item(principal, event).await?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).condition_expression("attribute_not_exists(id)").build()?;
        Ok(std::iter::once(TransactWriteItem::builder().put(put).build()).chain(with).collect())
    }

    /// Writes a new event together with `with` (its delivery states and its producer key's claim,
    /// [`crate::store::publish_keys::claim`]) in one transaction. `Ok(None)` when it committed;
    /// when the claim's condition failed, `Ok(Some(item))` with the key item the claim handed back
    /// (`claim` is its index in `with`).
    pub async fn put_new_claimed(&self, principal: &Principal, event: &Event, with: Vec<TransactWriteItem>, claim: usize) -> Result<Option<Item>, StoreError> {
        let items = self.put_new_and(principal, event, with).await?;
        match crate::store::transact_write_returning(&self.client, items).await? {
            Ok(()) => Ok(None),
            Err(mut returned) => match returned.get_mut(claim + 1).and_then(Option::take) {
                Some(item) => Ok(Some(item)),
                // The event's own condition (a new id never exists): not the key.
                None => Err(StoreError::Conflict),
            },
        }
    }

    /// Where the event `id` lives (for [`crate::store::get_many`]).
    pub async fn item_ref(&self, principal: &Principal, id: EventId) -> Result<ItemRef, StoreError> {
        Ok(ItemRef { table: self.table.clone(), key: key_item(&self.key(principal, id).await?) })
    }

    /// An Events-table item (whole, or projected as reads project it) → its event's JSON, with
    /// the current `pending_webhooks`.
    pub fn event_of(mut item: Item) -> Result<EventJson, StoreError> {
        let (Some(AttributeValue::S(json)), Some(AttributeValue::N(at))) = (item.remove("json"), item.get("json_pending_at")) else {
            return Ok(EventJson::from(&Event::from(serde_dynamo::from_item::<_, AttributeEvent>(item)?)));
        };
        let malformed = |what: &str| StoreError::Malformed(format!("event item: {what}"));
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => Ok(s.as_str()),
            _ => Err(malformed(name)),
        };
        let id: EventId = text("id")?.parse().map_err(|_| malformed("id"))?;
        let event_type: EventType = text("type")?.parse().map_err(|_| malformed("type"))?;
        let pending = match item.get("pending_webhooks") {
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| malformed("pending_webhooks"))?,
            _ => return Err(malformed("pending_webhooks")),
        };
        let at = at.parse().map_err(|_| malformed("json_pending_at"))?;
        EventJson::fill(id, event_type, &json, at, pending).ok_or_else(|| malformed("json"))
    }

    pub async fn get(&self, principal: &Principal, id: EventId) -> Result<Option<EventJson>, StoreError> {
        let key = key_item(&self.key(principal, id).await?);
        let out = self.client.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true).send().await?;
        out.item.map(Self::event_of).transpose()
    }

    /// One Query with every condition in the key condition: no Scan, no filter expression.
    pub async fn query(&self, q: &RangeQuery) -> Result<QueryResult, StoreError> {
        let (index, key_attr, key) = match q.source {
            Source::All => (None, "pk", q.partition.clone()),
            Source::Type(t) => (Some("ByType"), "type_pk", type_partition(&q.partition, t)),
            Source::Family(f) => (Some("ByFamily"), "family_pk", family_partition(&q.partition, f)),
        };
        let values = HashMap::from([
            (":k".to_owned(), AttributeValue::S(key)),
            (":lo".to_owned(), AttributeValue::S(q.lo.to_string())),
            (":hi".to_owned(), AttributeValue::S(q.hi.to_string())),
        ]);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression("#k = :k AND #id BETWEEN :lo AND :hi")
            .projection_expression(PROJECTION)
            .set_expression_attribute_names(Some(projection_names()))
            .expression_attribute_names("#k", key_attr)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(q.ascending)
            .limit(q.limit)
            .send()
            .await?;
        let events = out.items.unwrap_or_default().into_iter().map(Self::event_of).collect::<Result<Vec<_>, _>>()?;
        Ok(QueryResult { events, items_read: out.scanned_count.max(0) as u32 })
    }

    /// The one place `pending_webhooks` changes: +1 when a delivery state opens or re-opens, −1
    /// when it settles, always in the same transaction as the state (see `deliveries`). Only while
    /// the event exists: an expired event is not brought back as a bare counter.
    pub async fn pending_change(&self, principal: &Principal, event: EventId, delta: i32) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(&self.key(principal, event).await?)))
            .update_expression("ADD pending_webhooks :d")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_values(":d", AttributeValue::N(delta.to_string()))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}
