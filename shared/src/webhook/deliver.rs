//! `deliver-webhooks`: SQS batches of (event, endpoint) messages → signed POSTs, all messages of a
//! batch concurrently over one HTTP client. A batch costs DynamoDB one read (every state, event and
//! endpoint: BatchGetItem) and one write (every state change and attempt: one transaction).
//!
//! Every message is acknowledged once its state change is written: success settles the delivery; a
//! failure records the attempt and the time of the next one in the delivery state, where the
//! scheduler (`sweeper`) finds it when it is due and enqueues it again; an exhausted schedule
//! records the final failure and copies the message to the DLQ. So a waiting retry is a DynamoDB
//! item, never an invisible SQS message: the queue's in-flight messages are only the attempts being
//! made now, whatever the backlog of any merchant. Attempts are counted in the delivery state, not
//! by SQS. Only our own failure (DynamoDB unreachable) leaves a message on the queue.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use rand::Rng;
use tracing::Instrument;

use crate::ids::{EndpointId, Principal, unix_now};
use crate::store::{EventStore, StoreError};
use crate::store::deliveries::{Attempt, DeliveryStatus, DeliveryStore, Snapshot, StateChange};
use crate::store::endpoints::EndpointStore;
use crate::store::health::HealthStore;
use crate::webhook::breaker::{BreakerConfig, Health, Signal};
use crate::webhook::decision::{Decision, Facts, Verdict, after, decide};
use crate::webhook::endpoints::EndpointStatus;
use crate::webhook::fanout::DeliveryMessage;
use crate::webhook::signature::sign;
use crate::webhook::ssrf::WebhookClient;

pub use crate::webhook::decision::{RetrySchedule, next_delay};

/// The message attribute the deliverer sets on what it copies to the dead-letter queue; a message
/// carrying it that comes back (a DLQ redrive) re-opens its finally failed delivery.
pub const DLQ_REASON: &str = "reason";

/// What the delivery function needs, built once.
#[derive(Debug, Clone)]
pub struct Deliverer {
    pub events: EventStore,
    pub endpoints: EndpointStore,
    pub deliveries: DeliveryStore,
    pub health: HealthStore,
    pub sqs: crate::aws::Sqs,
    pub dlq_url: String,
    /// Sends the POSTs, to public addresses only (unless the policy allows private ones).
    pub client: WebhookClient,
    pub schedule: RetrySchedule,
    pub breaker: BreakerConfig,
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledge (delete) the message.
    Done,
    /// Leave it (our own failure): it comes back after the queue's visibility timeout.
    Retry,
}

/// What follows a message's state change once it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Done,
    /// Acknowledge it, and copy it to the dead-letter queue for this reason.
    DeadLetter(&'static str),
}

/// One message's plan: the state change to write (if any), what follows, and what its attempt (if
/// any) said of its endpoint.
#[derive(Debug)]
struct Plan {
    change: Option<StateChange>,
    then: Then,
    signal: Option<Signal>,
}

impl Plan {
    fn done(change: Option<StateChange>) -> Plan {
        Plan { change, then: Then::Done, signal: None }
    }
}

/// One delivery of the batch, as read.
struct Work {
    msg: DeliveryMessage,
    snapshot: Snapshot,
}

impl Deliverer {
    /// The SQS handler. Every message of the batch at once: one read of every state, event,
    /// endpoint and endpoint health, the POSTs concurrently, then one write of every state change
    /// (and one of each endpoint's health, only where it changed).
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
        let snapshots = match self.deliveries.snapshots(&self.events, &self.endpoints, &self.health, &wanted).await {
            Ok(s) => s,
            Err(e) => {
                // Our own failure: every message is retried as it is.
                tracing::error!(error = %e, "could not read the batch's deliveries; every message retried");
                return deliveries.iter().map(|d| if d.is_some() { Outcome::Retry } else { Outcome::Done }).collect();
            }
        };
        let mut snapshots = snapshots.into_iter();
        let work: Vec<Option<Work>> =
            deliveries.into_iter().map(|d| d.map(|msg| Work { msg, snapshot: snapshots.next().expect("one snapshot per delivery") })).collect();
        // Each endpoint's health as read, for the health update after the batch.
        let mut health: HashMap<(Principal, EndpointId), (Health, Vec<Signal>)> = HashMap::new();
        for w in work.iter().flatten() {
            health.entry((w.msg.principal(), w.msg.endpoint_id)).or_insert_with(|| (w.snapshot.health.clone(), Vec::new()));
        }

