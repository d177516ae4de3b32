//! `deliver-webhooks`: SQS batches of (event, endpoint) messages → signed POSTs, all messages of a
//! batch concurrently over one HTTP client. A batch costs DynamoDB one read (every state, event and
//! endpoint: BatchGetItem) and one write (every state change and attempt: one transaction). Success acknowledges; failure records the attempt, sets
//! the message's visibility to the next backoff and reports a batch item failure; an exhausted
//! schedule records the final failure and copies the message to the DLQ. Attempts are counted in
//! the delivery state, not by SQS, so a message the sweeper sends again continues the schedule.

use std::collections::HashSet;
use std::time::Instant;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use rand::Rng;
use tracing::Instrument;

use crate::ids::{Mode, unix_now};
use crate::store::{EventStore, StoreError};
use crate::store::deliveries::{Attempt, DeliveryStatus, DeliveryStore, Snapshot, StateChange};
use crate::store::endpoints::EndpointStore;
use crate::webhook::endpoints::EndpointStatus;
use crate::webhook::fanout::DeliveryMessage;
use crate::webhook::signature::sign;
use crate::webhook::ssrf::WebhookClient;

/// SQS's longest visibility timeout.
const MAX_DELAY_SECS: u64 = 12 * 3600;
/// A message may come back this much before its state's next attempt and still be that attempt.
const SCHEDULE_SLACK_SECS: u64 = 2;
/// The message attribute the deliverer sets on what it copies to the dead-letter queue; a message
/// carrying it that comes back (a DLQ redrive) re-opens its finally failed delivery.
pub const DLQ_REASON: &str = "reason";

/// Seconds to wait before each retry: entry `n` follows attempt `n + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    pub live: Vec<u64>,
    pub test: Vec<u64>,
}

impl Default for RetrySchedule {
    /// Live: about three days (1 m, 5 m, 30 m, 2 h, 5 h, 10 h, then 12 h). Test: 3 retries in about an hour.
    fn default() -> Self {
        let h = 3600;
        RetrySchedule {
            live: vec![60, 300, 1800, 2 * h, 5 * h, 10 * h, 12 * h, 12 * h, 12 * h, 12 * h, 12 * h],
            test: vec![300, 900, 2400],
        }
    }
}

impl RetrySchedule {
    /// `PAYGATE_RETRY_SCHEDULE=1,2,4` (seconds) sets both schedules, so tests finish in seconds.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("PAYGATE_RETRY_SCHEDULE") {
            Ok(v) if !v.trim().is_empty() => {
                let s = v
                    .split(',')
                    .map(|x| x.trim().parse::<u64>().map_err(|_| format!("PAYGATE_RETRY_SCHEDULE: {x:?} is not a number of seconds")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RetrySchedule { live: s.clone(), test: s })
            }
            _ => Ok(RetrySchedule::default()),
        }
    }

    pub fn for_mode(&self, mode: Mode) -> &[u64] {
        match mode {
            Mode::Live => &self.live,
            Mode::Test => &self.test,
        }
    }
}

/// The wait after failed attempt `attempt` (1-based): ±20 % jitter around the schedule, or the
/// receiver's `Retry-After` within [1 s, 12 h]. `None` when the schedule is exhausted.
pub fn next_delay(schedule: &[u64], attempt: u32, retry_after: Option<u64>) -> Option<u64> {
    let base = *schedule.get(attempt.saturating_sub(1) as usize)?;
    if let Some(ra) = retry_after {
        return Some(ra.clamp(1, MAX_DELAY_SECS));
    }
    let jitter = rand::rng().random_range(0.8..=1.2);
    Some(((base as f64 * jitter).round() as u64).min(MAX_DELAY_SECS))
}

/// What the delivery function needs, built once.
#[derive(Debug, Clone)]
pub struct Deliverer {
    pub events: EventStore,
    pub endpoints: EndpointStore,
    pub deliveries: DeliveryStore,
    pub sqs: crate::aws::Sqs,
    pub queue_url: String,
    pub dlq_url: String,
    /// Sends the POSTs, to public addresses only (unless the policy allows private ones).
    pub client: WebhookClient,
    pub schedule: RetrySchedule,
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledge (delete) the message.
    Done,
    /// Leave it; it comes back after its new visibility timeout.
    Retry,
}

