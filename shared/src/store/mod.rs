//! Storage: one file per DynamoDB table, and what they share. Here: [`StoreError`],
//! [`transact_write`] (every multi-item write goes through it), [`get_many`] (one read across
//! tables) and the partition key of an account
//! and mode, `{account}#{mode}` ([`Principal::partition`], [`principal_of_partition`]).
//!
//! - `events`: the Events table, and `pending_webhooks` ([`events::EventStore::pending_change`]).
//! - `event_shards`: which of the Events table's keys an account's events are written under.
//! - `event_list`: the Queries one page of `GET /v1/events` takes.
//! - `deliveries`: delivery states and attempts (the Deliveries table).
//! - `endpoints`: webhook endpoints, and their per-account counter (WebhookEndpoints table).
//! - `idempotency`: `Idempotency-Key` records (WebhookEndpoints table, `idem#` items).
//! - `publish_keys`: producers' `idempotency_key`s (Deliveries table, `…#publish#{key}` items).
//! - `api_keys`: hashed API keys (ApiKeys table).

pub mod api_keys;
pub mod deliveries;
pub mod endpoints;
pub mod event_list;
pub mod event_shards;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod publish_keys;
pub mod rate_windows;

use std::collections::HashMap;
use std::fmt::Debug;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use serde::Serialize;

use crate::model::ids::Principal;

pub use events::{EventStore, RangeQuery, Source};

impl Principal {
    /// `{account}#{mode}`: the partition key of an account and mode, in every table.
    pub fn partition(&self) -> String {
        format!("{}#{}", self.account, self.mode)
    }
}

/// The primary key of an item of the Events or the WebhookEndpoints table: the partition and `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdKey {
    pub pk: String,
    pub id: String,
}

impl IdKey {
    /// The item `id` in the partition of `principal`.
    pub fn of(principal: &Principal, id: impl std::fmt::Display) -> Self {
        IdKey { pk: principal.partition(), id: id.to_string() }
    }
}

/// The primary key of an item of the Deliveries table: `{account}#{mode}#{event}` and `sk`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SortKey {
    pub pk: String,
    pub sk: String,
}

/// The primary key of an item of the ApiKeys table: the key's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashKey {
    pub pk: String,
}

/// A key as the SDK takes it.
pub fn key_item(key: &impl Serialize) -> HashMap<String, AttributeValue> {
    serde_dynamo::to_item(key).expect("keys are structs of strings")
}

/// An item as the SDK holds it.
pub type Item = HashMap<String, AttributeValue>;

/// Where one item lives: its table and its primary key.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRef {
    pub table: String,
    pub key: Item,
}

/// Rounds of BatchGetItem for keys DynamoDB left unprocessed (throttling), with backoff.
const BATCH_GET_ROUNDS: u32 = 6;
/// Keys per BatchGetItem (DynamoDB's limit).
const BATCH_GET_KEYS: usize = 100;

/// Reads items of any tables, strongly consistent, with one BatchGetItem per 100 distinct keys
/// (again, with backoff, for keys DynamoDB leaves unprocessed). The answers come in the order
/// asked; `None` for an item that does not exist.
pub async fn get_many(client: &Client, refs: &[ItemRef]) -> Result<Vec<Option<Item>>, StoreError> {
    let mut distinct: Vec<&ItemRef> = Vec::new();
    for r in refs {
        if !distinct.contains(&r) {
            distinct.push(r);
        }
    }
    let mut found: Vec<(String, Item)> = Vec::new();
    for chunk in distinct.chunks(BATCH_GET_KEYS) {
        let mut keys: HashMap<String, Vec<Item>> = HashMap::new();
        for r in chunk {
            keys.entry(r.table.clone()).or_default().push(r.key.clone());
        }
        let mut pending = keys
            .into_iter()
            .map(|(table, keys)| Ok((table, KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build()?)))
            .collect::<Result<HashMap<_, _>, StoreError>>()?;
        let mut round = 0;
        while !pending.is_empty() {
            if round == BATCH_GET_ROUNDS {
                return Err(StoreError::Throttled(format!("BatchGetItem left keys unprocessed {BATCH_GET_ROUNDS} times").into()));
            }
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(25 << round)).await;
            }
            round += 1;
            let out = client.batch_get_item().set_request_items(Some(pending)).send().await?;
            found.extend(out.responses.unwrap_or_default().into_iter().flat_map(|(table, items)| items.into_iter().map(move |i| (table.clone(), i))));
            pending = out.unprocessed_keys.unwrap_or_default();
            pending.retain(|_, k| !k.keys.is_empty());
        }
    }
    Ok(refs
        .iter()
        .map(|r| found.iter().find(|(table, item)| *table == r.table && r.key.iter().all(|(k, v)| item.get(k) == Some(v))).map(|(_, i)| i.clone()))
        .collect())
}

/// `{account}#{mode}` → the principal.
pub fn principal_of_partition(pk: &str) -> Option<Principal> {
    let (account, mode) = pk.split_once('#')?;
    Some(Principal { account: account.parse().ok()?, mode: mode.parse().ok()? })
}

