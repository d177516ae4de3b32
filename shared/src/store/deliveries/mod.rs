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
//!
//! Here: the types, the store and its keys; `items.rs` the items as stored, `write.rs` the writes
//! (the state machine's), `read.rs` the reads.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::model::ids::{EndpointId, EventId, Principal};
use crate::store::events::EventStore;
use crate::store::{SortKey, key_item};

mod items;
mod read;
mod write;

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

pub use crate::model::delivery::{Attempt, AttemptSummary, DeliveryState, DeliveryStatus, EndpointAttempts, Overdue, Snapshot, StateChange};

/// Changes per transaction in [`DeliveryStore::apply_all`]: at most three items each (the state,
/// the attempt, its event's count), within DynamoDB's 100 items per transaction.
pub const CHANGES_PER_TRANSACTION: usize = 25;

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
}
