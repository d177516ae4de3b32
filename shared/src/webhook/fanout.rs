//! `fanout`: the Events table's stream (INSERT records) → one SQS message per (event, subscribed
//! endpoint), and `pending_webhooks` set to that count. Messages carry ids, not payloads.

use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::ids::{AccountId, EventId, Mode, Principal};
use crate::store::{StoreError, event_from_image};
use crate::webhook::deliveries::DeliveryStore;
use crate::webhook::endpoints::{EndpointId, EndpointStatus, EndpointStore};

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
}

/// What the fan-out needs, built once.
#[derive(Debug, Clone)]
pub struct Fanout {
    pub endpoints: EndpointStore,
    pub deliveries: DeliveryStore,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl Fanout {
    /// Sends one message per (event, endpoint): SendMessageBatch, ten at a time.
    pub async fn enqueue(&self, messages: &[DeliveryMessage]) -> Result<(), FanoutError> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(serde_json::to_string(m).expect("messages serialise"))
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
        }
        Ok(())
    }

    /// Fans one new event out. Re-running it for the same event opens no second state and so
    /// counts nothing twice; the messages it sends again are acknowledged without a second POST
    /// once the first has been delivered.
    pub async fn fan_out(&self, principal: &Principal, event: &Event) -> Result<usize, FanoutError> {
        let endpoints = self.endpoints.list(principal).await?;
        let mut messages = Vec::new();
        // Endpoints get the events made after they were (ids carry their creation time), as Stripe's do.
        for ep in endpoints.iter().filter(|e| {
            e.status == EndpointStatus::Enabled && e.enabled_events.matches(event.event_type) && e.id.created_ms() <= event.id.ulid().timestamp_ms()
        }) {
            self.deliveries.open(principal, event.id, &ep.id).await?;
            messages.push(DeliveryMessage {
                account_id: principal.account.clone(),
                mode: principal.mode,
                event_id: event.id,
                endpoint_id: ep.id.clone(),
            });
        }
        self.enqueue(&messages).await?;
        tracing::info!(event_id = %event.id, event_type = %event.event_type, endpoints = messages.len(), "fanned out");
        Ok(messages.len())
    }

    async fn record(&self, record: &EventRecord) -> Result<(), FanoutError> {
        if record.event_name != "INSERT" {
            return Ok(());
        }
        let (principal, event) = event_from_image(record.change.new_image.clone())?;
        self.fan_out(&principal, &event).await.map(|_| ())
    }

    /// The stream handler. Records are handled in order; the first failure is reported (with its
    /// sequence number) so Lambda retries from there and one bad record never blocks the rest for long.
    pub async fn handle(&self, batch: StreamEvent) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for record in &batch.records {
            if let Err(e) = self.record(record).await {
                tracing::error!(error = %e, sequence_number = ?record.change.sequence_number, "fan-out failed");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                break;
            }
        }
        response
    }
}