/// A failure talking to DynamoDB or reading what it holds. The SDK's error is kept as the source,
/// and its message and causes are shown on one line (`aws::error_chain`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB throttled the request: {}", crate::aws::error_chain(.0.as_ref()))]
    Throttled(#[source] BoxError),
    #[error("the item exists already")]
    Conflict,
    #[error("DynamoDB kept cancelling the transaction for contention (TransactionConflict)")]
    Contention,
    #[error("DynamoDB: {}", crate::aws::error_chain(.0.as_ref()))]
    Dynamo(#[source] BoxError),
    #[error("malformed item: {0}")]
    Item(#[from] serde_dynamo::Error),
    #[error("malformed item: {0}")]
    Malformed(String),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<E, R> From<SdkError<E, R>> for StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    fn from(err: SdkError<E, R>) -> Self {
        match err.code() {
            Some("ConditionalCheckFailedException") => StoreError::Conflict,
            Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded") => StoreError::Throttled(Box::new(err)),
            _ => StoreError::Dynamo(Box::new(err)),
        }
    }
}

/// A request builder missing a required field: a bug of ours, reported like a DynamoDB failure.
impl From<aws_sdk_dynamodb::error::BuildError> for StoreError {
    fn from(err: aws_sdk_dynamodb::error::BuildError) -> Self {
        StoreError::Dynamo(Box::new(err))
    }
}

/// How often a transaction cancelled by contention (`TransactionConflict`) is tried again.
const CONFLICT_TRIES: u32 = 8;

/// A conditional write's outcome: `false` when its condition failed ([`StoreError::Conflict`]).
pub(crate) fn conditional<T, E, R>(out: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    StoreError: From<SdkError<E, R>>,
{
    match out.map_err(StoreError::from) {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One TransactWriteItems call. `Ok(true)` when it committed, `Ok(false)` when a condition did not
/// hold (`ConditionalCheckFailed`). Contention is not failure: a cancellation for
/// `TransactionConflict` (another transaction on the same item, as when several endpoints settle
/// one event at once) is tried again with jittered backoff, and only after [`CONFLICT_TRIES`] is it
/// an error ([`StoreError::Contention`]), which callers retry like any other failure.
pub(crate) async fn transact_write(client: &Client, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
    Ok(transact_write_returning(client, items).await?.is_ok())
}

/// [`transact_write`], and when a condition did not hold, what each item's cancellation handed
/// back (the old item, for a write that asked for it with `ReturnValuesOnConditionCheckFailure`).
pub(crate) async fn transact_write_returning(client: &Client, items: Vec<TransactWriteItem>) -> Result<Result<(), Vec<Option<Item>>>, StoreError> {
    for attempt in 1..=CONFLICT_TRIES {
        let err = match client.transact_write_items().set_transact_items(Some(items.clone())).send().await {
            Ok(_) => return Ok(Ok(())),
            Err(e) => e,
        };
        let Some(cancelled) = err.as_service_error().and_then(|s| match s {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
            _ => None,
        }) else {
            return Err(err.into());
        };
        let codes: Vec<&str> = cancelled.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
        match cancellation(&codes) {
            Cancellation::ConditionFailed => return Ok(Err(cancelled.cancellation_reasons().iter().map(|r| r.item().cloned()).collect())),
            Cancellation::Conflict if attempt < CONFLICT_TRIES => {
                let backoff = 20u64 << attempt.min(6); // 40 ms … 1.3 s
                let jittered = rand::Rng::random_range(&mut rand::rng(), backoff / 2..=backoff);
                tracing::debug!(attempt, "transaction conflict; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(jittered)).await;
            }
            Cancellation::Conflict => return Err(StoreError::Contention),
            Cancellation::Other => return Err(err.into()),
        }
    }
    Err(StoreError::Contention)
}

/// Why DynamoDB cancelled a transaction, from its cancellation reason codes.
#[derive(Debug, PartialEq, Eq)]
enum Cancellation {
    ConditionFailed,
    Conflict,
    Other,
}

fn cancellation(codes: &[&str]) -> Cancellation {
    if codes.contains(&"ConditionalCheckFailed") {
        Cancellation::ConditionFailed
    } else if codes.contains(&"TransactionConflict") {
        Cancellation::Conflict
    } else {
        Cancellation::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{AccountId, Mode};

    #[test]
    fn a_conflict_is_not_a_failed_condition() {
        assert_eq!(cancellation(&["None", "ConditionalCheckFailed"]), Cancellation::ConditionFailed);
        assert_eq!(cancellation(&["TransactionConflict", "None"]), Cancellation::Conflict);
        assert_eq!(cancellation(&["ThrottlingError"]), Cancellation::Other);
        assert_eq!(cancellation(&[]), Cancellation::Other);
    }

    #[test]
    fn keys_serialise_as_their_attributes() {
        let p = Principal { account: "acct_x1".parse().unwrap(), mode: Mode::Test };
        let k = key_item(&IdKey::of(&p, "we_1"));
        assert_eq!(k["pk"], AttributeValue::S("acct_x1#test".into()));
        assert_eq!(k["id"], AttributeValue::S("we_1".into()));
        assert_eq!(key_item(&SortKey { pk: "a".into(), sk: "b".into() }).len(), 2);
    }

    #[test]
    fn partitions_round_trip() {
        let p = Principal { account: AccountId::generate(), mode: Mode::Live };
        assert_eq!(principal_of_partition(&p.partition()), Some(p));
        assert_eq!(principal_of_partition("nothing"), None);
    }
}