/// What follows a message's state change once it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Done,
    /// Leave the message, and make it come back after this many seconds.
    RetryIn(u64),
    /// Acknowledge it, and copy it to the dead-letter queue for this reason.
    DeadLetter(&'static str),
}

/// One message's decision: the state change to write (if any), then what follows.
#[derive(Debug)]
struct Plan {
    change: Option<StateChange>,
    then: Then,
}

impl Plan {
    fn done(change: Option<StateChange>) -> Plan {
        Plan { change, then: Then::Done }
    }
}

impl Deliverer {
    /// The SQS handler. Every message of the batch at once: one read of every state, event and
    /// endpoint, the POSTs concurrently, then one write of every state change.
    pub async fn handle(&self, batch: SqsEvent) -> SqsBatchResponse {
        let outcomes = self.deliver_all(&batch.records).await;
        let mut response = SqsBatchResponse::default();
        for (m, outcome) in batch.records.iter().zip(outcomes) {
            if outcome == Outcome::Retry {
                let mut f = BatchItemFailure::default();
                f.item_identifier = m.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(f);
            }
        }
        response
    }

    async fn deliver_all(&self, messages: &[SqsMessage]) -> Vec<Outcome> {
        // Each message's delivery. A malformed message goes to the dead-letter queue; a second
        // message for a delivery already in the batch is acknowledged (the first one covers it).
        let mut deliveries: Vec<Option<DeliveryMessage>> = Vec::with_capacity(messages.len());
        let mut seen = HashSet::new();
        for m in messages {
            match m.body.as_deref().and_then(|b| serde_json::from_str::<DeliveryMessage>(b).ok()) {
                None => {
                    tracing::error!(message_id = ?m.message_id, "malformed delivery message; moved to the DLQ");
                    self.to_dlq(m, "malformed message").await;
                    deliveries.push(None);
                }
                Some(d) if !seen.insert((d.principal(), d.event_id, d.endpoint_id)) => {
                    tracing::info!(message_id = ?m.message_id, event_id = %d.event_id, endpoint_id = %d.endpoint_id, "second message for one delivery in the batch; acknowledged");
                    deliveries.push(None);
                }
                Some(d) => deliveries.push(Some(d)),
            }
        }
        let wanted: Vec<_> = deliveries.iter().flatten().map(|d| (d.principal(), d.event_id, d.endpoint_id)).collect();
        let snapshots = match self.deliveries.snapshots(&self.events, &self.endpoints, &wanted).await {
            Ok(s) => s,
            Err(e) => {
                // Our own failure: every message is retried as it is.
                tracing::error!(error = %e, "could not read the batch's deliveries; every message retried");
                return deliveries.iter().map(|d| if d.is_some() { Outcome::Retry } else { Outcome::Done }).collect();
            }
        };
        let mut snapshots = snapshots.into_iter();
        let work: Vec<_> = deliveries.into_iter().map(|d| d.map(|d| (d, snapshots.next().expect("one snapshot per delivery")))).collect();

        let plans = join_all(messages.iter().zip(work).map(|(m, work)| async move {
            let Some((d, snapshot)) = work else { return Ok(Plan::done(None)) };
            let span = tracing::info_span!("deliver", event_id = %d.event_id, endpoint_id = %d.endpoint_id);
            self.attempt(m, d, snapshot).instrument(span).await
        }))
        .await;

        let changes: Vec<StateChange> = plans.iter().filter_map(|p| p.as_ref().ok()?.change.clone()).collect();
        let mut written = self.deliveries.apply_all(&changes).await.into_iter();
        join_all(messages.iter().zip(plans).map(|(m, plan)| {
            let write = match &plan {
                Ok(Plan { change: Some(_), .. }) => written.next().expect("one result per change").map(|_| ()),
                _ => Ok(()),
            };
            async move {
                match (plan, write) {
                    (Ok(plan), Ok(())) => self.then(m, plan.then).await,
                    (Err(e), _) | (_, Err(e)) => {
                        // Our own failure (DynamoDB): retry the message as it is.
                        tracing::error!(error = %e, message_id = ?m.message_id, "delivery failed on our side");
                        Outcome::Retry
                    }
                }
            }
        }))
        .await
    }

