//! Producer keys (`idempotency_key` on the ingest input): one item per key in the Deliveries table,
//! pk `{account}#{mode}#publish#{key}`, sk `publish`, its own partition (never hot), in no index,
//! gone by TTL after 24 hours. It is written in the publish's own transaction with a condition, so
//! of any number of concurrent publishes with one key exactly one writes an event; the others find
//! the item (DynamoDB returns it with the failed condition, no read needed) and answer its event.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use serde::{Deserialize, Serialize};

use crate::model::ids::{EventId, Principal};
use crate::store::{SortKey, StoreError};

/// How long a key names its event: a second publish with it within this time returns that event.
pub const WINDOW_SECS: u64 = 24 * 3600;
const SK: &str = "publish";

/// A key item: the event it published (its `created_at` is its id's time) and the fingerprint of
/// what was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub event_id: EventId,
    /// The event's `pending_webhooks` when it was published.
    pub pending_webhooks: u32,
    /// SHA-256 (hex) of the publish's type, object and request, in a canonical form.
    pub fingerprint: String,
    pub expires_at: u64,
}

#[derive(Serialize)]
struct KeyItem<'a> {
    #[serde(flatten)]
    key: SortKey,
    #[serde(flatten)]
    record: &'a KeyRecord,
}

fn key(principal: &Principal, publish_key: &str) -> SortKey {
    SortKey { pk: format!("{}#publish#{publish_key}", principal.partition()), sk: SK.to_owned() }
}

/// The conditional put of a key item, for the publish's transaction: it fails when the key names
/// an event already (and has not expired), and then hands back the item.
pub fn claim(table: &str, principal: &Principal, publish_key: &str, record: &KeyRecord, now: u64) -> Result<TransactWriteItem, StoreError> {
    let item = serde_dynamo::to_item(KeyItem { key: key(principal, publish_key), record })?;
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
        .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The key item a failed claim handed back.
pub fn record_of(item: HashMap<String, AttributeValue>) -> Result<KeyRecord, StoreError> {
    Ok(serde_dynamo::from_item(item)?)
}
