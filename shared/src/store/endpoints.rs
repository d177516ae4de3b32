//! Webhook endpoints in the WebhookEndpoints table (pk `{account}#{mode}`, sort key `id`). At most
//! [`MAX_ENDPOINTS`] per account and mode, enforced by a counter item in the same transaction as the
//! put, so concurrent creates cannot exceed it.
//!
//! **The delivery copy.** Each endpoint is also written under a key of its own,
//! `{account}#{mode}#{we_…}` (same `id`), in the same transaction as every write of it: that copy
//! is what the delivery function reads, so its reads land on the endpoint's key, not on the
//! merchant's, which every publish already reads once (`make capacity`: at 2,000 events/s the
//! merchant's key would otherwise pass 3,000 read units a second). An endpoint written before copies
//! existed has none until its next write; the delivery function then reads the original and writes
//! the copy ([`EndpointStore::copy_from`]). A copy only moves forward in `version`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use crate::model::endpoint::{EnabledEvents, Endpoint, EndpointStatus, MAX_ENDPOINTS};
use crate::model::ids::EndpointId;
use crate::model::ids::{Mode, Principal, Timestamp};
use crate::model::webhook_secret::WebhookSecret;
use crate::model::webhook_url::WebhookUrl;
use crate::store::{IdKey, Item, ItemRef, StoreError, key_item, transact_write};

/// The counter item's sort key.
const COUNTER_ID: &str = "meta#endpoint_count";

/// What [`EndpointStore::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// Nothing: the account and mode have this many endpoints already (or, for a fixed id such as
    /// the samples', an endpoint with this id exists).
    LimitReached(u32),
}

/// What [`EndpointStore::replace`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    Replaced,
    /// Nothing: there is no such endpoint (any more).
    Missing,
    /// Nothing: it was written since it was read; read it again.
    Changed,
}

/// The WebhookEndpoints table's endpoint item (`id` = `we_…`). The table holds two other item
/// kinds in the same partition: the endpoint counter (`id` = `meta#endpoint_count`, attribute `n`)
/// and idempotency records (`id` = `idem#{key}`, see `store::idempotency`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EndpointItem {
    pk: String,
    id: EndpointId,
    url: WebhookUrl,
    enabled_events: Vec<String>,
    description: Option<String>,
    status: EndpointStatus,
    created_at: Timestamp,
    secret: WebhookSecret,
    previous_secret: Option<WebhookSecret>,
    previous_secret_expires_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<u32>,
    /// Absent (0) on items written before writes were versioned.
    #[serde(default)]
    version: u64,
}