    /// What follows a written state change.
    async fn then(&self, m: &SqsMessage, then: Then) -> Outcome {
        match then {
            Then::Done => Outcome::Done,
            Then::DeadLetter(reason) => {
                self.to_dlq(m, reason).await;
                Outcome::Done
            }
            Then::RetryIn(delay) => {
                // The message itself comes back after the delay; should that fail (or the message
                // vanish), the state is overdue after the delay plus the grace and the sweeper sends it.
                if let Some(handle) = &m.receipt_handle {
                    let changed = self
                        .sqs
                        .change_message_visibility()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .visibility_timeout(delay as i32)
                        .send()
                        .await;
                    if let Err(e) = changed {
                        tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not set the retry delay on the message; the sweeper covers it");
                    }
                }
                Outcome::Retry
            }
        }
    }

    /// Best effort: the final failure is recorded in DynamoDB already (`recover` finds it); the
    /// dead-letter queue is where operators look and what alarms watch.
    async fn to_dlq(&self, m: &SqsMessage, reason: &str) {
        let sent = async {
            self.sqs
                .send_message()
                .queue_url(&self.dlq_url)
                .message_body(m.body.clone().unwrap_or_default())
                .message_attributes(
                    DLQ_REASON,
                    aws_sdk_sqs::types::MessageAttributeValue::builder().data_type("String").string_value(reason).build()?,
                )
                .send()
                .await?;
            Ok::<_, aws_sdk_sqs::Error>(())
        };
        if let Err(e) = sent.await {
            tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), reason, "could not copy the message to the dead-letter queue");
        }
    }

    /// One delivery: decides from its snapshot whether an attempt is due, makes it, and says what
    /// to write.
    async fn attempt(&self, m: &SqsMessage, msg: DeliveryMessage, snapshot: Snapshot) -> Result<Plan, StoreError> {
        let principal = msg.principal();
        let (event_id, endpoint_id) = (msg.event_id, msg.endpoint_id);
        let settle = |status, attempt: Option<Attempt>, event_exists| StateChange::Settle {
            principal: principal.clone(),
            event: event_id,
            endpoint: endpoint_id,
            status,
            attempt,
            event_exists,
        };

        // The state in DynamoDB decides; the message only says "look at this pair now".
        let Some(mut state) = snapshot.state else {
            tracing::warn!("no delivery state (expired, or never opened); message acknowledged");
            return Ok(Plan::done(None));
        };
        match state.status {
            DeliveryStatus::Pending if state.next_attempt_at > unix_now() + SCHEDULE_SLACK_SECS => {
                // Another message (or the sweeper) brings the attempt that is due later.
                tracing::info!(next_attempt_at = state.next_attempt_at, "next attempt not due yet; early duplicate acknowledged");
                return Ok(Plan::done(None));
            }
            DeliveryStatus::Pending => {}
            // Moved back from the dead-letter queue: deliver it again from attempt 1.
            DeliveryStatus::Failed if m.message_attributes.contains_key(DLQ_REASON) => {
                self.deliveries.reopen(&principal, event_id, &endpoint_id).await?;
                state.attempts = 0;
            }
            done => {
                tracing::info!(status = ?done, "already settled; duplicate message acknowledged");
                return Ok(Plan::done(None));
            }
        }
        // Whether the event still exists decides whether settling releases its count.
        let Some(event) = snapshot.event else {
            tracing::info!("event no longer exists; nothing sent");
            return Ok(Plan::done(Some(settle(DeliveryStatus::Canceled, None, false))));
        };
        let endpoint = match snapshot.endpoint {
            Some(e) if e.status == EndpointStatus::Enabled => e,
            _ => {
                tracing::info!("endpoint deleted or disabled; nothing sent");
                return Ok(Plan::done(Some(settle(DeliveryStatus::Canceled, None, true))));
            }
        };

        let attempt = state.attempts + 1;
        let body = event.as_str().as_bytes().to_vec();
        let now = unix_now();
        let started = Instant::now();
        let headers = sign(&endpoint.signing_secrets(now), &event.id.to_string(), now, &body);
        let response = self.client.post(&endpoint.url, headers, body).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let succeeded = response.status.is_some_and(|s| (200..300).contains(&s));
        let record = Attempt {
            event_id,
            endpoint_id,
            attempt,
            succeeded,
            http_status: response.status,
            latency_ms,
            error: response.error.clone(),
            response_body: response.body.clone(),
            created_at: now,
            next_retry_at: None,
        };
        metric(succeeded, latency_ms);
        tracing::info!(attempt, succeeded, http_status = ?response.status, latency_ms, error = ?response.error, "attempt");

        if succeeded {
            return Ok(Plan::done(Some(settle(DeliveryStatus::Succeeded, Some(record), true))));
        }
        if response.status == Some(410) {
            tracing::warn!("endpoint answered 410 Gone; disabled");
            self.endpoints.set_status(&principal, &endpoint.id, EndpointStatus::Disabled).await?;
            return Ok(Plan::done(Some(settle(DeliveryStatus::Failed, Some(record), true))));
        }
        Ok(match next_delay(self.schedule.for_mode(principal.mode), attempt, response.retry_after) {
            Some(delay) => {
                tracing::info!(retry_in_secs = delay, "will retry");
                let record = Attempt { next_retry_at: Some(unix_now() + delay), ..record };
                Plan { change: Some(StateChange::RetryLater { principal, attempt: record }), then: Then::RetryIn(delay) }
            }
            None => {
                tracing::warn!("retry schedule exhausted; final failure recorded, message copied to the DLQ");
                Plan { change: Some(settle(DeliveryStatus::Failed, Some(record), true)), then: Then::DeadLetter("retry schedule exhausted") }
            }
        })
    }
}

