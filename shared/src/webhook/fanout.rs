//! `fanout`: the Events table's stream (INSERT records) → one SQS message per pending (event,
//! endpoint) delivery. The states themselves were opened with the event (see `ingest`), so this is
//! only the fast path that schedules them: re-running it sends messages again (acknowledged without
//! a second POST once delivered), and a record it never sees is scheduled by the sweeper instead.
//! Messages carry ids, not payloads.

use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::model::delivery::DeliveryStatus;
use crate::model::ids::EndpointId;
use crate::model::ids::{AccountId, EventId, Mode, Principal};
use crate::store::StoreError;
use crate::store::deliveries::DeliveryStore;
use crate::store::event_shards::{PLAN_ID, principal_of_events_key};

/// Stream records whose delivery states are read at once.
const READS_AT_ONCE: usize = 16;
/// SendMessageBatch requests in flight at once.
const SENDS_AT_ONCE: usize = 8;

/// The body of a delivery message: which event goes to which endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryMessage {
    pub account_id: AccountId,
    pub mode: Mode,
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
}

impl DeliveryMessage {
    pub fn new(principal: &Principal, event_id: EventId, endpoint_id: EndpointId) -> Self {
        DeliveryMessage { account_id: principal.account.clone(), mode: principal.mode, event_id, endpoint_id }
    }

    pub fn principal(&self) -> Principal {
        Principal { account: self.account_id.clone(), mode: self.mode }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("SQS: {0}")]
    Sqs(String),
    #[error("malformed stream record: {0}")]
    Record(String),
}

/// What the fan-out needs, built once.
#[derive(Debug, Clone)]
pub struct Fanout {
    pub deliveries: DeliveryStore,
    pub sqs: crate::aws::Sqs,
    pub queue_url: String,
}

/// The keys of an Events-table stream record.
#[derive(Debug, Deserialize)]
struct EventKeys {
    pk: String,
    /// An event id, or [`PLAN_ID`]: the account's shard plan, which has no deliveries.
    id: String,
}

/// The one attribute of the new image the fan-out looks at.
#[derive(Debug, Deserialize)]
struct PendingCount {
    #[serde(default)]
    pending_webhooks: Option<u32>,
}

impl Fanout {
    /// Sends one message per (event, endpoint): SendMessageBatch, ten at a time, [`SENDS_AT_ONCE`]
    /// batches at once. Each carries its tenant, `{account}#{mode}`, as `MessageGroupId`: on a
    /// standard queue that makes it an SQS fair queue, which serves a quiet tenant's messages first
    /// when another holds many in flight.
    pub async fn enqueue(&self, messages: &[DeliveryMessage]) -> Result<(), FanoutError> {
        self.send_chunks(messages).await.into_iter().collect()
    }

    /// Each chunk of ten's outcome, in order.
    async fn send_chunks(&self, messages: &[DeliveryMessage]) -> Vec<Result<(), FanoutError>> {
        // The futures built first: a `map` closure over borrowed chunks trips the compiler's
        // higher-ranked lifetime check for the `Send` futures axum needs.
        let sends: Vec<_> = messages.chunks(10).map(|chunk| self.send_chunk(chunk)).collect();
        stream::iter(sends).buffered(SENDS_AT_ONCE).collect().await
    }