impl EndpointItem {
    fn into_endpoint(self, mode: Mode) -> Result<Endpoint, StoreError> {
        let item = self;
        // Stored values were parsed when they came in; parsing them again keeps them typed.
        let enabled_events = EnabledEvents::parse(&item.enabled_events).map_err(|e| StoreError::Malformed(format!("stored enabled_events: {e}")))?;
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
            rate_limit: item.rate_limit,
            version: item.version,
        })
    }

    fn of(this: &Endpoint, principal: &Principal) -> EndpointItem {
        EndpointItem {
            pk: principal.partition(),
            id: this.id,
            url: this.url.clone(),
            enabled_events: this.enabled_events.to_strings(),
            description: this.description.clone(),
            status: this.status,
            created_at: this.created_at,
            secret: this.secret.clone(),
            previous_secret: this.previous_secret.as_ref().map(|(s, _)| s.clone()),
            previous_secret_expires_at: this.previous_secret.as_ref().map(|(_, t)| *t),
            rate_limit: this.rate_limit,
            version: this.version,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EndpointStore {
    client: Client,
    table: String,
}

fn key(principal: &Principal, id: impl std::fmt::Display) -> HashMap<String, AttributeValue> {
    key_item(&IdKey::of(principal, id))
}

/// `{account}#{mode}#{we_…}`: the partition of the endpoint's delivery copy.
fn copy_partition(principal: &Principal, id: &EndpointId) -> String {
    format!("{}#{id}", principal.partition())
}

/// The key of the endpoint's delivery copy.
fn copy_key(principal: &Principal, id: &EndpointId) -> HashMap<String, AttributeValue> {
    key_item(&IdKey { pk: copy_partition(principal, id), id: id.to_string() })
}

impl EndpointStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        EndpointStore { client, table: table.into() }
    }

    /// Creates an endpoint, unless the account+mode has [`MAX_ENDPOINTS`] already.
    pub async fn create(&self, principal: &Principal, endpoint: &Endpoint) -> Result<Created, StoreError> {
        let item = serde_dynamo::to_item(EndpointItem::of(endpoint, principal))?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).condition_expression("attribute_not_exists(id)").build()?;
        let copy = self.copy_put(principal, endpoint)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(principal, COUNTER_ID)))
            .update_expression("SET n = if_not_exists(n, :zero) + :one")
            .condition_expression("attribute_not_exists(n) OR n < :max")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":max", AttributeValue::N(MAX_ENDPOINTS.to_string()))
            .build()?;
        let items = vec![TransactWriteItem::builder().update(count).build(), TransactWriteItem::builder().put(put).build(), copy];
        Ok(if transact_write(&self.client, items).await? { Created::Created } else { Created::LimitReached(MAX_ENDPOINTS) })
    }

    /// The put of `endpoint`'s delivery copy, for the transaction that writes the endpoint.
    fn copy_put(&self, principal: &Principal, endpoint: &Endpoint) -> Result<TransactWriteItem, StoreError> {
        let item = EndpointItem { pk: copy_partition(principal, &endpoint.id), ..EndpointItem::of(endpoint, principal) };
        let put = Put::builder().table_name(&self.table).set_item(Some(serde_dynamo::to_item(item)?)).build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Where the endpoint `id` lives (for [`crate::store::get_many`]).
    pub fn item_ref(&self, principal: &Principal, id: &EndpointId) -> ItemRef {
        ItemRef { table: self.table.clone(), key: key(principal, id) }
    }

    /// Where the endpoint's delivery copy lives: what the delivery function reads.
    pub fn copy_ref(&self, principal: &Principal, id: &EndpointId) -> ItemRef {
        ItemRef { table: self.table.clone(), key: copy_key(principal, id) }
    }

    /// Writes the delivery copy of an endpoint from its item `original` (as read), unless the copy
    /// holds that version or a later one already: for an endpoint written before copies existed.
    /// Only UpdateItem (what the delivery function may do to endpoints).
    pub async fn copy_from(&self, principal: &Principal, id: &EndpointId, original: &Item) -> Result<(), StoreError> {
        let mut update = self.client.update_item().table_name(&self.table).set_key(Some(copy_key(principal, id)));
        let mut sets = Vec::new();
        for (i, (name, value)) in original.iter().filter(|(k, _)| !matches!(k.as_str(), "pk" | "id")).enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            update = update.expression_attribute_names(format!("#a{i}"), name).expression_attribute_values(format!(":v{i}"), value.clone());
        }
        let version = original.get("version").cloned().unwrap_or(AttributeValue::N("0".into()));
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("attribute_not_exists(id) OR attribute_not_exists(version) OR version < :seen")
            .expression_attribute_values(":seen", version)
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A WebhookEndpoints-table endpoint item → its endpoint.
    pub fn endpoint_of(item: Item, mode: Mode) -> Result<Endpoint, StoreError> {
        serde_dynamo::from_item::<_, EndpointItem>(item)?.into_endpoint(mode)
    }

    pub async fn get(&self, principal: &Principal, id: &EndpointId) -> Result<Option<Endpoint>, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(key(principal, id))).consistent_read(true).send().await?;
        out.item.map(|i| Self::endpoint_of(i, principal.mode)).transpose()
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
        out.items.unwrap_or_default().into_iter().map(|i| serde_dynamo::from_item::<_, EndpointItem>(i)?.into_endpoint(principal.mode)).collect()
    }

    /// Writes an endpoint back (after an update or a rotation) as its version `endpoint.version + 1`,
    /// only if it is still the version that was read: a concurrent write (a rotation, a 410 that
    /// disabled it, another update) is never undone by a write based on what it replaced.
    pub async fn replace(&self, principal: &Principal, endpoint: &Endpoint) -> Result<Replaced, StoreError> {
        let next = Endpoint { version: endpoint.version + 1, ..endpoint.clone() };
        let seen = if endpoint.version == 0 { "(attribute_not_exists(version) OR version = :seen)" } else { "version = :seen" };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(EndpointItem::of(&next, principal))?))
            .condition_expression(format!("attribute_exists(id) AND {seen}"))
            .expression_attribute_values(":seen", AttributeValue::N(endpoint.version.to_string()))
            .return_values_on_condition_check_failure(aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?;
        let items = vec![TransactWriteItem::builder().put(put).build(), self.copy_put(principal, &next)?];
        Ok(match crate::store::transact_write_returning(&self.client, items).await? {
            Ok(()) => Replaced::Replaced,
            // The old item handed back: it was written since; nothing: it is gone.
            Err(returned) => {
                if returned.first().is_some_and(Option::is_some) {
                    Replaced::Changed
                } else {
                    Replaced::Missing
                }
            }
        })
    }

    /// Sets the status only (410 Gone disables an endpoint).
    /// With the endpoint's copy in the same transaction; an endpoint without a copy yet gets one
    /// from what the update wrote.
    pub async fn set_status(&self, principal: &Principal, id: &EndpointId, status: EndpointStatus) -> Result<(), StoreError> {
        // A new version: an update that read the endpoint before cannot write the old status back.
        let update = |key| {
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("SET #s = :s ADD version :one")
                .condition_expression("attribute_exists(id)")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":s", AttributeValue::S(format!("{status:?}").to_lowercase()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .build()
        };
        let both = vec![
            TransactWriteItem::builder().update(update(key(principal, id))?).build(),
            TransactWriteItem::builder().update(update(copy_key(principal, id))?).build(),
        ];
        if transact_write(&self.client, both).await? {
            return Ok(());
        }
        // No such endpoint (nothing to do), or no copy of it yet: the endpoint alone, then its copy
        // from what was written (BatchGetItem: what the delivery function may read).
        if !transact_write(&self.client, vec![TransactWriteItem::builder().update(update(key(principal, id))?).build()]).await? {
            return Ok(());
        }
        match crate::store::get_many(&self.client, &[self.item_ref(principal, id)]).await?.pop().flatten() {
            Some(written) => self.copy_from(principal, id, &written).await,
            None => Ok(()),
        }
    }

    /// Deletes an endpoint and releases its place under the limit. False when there was none.
    pub async fn delete(&self, principal: &Principal, id: &EndpointId) -> Result<bool, StoreError> {
        let delete = Delete::builder().table_name(&self.table).set_key(Some(key(principal, id))).condition_expression("attribute_exists(id)").build()?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(principal, COUNTER_ID)))
            .update_expression("SET n = n - :one")
            .condition_expression("n > :zero")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()?;
        let copy = Delete::builder().table_name(&self.table).set_key(Some(copy_key(principal, id))).build()?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
            TransactWriteItem::builder().delete(copy).build(),
        ];
        transact_write(&self.client, items).await
    }
}