/// A CloudWatch Embedded Metric Format line on stdout: deliveries succeeded/failed and attempt
/// latency. Only inside Lambda, where CloudWatch turns it into metrics.
fn metric(succeeded: bool, latency_ms: u64) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        return;
    }
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": unix_now() * 1000,
            "CloudWatchMetrics": [{
                "Namespace": "PayGate/Webhooks",
                "Dimensions": [[]],
                "Metrics": [
                    {"Name": "DeliveriesSucceeded", "Unit": "Count"},
                    {"Name": "DeliveriesFailed", "Unit": "Count"},
                    {"Name": "AttemptLatency", "Unit": "Milliseconds"}
                ]
            }]
        },
        "DeliveriesSucceeded": u8::from(succeeded),
        "DeliveriesFailed": u8::from(!succeeded),
        "AttemptLatency": latency_ms,
    });
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_schedule_with_jitter_and_retry_after() {
        let s = RetrySchedule::default();
        assert_eq!(s.live.len(), 11);
        assert!(s.live.iter().sum::<u64>() > 3 * 86_400 - 86_400 / 2, "about three days");
        assert_eq!(s.test.len(), 3);
        assert!((3000..=4000).contains(&s.test.iter().sum::<u64>()), "about an hour");
        for _ in 0..100 {
            let d = next_delay(&[100, 200], 1, None).unwrap();
            assert!((80..=120).contains(&d));
        }
        assert!((160..=240).contains(&next_delay(&[100, 200], 2, None).unwrap()));
        assert_eq!(next_delay(&[100, 200], 3, None), None, "exhausted");
        assert_eq!(next_delay(&[100], 1, Some(30)), Some(30));
        assert_eq!(next_delay(&[100], 1, Some(0)), Some(1));
        assert_eq!(next_delay(&[100], 1, Some(10_000_000)), Some(MAX_DELAY_SECS));
    }
}