    async fn send_chunk(&self, chunk: &[DeliveryMessage]) -> Result<(), FanoutError> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(serde_json::to_string(m).expect("messages serialise"))
                    .message_group_id(m.principal().partition())
                    .build()
                    .map_err(|e| FanoutError::Sqs(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| FanoutError::Sqs(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        if !out.failed.is_empty() {
            return Err(FanoutError::Sqs(format!("{} of {} messages not sent", out.failed.len(), chunk.len())));
        }
        Ok(())
    }

    /// Enqueues every still-pending delivery of one event: one Query, then the messages. Safe to
    /// run any number of times. Returns how many it sent.
    pub async fn fan_out(&self, principal: &Principal, event: EventId) -> Result<usize, FanoutError> {
        let messages = self.pending(principal, event).await?;
        self.enqueue(&messages).await?;
        Ok(messages.len())
    }

    /// The messages of one event's still-pending deliveries: one Query.
    async fn pending(&self, principal: &Principal, event: EventId) -> Result<Vec<DeliveryMessage>, FanoutError> {
        Ok(self
            .deliveries
            .states(principal, event)
            .await?
            .into_iter()
            .filter(|s| s.status == DeliveryStatus::Pending)
            .map(|s| DeliveryMessage::new(principal, event, s.endpoint_id))
            .collect())
    }

    /// The messages of one stream record: its keys say which event; an image that counts no pending
    /// webhook needs no read at all.
    async fn record(&self, record: &EventRecord) -> Result<Vec<DeliveryMessage>, FanoutError> {
        if record.event_name != "INSERT" {
            return Ok(Vec::new());
        }
        let keys: EventKeys = serde_dynamo::from_item(record.change.keys.clone()).map_err(|e| FanoutError::Record(e.to_string()))?;
        if keys.id == PLAN_ID {
            return Ok(Vec::new());
        }
        let id: EventId = keys.id.parse().map_err(|_| FanoutError::Record(format!("id {:?}", keys.id)))?;
        let principal = principal_of_events_key(&keys.pk).ok_or_else(|| FanoutError::Record(format!("partition key {:?}", keys.pk)))?;
        let pending = serde_dynamo::from_item::<_, PendingCount>(record.change.new_image.clone()).ok().and_then(|p| p.pending_webhooks);
        if pending == Some(0) {
            return Ok(Vec::new());
        }
        self.pending(&principal, id).await
    }

    /// The stream handler. The records' states are read [`READS_AT_ONCE`] at a time, and their
    /// messages sent together, ten to a SendMessageBatch whatever record they come from: one
    /// merchant's burst in the stream passes in a few round trips, not two per event, so the
    /// records behind it (other merchants') are not held up. On a failure, the first record not
    /// wholly sent is reported (with its sequence number), so Lambda retries from there; the
    /// records after it may be sent again, which fan-out allows. Whatever the stream loses, the
    /// sweeper finds.
    pub async fn handle(&self, batch: StreamEvent) -> DynamoDbEventResponse {
        let records = &batch.records;
        let read: Vec<Result<Vec<DeliveryMessage>, FanoutError>> =
            stream::iter(records.iter().map(|r| self.record(r)).collect::<Vec<_>>()).buffered(READS_AT_ONCE).collect().await;
        // Every record's messages up to the first that could not be read, each message with its record.
        let mut failed_at = None;
        let mut messages = Vec::new();
        let mut owner = Vec::new();
        for (i, (record, r)) in records.iter().zip(read).enumerate() {
            match r {
                Ok(m) => {
                    if !m.is_empty() {
                        tracing::info!(event_id = %m[0].event_id, endpoints = m.len(), "fanned out");
                    }
                    owner.extend(std::iter::repeat_n(i, m.len()));
                    messages.extend(m);
                }
                // A record we cannot read never gets readable: skip it (the states it would have
                // scheduled are the sweeper's), so it cannot hold up the shard.
                Err(e @ FanoutError::Record(_)) => {
                    tracing::error!(error = %e, sequence_number = record.change.sequence_number.as_deref(), "stream record skipped; the sweeper schedules its deliveries");
                }
                Err(e) => {
                    tracing::error!(error = %e, sequence_number = record.change.sequence_number.as_deref(), "fan-out failed");
                    failed_at = Some(i);
                    break;
                }
            }
        }
        for (chunk, sent) in self.send_chunks(&messages).await.into_iter().enumerate() {
            if let Err(e) = sent {
                let first = owner[chunk * 10];
                tracing::error!(error = %e, sequence_number = records[first].change.sequence_number.as_deref(), "fan-out failed");
                failed_at = Some(failed_at.map_or(first, |f: usize| f.min(first)));
                break;
            }
        }
        let mut response = DynamoDbEventResponse::default();
        if let Some(i) = failed_at {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = records[i].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        response
    }
}