        let plans = join_all(messages.iter().zip(work).map(|(m, work)| async move {
            let Some(Work { msg, snapshot }) = work else { return Ok((None, Plan::done(None))) };
            let span = tracing::info_span!("deliver", event_id = %msg.event_id, endpoint_id = %msg.endpoint_id);
            let key = (msg.principal(), msg.endpoint_id);
            self.one(m, msg, snapshot).instrument(span).await.map(|plan| (Some(key), plan))
        }))
        .await;

        let changes: Vec<StateChange> = plans.iter().filter_map(|p| p.as_ref().ok()?.1.change.clone()).collect();
        let mut written = self.deliveries.apply_all(&changes).await.into_iter();
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut thens = Vec::with_capacity(messages.len());
        for (m, plan) in messages.iter().zip(plans) {
            let write = match &plan {
                Ok((_, Plan { change: Some(_), .. })) => written.next().expect("one result per change").map(|_| ()),
                _ => Ok(()),
            };
            match (plan, write) {
                (Ok((key, plan)), Ok(())) => {
                    if let (Some(signal), Some((_, signals))) = (plan.signal, key.and_then(|k| health.get_mut(&k))) {
                        signals.push(signal);
                    }
                    thens.push((m, Some(plan.then)));
                }
                (Err(e), _) | (_, Err(e)) => {
                    // Our own failure (DynamoDB): retry the message as it is.
                    tracing::error!(error = %e, message_id = ?m.message_id, "delivery failed on our side");
                    thens.push((m, None));
                }
            }
        }
        self.record_health(health).await;
        for (m, then) in thens {
            outcomes.push(match then {
                Some(then) => self.then(m, then).await,
                None => Outcome::Retry,
            });
        }
        outcomes
    }

    /// Writes what the batch's attempts changed in each endpoint's health (nothing for a healthy
    /// endpoint that answered), and disables an endpoint failing for too long. Best effort: the
    /// deliveries are written already, and the next batch's attempts update it again.
    async fn record_health(&self, health: HashMap<(Principal, EndpointId), (Health, Vec<Signal>)>) {
        let now = unix_now();
        join_all(health.into_iter().map(|((principal, endpoint), (was, signals))| async move {
            let Some(update) = was.update(&signals, &self.breaker, now) else { return };
            if update.open.is_some() {
                tracing::warn!(endpoint_id = %endpoint, failures = was.consecutive_failures + update.failures, "endpoint failing: its breaker opens; deliveries wait for a probe");
            }
            if update.reset && was.is_open() {
                tracing::info!(endpoint_id = %endpoint, "endpoint answering again: its breaker closes");
            }
            if let Err(e) = self.health.record(&principal, &endpoint, &update).await {
                tracing::warn!(error = %e, endpoint_id = %endpoint, "could not record the endpoint's health");
            }
            if let Some(reason) = &update.disable {
                tracing::warn!(endpoint_id = %endpoint, reason, "endpoint disabled by its breaker");
                if let Err(e) = self.endpoints.set_status(&principal, &endpoint, EndpointStatus::Disabled).await {
                    tracing::warn!(error = %e, endpoint_id = %endpoint, "could not disable the endpoint");
                }
            }
        }))
        .await;
    }

    /// What follows a written state change.
    async fn then(&self, m: &SqsMessage, then: Then) -> Outcome {
        match then {
            Then::Done => Outcome::Done,
            Then::DeadLetter(reason) => {
                self.to_dlq(m, reason).await;
                Outcome::Done
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

    /// One delivery: [`decide`] on what was read, the I/O the decision asks for (re-opening, the
    /// probe claim, the POST), and [`after`] on the answer.
    async fn one(&self, m: &SqsMessage, msg: DeliveryMessage, mut snapshot: Snapshot) -> Result<Plan, StoreError> {
        let principal = msg.principal();
        let (event_id, endpoint_id) = (msg.event_id, msg.endpoint_id);
        let schedule = self.schedule.for_mode(principal.mode);
        let settle = |status, attempt: Option<Attempt>, event_exists| StateChange::Settle {
            principal: principal.clone(),
            event: event_id,
            endpoint: endpoint_id,
            status,
            attempt,
            event_exists,
        };
        let hold = |until| StateChange::Hold { principal: principal.clone(), event: event_id, endpoint: endpoint_id, until };
        let jitter: f64 = rand::rng().random_range(0.0..1.0);
        let now = unix_now();
        let mut decision = decide(&facts(&snapshot, m.message_attributes.contains_key(DLQ_REASON)), schedule, now, jitter);
        if decision == Decision::Reopen {
            // Moved back from the dead-letter queue: deliver it again from attempt 1.
            self.deliveries.reopen(&principal, event_id, &endpoint_id).await?;
            snapshot.state = self.deliveries.state(&principal, event_id, &endpoint_id).await?;
            decision = decide(&facts(&snapshot, false), schedule, now, jitter);
        }
        let attempt = match decision {
            Decision::Skip(why) => {
                tracing::info!(?why, "nothing to do; message acknowledged");
                return Ok(Plan::done(None));
            }
            Decision::Reopen => return Ok(Plan::done(None)),
            Decision::Cancel { event_exists } => {
                tracing::info!(event_exists, "event gone, or endpoint deleted or disabled; nothing sent");
                return Ok(Plan::done(Some(settle(DeliveryStatus::Canceled, None, event_exists))));
            }
            Decision::Hold { until } => {
                tracing::info!(until, "endpoint's breaker open or endpoint paused; waiting in DynamoDB");
                return Ok(Plan::done(Some(hold(until))));
            }
            Decision::Probe { attempt } => {
                let seen = snapshot.health.next_probe_at.unwrap_or_default();
                let (next, interval) = snapshot.health.claim(&self.breaker, now);
                if !self.health.claim_probe(&principal, &endpoint_id, seen, next, interval).await? {
                    // Another delivery is the probe: wait for the next one.
                    return Ok(Plan::done(Some(hold(next + (jitter * interval as f64) as u64))));
                }
                tracing::info!(attempt, next_probe_at = next, "probing the endpoint");
                attempt
            }
            Decision::Attempt { attempt } => attempt,
        };
        let (Some(event), Some(endpoint)) = (snapshot.event, snapshot.endpoint) else {
            unreachable!("decide attempts only a delivery whose event and endpoint exist")
        };

        let body = event.as_str().as_bytes().to_vec();
        let now = unix_now();
        let started = Instant::now();
        let headers = sign(&endpoint.signing_secrets(now), &event.id.to_string(), now, &body);
        let response = self.client.post(&endpoint.url, headers, body).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let (verdict, signal) = after(response.status, response.retry_after, attempt, schedule, unix_now(), rand::rng().random_range(0.8..=1.2));
        let succeeded = verdict == Verdict::Delivered;
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

        let mut plan = match verdict {
            Verdict::Delivered => Plan::done(Some(settle(DeliveryStatus::Succeeded, Some(record), true))),
            Verdict::Gone => {
                tracing::warn!("endpoint answered 410 Gone; disabled");
                self.endpoints.set_status(&principal, &endpoint.id, EndpointStatus::Disabled).await?;
                Plan::done(Some(settle(DeliveryStatus::Failed, Some(record), true)))
            }
            Verdict::RetryAt(at) => {
                tracing::info!(next_attempt_at = at, "will retry");
                // Written into the state (`ByDue`): the scheduler enqueues it when it is due.
                Plan::done(Some(StateChange::RetryLater { principal, attempt: Attempt { next_retry_at: Some(at), ..record } }))
            }
            Verdict::Exhausted => {
                tracing::warn!("retry schedule exhausted; final failure recorded, message copied to the DLQ");
                Plan { change: Some(settle(DeliveryStatus::Failed, Some(record), true)), then: Then::DeadLetter("retry schedule exhausted"), signal: None }
            }
        };
        plan.signal = Some(signal);
        Ok(plan)
    }
}

/// What [`decide`] needs of a snapshot.
fn facts(s: &Snapshot, redriven: bool) -> Facts<'_> {
    Facts { state: s.state.as_ref(), event_exists: s.event.is_some(), endpoint: s.endpoint.as_ref(), health: &s.health, redriven }
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

