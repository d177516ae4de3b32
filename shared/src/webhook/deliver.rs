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
//!
//! **Two lanes.** An attempt holds its batch (deployed: one of the mapping's concurrent
//! invocations) until it ends, up to the 15 s timeout. So an attempt from the delivery queue that
//! takes `throttle::SLOW_LANE_MS` is withdrawn there and moved to the slow lane
//! (`SlowDeliveryQueue`, a mapping of its own), and so is every later delivery to its endpoint
//! until the endpoint answers in under `throttle::FAST_AGAIN_MS` again: a batch of the delivery
//! queue waits at most `SLOW_LANE_MS` for any endpoint. In the slow lane an attempt goes on to the
//! timeout; one that takes `throttle::SLOW_MS` marks its endpoint slow, and a slow endpoint's
//! attempts each take one of its leases. Endpoints in the slow lane hold only its batches: they
//! wait for each other, never the other merchants' deliveries.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use rand::Rng;
use tracing::Instrument;

use crate::model::delivery::{Attempt, DeliveryStatus, Snapshot, StateChange};
use crate::model::endpoint::{Endpoint, EndpointStatus};
use crate::model::event::EventJson;
use crate::model::health::Mark;
use crate::model::ids::{EndpointId, Principal, unix_now, unix_now_ms};
use crate::store::StoreError;
use crate::store::deliveries::DeliveryStore;
use crate::store::endpoints::EndpointStore;
use crate::store::health::HealthStore;
use crate::webhook::breaker::{BreakerConfig, Health, Signal};
use crate::webhook::decision::{Decision, Facts, Verdict, after, decide};
use crate::webhook::fanout::DeliveryMessage;
use crate::webhook::signature::sign;
use crate::webhook::ssrf::WebhookClient;
use crate::webhook::throttle;

pub use crate::webhook::decision::{RetrySchedule, next_delay};

/// The message attribute the deliverer sets on what it copies to the dead-letter queue; a message
/// carrying it that comes back (a DLQ redrive) re-opens its finally failed delivery.
pub const DLQ_REASON: &str = "reason";

/// The system attribute that carries a message's tenant (`{account}#{mode}`; see `fanout`).
const GROUP: &str = "MessageGroupId";

/// What the delivery function needs, built once.
#[derive(Debug, Clone)]
pub struct Deliverer {
    pub endpoints: EndpointStore,
    pub deliveries: DeliveryStore,
    pub health: HealthStore,
    pub sqs: crate::aws::Sqs,
    pub dlq_url: String,
    /// Sends deliveries to the slow lane, the queue whose batches may be held by slow endpoints.
    pub slow_lane: crate::webhook::fanout::Fanout,
    /// Sends the POSTs, to public addresses only (unless the policy allows private ones).
    pub client: WebhookClient,
    pub schedule: RetrySchedule,
    pub breaker: BreakerConfig,
    /// What this process learnt of slow endpoints' leases (see [`LeaseMemo`]).
    pub memo: Arc<Mutex<LeaseMemo>>,
}

/// What one deliverer process remembers of slow endpoints, so that many attempts finding the same
/// endpoint slow at once do not all write its health item (a hot item): until when it is marked
/// slow (or for the slow lane) already, and until when its leases were all taken.
#[derive(Debug, Default)]
pub struct LeaseMemo {
    marked_until: HashMap<(EndpointId, Mark), u64>,
    full_until: HashMap<EndpointId, u64>,
    /// Deliveries moved to the slow lane in the current second: until when, and how many.
    moved: HashMap<EndpointId, (u64, usize)>,
}

/// How long a process trusts what it learnt of an endpoint's leases (ms).
const MEMO_MS: u64 = 1_000;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledge (delete) the message.
    Done,
    /// Leave it (our own failure): it comes back after the queue's visibility timeout.
    Retry,
}

/// What follows a message's state change once it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Then {
    Done,
    /// Acknowledge it, and copy it to the dead-letter queue for this reason.
    DeadLetter(&'static str),
    /// Acknowledge it: its delivery was moved to the slow lane (with the batch's others).
    SlowLane(DeliveryMessage),
}

/// One message's plan: the state change to write (if any), what follows, and what its attempt (if
/// any) said of its endpoint and how long it took.
#[derive(Debug)]
struct Plan {
    change: Option<StateChange>,
    then: Then,
    signal: Option<(Signal, u64)>,
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

/// Each endpoint of a batch: its health as read, and what the batch's attempts said of it (their
/// signals and latencies).
type EndpointHealths = HashMap<(Principal, EndpointId), (Health, Vec<Signal>, Vec<u64>)>;

/// The endpoint of a message's delivery (none for a message without one).
type EndpointKey = Option<(Principal, EndpointId)>;

/// What one delivery comes to once decided: a plan already, or an attempt to make.
#[allow(clippy::large_enum_variant)] // at most ten live at once, one per message of a batch
enum Step {
    Plan(Plan),
    Ready(Ready),
}

/// A delivery to attempt: its event and endpoint, which attempt it is, and when it was opened.
struct Ready {
    msg: DeliveryMessage,
    /// Its batch is the slow lane's.
    slow_lane: bool,
    event: EventJson,
    endpoint: Endpoint,
    health: Health,
    attempt: u32,
    opened_at: u64,
}

/// What the endpoint's throttle allows one ready delivery (`webhook::throttle`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Gate {
    /// Send it, at `at_ms` (a `rate_limit` slot) or now, holding this lease (a slow endpoint's).
    Go { at_ms: Option<u64>, lease: Option<(String, u64)> },
    /// Not now: it waits in DynamoDB until then (unix seconds).
    Wait(u64),
    /// Not from this batch: the endpoint is slow and this is the delivery queue's batch.
    SlowLane,
}

/// How long a lease is held at most: longer than any attempt (15 s) with room to spare, so a
/// deliverer that died holding one frees it by then.
const LEASE_MS: u64 = 30_000;

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
                    tracing::error!(message_id = m.message_id.as_deref(), "malformed delivery message; moved to the DLQ");
                    self.to_dlq(m, "malformed message").await;
                    deliveries.push(None);
                }
                Some(d) if !seen.insert((d.principal(), d.event_id, d.endpoint_id)) => {
                    tracing::info!(message_id = m.message_id.as_deref(), event_id = %d.event_id, endpoint_id = %d.endpoint_id, "second message for one delivery in the batch; acknowledged");
                    deliveries.push(None);
                }
                Some(d) => deliveries.push(Some(d)),
            }
        }
        let wanted: Vec<_> = deliveries.iter().flatten().map(|d| (d.principal(), d.event_id, d.endpoint_id)).collect();
        let snapshots = match self.deliveries.snapshots(&self.endpoints, &self.health, &wanted).await {
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
        let mut health: EndpointHealths = HashMap::new();
        for w in work.iter().flatten() {
            health.entry((w.msg.principal(), w.msg.endpoint_id)).or_insert_with(|| (w.snapshot.health.clone(), Vec::new(), Vec::new()));
        }
        let keys: Vec<EndpointKey> = work.iter().map(|w| w.as_ref().map(|w| (w.msg.principal(), w.msg.endpoint_id))).collect();
        // A batch comes from one queue.
        let slow_lane = messages.first().is_some_and(|m| self.in_slow_lane(m));

        // Decide each delivery, then ask each endpoint's throttle about those to attempt, then attempt.
        let steps = join_all(messages.iter().zip(work).map(|(m, work)| async move {
            let Some(Work { msg, snapshot }) = work else { return Ok(Step::Plan(Plan::done(None))) };
            let span = tracing::info_span!("deliver", event_id = %msg.event_id, endpoint_id = %msg.endpoint_id);
            self.prepare(m, msg, snapshot, slow_lane).instrument(span).await
        }))
        .await;
        let gates = self.gates(&steps).await;
        let plans = join_all(steps.into_iter().zip(gates).zip(keys).map(|((step, gate), key)| async move {
            let plan = match (step?, gate) {
                (Step::Plan(plan), _) => plan,
                (Step::Ready(ready), Some(gate)) => {
                    let span = tracing::info_span!("deliver", event_id = %ready.msg.event_id, endpoint_id = %ready.msg.endpoint_id);
                    self.attempt(ready, gate).instrument(span).await?
                }
                (Step::Ready(_), None) => unreachable!("every ready delivery has a gate"),
            };
            Ok((key, plan))
        }))
        .await;
        let plans = self.move_to_slow_lane(plans).await;

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
                    if let (Some((signal, latency)), Some((_, signals, latencies))) = (plan.signal, key.and_then(|k| health.get_mut(&k))) {
                        signals.push(signal);
                        latencies.push(latency);
                    }
                    thens.push((m, Some(plan.then)));
                }
                (Err(e), _) | (_, Err(e)) => {
                    // Our own failure (DynamoDB): retry the message as it is.
                    tracing::error!(error = %e, message_id = m.message_id.as_deref(), "delivery failed on our side");
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
    async fn record_health(&self, health: EndpointHealths) {
        let now = unix_now();
        join_all(health.into_iter().map(|((principal, endpoint), (was, signals, latencies))| async move {
            let Some(update) = was.update(&signals, &latencies, &self.breaker, now) else { return };
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
            Then::Done | Then::SlowLane(_) => Outcome::Done,
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
                .set_message_group_id(m.attributes.get(GROUP).cloned())
                .message_attributes(DLQ_REASON, aws_sdk_sqs::types::MessageAttributeValue::builder().data_type("String").string_value(reason).build()?)
                .send()
                .await?;
            Ok::<_, aws_sdk_sqs::Error>(())
        };
        if let Err(e) = sent.await {
            tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), reason, "could not copy the message to the dead-letter queue");
        }
    }

    /// One delivery, decided: [`decide`] on what was read, with the I/O a decision asks for
    /// (re-opening a redriven delivery, claiming the breaker's probe).
    async fn prepare(&self, m: &SqsMessage, msg: DeliveryMessage, mut snapshot: Snapshot, slow_lane: bool) -> Result<Step, StoreError> {
        let principal = msg.principal();
        let (event_id, endpoint_id) = (msg.event_id, msg.endpoint_id);
        let schedule = self.schedule.for_mode(principal.mode);
        let jitter: f64 = rand::rng().random_range(0.0..1.0);
        let now = unix_now();
        let mut decision = decide(&facts(&snapshot, m.message_attributes.contains_key(DLQ_REASON)), schedule, now, jitter);
        if decision == Decision::Reopen {
            // Moved back from the dead-letter queue: deliver it again from attempt 1.
            self.deliveries.reopen(&principal, event_id, &endpoint_id).await?;
            snapshot.state = self.deliveries.state(&principal, event_id, &endpoint_id).await?;
            decision = decide(&facts(&snapshot, false), schedule, now, jitter);
        }
        if matches!(decision, Decision::Probe { .. }) && snapshot.health.in_slow_lane() && !slow_lane {
            // An endpoint in the slow lane is probed from there only (the probe is claimed there).
            return Ok(Step::Plan(to_slow_lane(msg)));
        }
        let attempt = match decision {
            Decision::Skip(why) => {
                tracing::info!(?why, "nothing to do; message acknowledged");
                return Ok(Step::Plan(Plan::done(None)));
            }
            Decision::Reopen => return Ok(Step::Plan(Plan::done(None))),
            Decision::Cancel { event_exists } => {
                tracing::info!(event_exists, "event gone, or endpoint deleted or disabled; nothing sent");
                return Ok(Step::Plan(Plan::done(Some(StateChange::Settle {
                    principal,
                    event: event_id,
                    endpoint: endpoint_id,
                    status: DeliveryStatus::Canceled,
                    attempt: None,
                    event_exists,
                }))));
            }
            Decision::Hold { until } => {
                tracing::info!(until, "endpoint's breaker open or endpoint paused; waiting in DynamoDB");
                return Ok(Step::Plan(Plan::done(Some(hold(&msg, until)))));
            }
            Decision::Probe { attempt } => {
                let seen = snapshot.health.next_probe_at.unwrap_or_default();
                let (next, interval) = snapshot.health.claim(&self.breaker, now);
                if !self.health.claim_probe(&principal, &endpoint_id, seen, next, interval).await? {
                    // Another delivery is the probe: wait for the next one.
                    return Ok(Step::Plan(Plan::done(Some(hold(&msg, next + (jitter * interval as f64) as u64)))));
                }
                tracing::info!(attempt, next_probe_at = next, "probing the endpoint");
                attempt
            }
            Decision::Attempt { attempt } => attempt,
        };
        let (Some(event), Some(endpoint), Some(state)) = (snapshot.event, snapshot.endpoint, snapshot.state) else {
            unreachable!("decide attempts only a pending delivery whose event and endpoint exist")
        };
        Ok(Step::Ready(Ready { msg, slow_lane, event, endpoint, health: snapshot.health, attempt, opened_at: state.opened_at }))
    }

    /// Whether this message was read from the slow lane (its queue's ARN names the slow lane's
    /// queue; `paygate dev`'s poller gives its messages the ARN Lambda would).
    fn in_slow_lane(&self, m: &SqsMessage) -> bool {
        let queue = crate::aws::queue_name(&self.slow_lane.queue_url);
        !queue.is_empty() && m.event_source_arn.as_deref().and_then(|arn| arn.rsplit(':').next()) == Some(queue)
    }

    /// Sends the batch's deliveries planned for the slow lane there, ten to a request; the messages
    /// they came in are then acknowledged. If they cannot be sent, they wait in DynamoDB a moment
    /// instead, and the scheduler enqueues them again.
    async fn move_to_slow_lane(&self, mut plans: Vec<Result<(EndpointKey, Plan), StoreError>>) -> Vec<Result<(EndpointKey, Plan), StoreError>> {
        let moving: Vec<DeliveryMessage> = plans
            .iter()
            .filter_map(|p| match &p.as_ref().ok()?.1.then {
                Then::SlowLane(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        if moving.is_empty() {
            return plans;
        }
        match self.slow_lane.enqueue(&moving).await {
            Ok(()) => tracing::info!(moved = moving.len(), "slow endpoints: deliveries moved to the slow lane"),
            Err(e) => {
                tracing::warn!(error = %e, "could not move deliveries to the slow lane; they wait in DynamoDB");
                let until = moment();
                for (_, plan) in plans.iter_mut().flatten() {
                    if let Then::SlowLane(m) = &plan.then {
                        *plan = Plan::done(Some(hold(m, until)));
                    }
                }
            }
        }
        plans
    }

    /// Each ready delivery's gate, in order (`None` for the others): per endpoint, its
    /// `rate_limit` slots (one conditional write for all its deliveries in the batch), then, for a
    /// slow endpoint, a lease each.
    async fn gates(&self, steps: &[Result<Step, StoreError>]) -> Vec<Option<Gate>> {
        let mut by_endpoint: HashMap<(Principal, EndpointId), Vec<usize>> = HashMap::new();
        for (i, step) in steps.iter().enumerate() {
            if let Ok(Step::Ready(r)) = step {
                by_endpoint.entry((r.msg.principal(), r.endpoint.id)).or_default().push(i);
            }
        }
        let mut gates: Vec<Option<Gate>> = steps.iter().map(|_| None).collect();
        let decided = join_all(by_endpoint.into_iter().map(|((principal, _), indexes)| async move {
            let Ok(Step::Ready(first)) = &steps[indexes[0]] else { unreachable!("grouped from ready steps") };
            let gates = self.endpoint_gates(&principal, &first.endpoint, &first.health, indexes.len(), first.slow_lane).await;
            (indexes, gates)
        }))
        .await;
        for (indexes, result) in decided {
            let endpoint_gates = result.unwrap_or_else(|e| {
                // The throttle cannot be asked (DynamoDB): nothing is sent to the endpoint now; its
                // deliveries wait a moment (and are retried as they are if that cannot be written either).
                tracing::warn!(error = %e, "could not consult the endpoint's throttle; its deliveries wait");
                let until = moment();
                indexes.iter().map(|_| Gate::Wait(until)).collect()
            });
            for (i, g) in indexes.into_iter().zip(endpoint_gates) {
                gates[i] = Some(g);
            }
        }
        gates
    }

    /// The gates of `n` deliveries to one endpoint (`webhook::throttle`). From the delivery queue,
    /// the deliveries of an endpoint in the slow lane go there; while it is slow or new in the lane
    /// ([`Health::crossing_bounded`]), only as many as it has leases free. Otherwise a `rate_limit`
    /// slot and, for a slow endpoint, a lease each. Those that get none of these join the
    /// endpoint's line.
    async fn endpoint_gates(&self, principal: &Principal, endpoint: &Endpoint, health: &Health, n: usize, slow_lane: bool) -> Result<Vec<Gate>, StoreError> {
        let now_ms = unix_now_ms();
        // `None`: not now (no slot or no lease), a place in the line follows.
        let mut gates: Vec<Option<Gate>> = Vec::with_capacity(n);
        if health.in_slow_lane() && !slow_lane {
            let moving = if health.crossing_bounded(unix_now()) { self.to_move(&endpoint.id, health, n) } else { n };
            gates.extend((0..n).map(|i| (i < moving).then_some(Gate::SlowLane)));
        } else {
            let go = |at_ms| Some(Gate::Go { at_ms, lease: None });
            match endpoint.rate_limit {
                Some(rate) => {
                    let (mut slots, tat) = throttle::take_slots(health.tat_ms, now_ms, rate, n);
                    if !slots.is_empty() && !self.health.take_slots(principal, &endpoint.id, health.tat_ms, tat).await? {
                        // Another deliverer took slots meanwhile: these wait their turn.
                        slots.clear();
                    }
                    gates.extend(slots.iter().map(|at| go(Some(*at))));
                    gates.resize(n, None);
                }
                None => gates.extend((0..n).map(|_| go(None))),
            }
            if health.slow_since.is_some() {
                let mut free = throttle::free_leases(&health.leases, self.breaker.max_concurrency, now_ms).into_iter();
                for gate in gates.iter_mut() {
                    let Some(Gate::Go { lease, .. }) = gate else { continue };
                    let until = now_ms + LEASE_MS;
                    let mut got = None;
                    for id in free.by_ref() {
                        if self.health.acquire_lease(principal, &endpoint.id, &id, until, now_ms).await? {
                            got = Some((id, until));
                            break;
                        }
                    }
                    match got {
                        Some(l) => *lease = Some(l),
                        // Over the endpoint's concurrency: wait, without holding a delivery slot.
                        None => *gate = None,
                    }
                }
            }
        }
        let waiting = gates.iter().filter(|g| g.is_none()).count();
        let mut places = if waiting > 0 { self.join_line(principal, endpoint, health, waiting).await?.into_iter() } else { Vec::new().into_iter() };
        Ok(gates.into_iter().map(|g| g.unwrap_or_else(|| Gate::Wait(places.next().expect("a place for each waiting delivery")))).collect())
    }

    /// Places for `n` deliveries that cannot go now at the end of the endpoint's waiting line, at
    /// its pace (`webhook::throttle`): when each comes back (unix seconds).
    async fn join_line(&self, principal: &Principal, endpoint: &Endpoint, health: &Health, n: usize) -> Result<Vec<u64>, StoreError> {
        let slow = health.slow_since.map(|_| (health.slow_ms, self.client.timeout().as_millis() as u64));
        let mut pace = throttle::line_pace_ms(endpoint.rate_limit, slow, self.breaker.max_concurrency);
        let mut from_ms = unix_now_ms();
        if slow.is_none() && health.crossing_bounded(unix_now()) {
            // New in the slow lane: the line starts once the slow lane has shown whether it is
            // slow (its places are then paced by its leases) or not (they all cross), paced as if
            // it answered in `SLOW_LANE_MS` (50 ms apart with 10 leases).
            pace = pace.max(throttle::SLOW_LANE_MS / u64::from(self.breaker.max_concurrency.max(1)));
            from_ms += throttle::NEW_IN_LANE_SECS * 1000;
        }
        let start = self.health.join_line(principal, &endpoint.id, health.line_ms, from_ms, n, pace).await?;
        Ok(throttle::places(start, n, pace))
    }

    /// A withdrawn attempt's delivery, held for its place in the endpoint's line, paced as `found`
    /// (the endpoint as the attempt found it: new in the slow lane, or slow) says.
    async fn withdrawn_to_line(&self, msg: &DeliveryMessage, endpoint: &Endpoint, found: &Health) -> Result<Plan, StoreError> {
        let until = self.join_line(&msg.principal(), endpoint, found, 1).await?[0];
        Ok(Plan::done(Some(hold(msg, until))))
    }

    /// Marks an endpoint found slow by an attempt (so later batches take leases for it), or found
    /// to take `SLOW_LANE_MS` (so later batches move its deliveries to the slow lane); once per
    /// process and minute.
    async fn mark(&self, mark: Mark, principal: &Principal, endpoint: &EndpointId, health: &Health) -> Result<(), StoreError> {
        let now_ms = unix_now_ms();
        let stored = match mark {
            Mark::Slow => health.slow_since.is_some(),
            Mark::SlowLane => health.slow_lane_since.is_some(),
        };
        let marked = stored || self.memo.lock().expect("memo lock").marked_until.get(&(*endpoint, mark)).is_some_and(|t| *t > now_ms);
        if !marked {
            self.health.mark(principal, endpoint, mark).await?;
            self.memo.lock().expect("memo lock").marked_until.insert((*endpoint, mark), now_ms + 60 * MEMO_MS);
        }
        Ok(())
    }

    /// How many of `n` deliveries to a slow endpoint (or one new in the slow lane) this process
    /// moves from the delivery queue to the slow lane now: as many as it has leases free (as read),
    /// less those this process moved there in the last second. The others wait instead of crossing
    /// to the slow lane only to find no lease: a dead endpoint's backlog costs no more than it did
    /// in one lane.
    fn to_move(&self, endpoint: &EndpointId, health: &Health, n: usize) -> usize {
        let now_ms = unix_now_ms();
        let free = throttle::free_leases(&health.leases, self.breaker.max_concurrency, now_ms).len();
        let mut memo = self.memo.lock().expect("memo lock");
        let (until, moved) = memo.moved.entry(*endpoint).or_insert((0, 0));
        if *until <= now_ms {
            (*until, *moved) = (now_ms + MEMO_MS, 0);
        }
        let moving = n.min(free.saturating_sub(*moved));
        *moved += moving;
        moving
    }

    /// A lease for an attempt found slow while it runs in the slow lane: marks the endpoint slow,
    /// then takes a free lease. `None` when all are taken.
    async fn lease_midway(&self, principal: &Principal, endpoint: &EndpointId, health: &Health) -> Result<Option<(String, u64)>, StoreError> {
        let now_ms = unix_now_ms();
        if self.memo.lock().expect("memo lock").full_until.get(endpoint).is_some_and(|t| *t > now_ms) {
            return Ok(None);
        }
        self.mark(Mark::Slow, principal, endpoint, health).await?;
        let until = now_ms + LEASE_MS;
        let mut free = throttle::free_leases(&health.leases, self.breaker.max_concurrency, now_ms);
        // Deliverers that found the same leases free try them in different orders.
        rand::seq::SliceRandom::shuffle(free.as_mut_slice(), &mut rand::rng());
        for id in free.iter().take(3) {
            if self.health.acquire_lease(principal, endpoint, id, until, now_ms).await? {
                return Ok(Some((id.clone(), until)));
            }
        }
        self.memo.lock().expect("memo lock").full_until.insert(*endpoint, now_ms + MEMO_MS);
        Ok(None)
    }

    /// One attempt through its gate: wait for a slot or hold it in DynamoDB; POST; [`after`] on the
    /// answer; give the lease back.
    async fn attempt(&self, ready: Ready, gate: Gate) -> Result<Plan, StoreError> {
        let Ready { msg, slow_lane, event, endpoint, attempt, health, opened_at } = ready;
        let mut lease = match gate {
            Gate::Wait(until) => {
                tracing::info!(until, "over the endpoint's rate limit or concurrency; waiting in DynamoDB");
                return Ok(Plan::done(Some(hold(&msg, until))));
            }
            Gate::SlowLane => return Ok(to_slow_lane(msg)),
            Gate::Go { at_ms, lease } => {
                if let Some(wait) = at_ms.and_then(|at| at.checked_sub(unix_now_ms())) {
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                lease
            }
        };
        let principal = msg.principal();
        let (event_id, endpoint_id) = (msg.event_id, msg.endpoint_id);
        let schedule = self.schedule.for_mode(principal.mode);
        let settle = |status, attempt: Option<Attempt>| StateChange::Settle {
            principal: principal.clone(),
            event: event_id,
            endpoint: endpoint_id,
            status,
            attempt,
            event_exists: true,
        };

        let body = event.as_str().as_bytes().to_vec();
        let now = unix_now();
        let started = Instant::now();
        let headers = sign(&endpoint.signing_secrets(now), &event.id.to_string(), now, &body);
        let post = self.client.post(&endpoint.url, headers, body);
        tokio::pin!(post);
        // From the delivery queue, an attempt that takes `SLOW_LANE_MS` is withdrawn (not counted as
        // an attempt: its outcome is unknown, as after a crash; receivers dedupe by event id) and
        // moved to the slow lane. There, one that takes `SLOW_MS` needs a lease to go on.
        let limit_ms = if slow_lane { throttle::SLOW_MS } else { throttle::SLOW_LANE_MS };
        let response = match lease {
            Some(_) => post.await,
            None => tokio::select! {
                r = &mut post => r,
                () = tokio::time::sleep(std::time::Duration::from_millis(limit_ms)) => {
                    if !slow_lane {
                        self.mark(Mark::SlowLane, &principal, &endpoint_id, &health).await?;
                        if self.to_move(&endpoint_id, &health, 1) == 1 {
                            tracing::info!("slow endpoint: attempt withdrawn from the delivery queue's batch, for the slow lane");
                            return Ok(to_slow_lane(msg));
                        }
                        // As many as it would have leases free have crossed this second: this one
                        // waits in the endpoint's line, until the slow lane shows how slow it is.
                        tracing::info!("slow endpoint: attempt withdrawn from the delivery queue's batch; waiting in DynamoDB");
                        let new = Health { slow_lane_since: Some(unix_now()), ..health.clone() };
                        return self.withdrawn_to_line(&msg, &endpoint, &new).await;
                    }
                    lease = self.lease_midway(&principal, &endpoint_id, &health).await?;
                    if lease.is_none() {
                        // Over the cap: withdrawn too, and held for its place in the endpoint's line.
                        tracing::info!("slow endpoint at its concurrency; attempt withdrawn, waiting in DynamoDB");
                        let slow = Health { slow_since: Some(unix_now()), ..health.clone() };
                        return self.withdrawn_to_line(&msg, &endpoint, &slow).await;
                    }
                    post.await
                }
            },
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        if let Some((id, until)) = &lease
            && let Err(e) = self.health.release_lease(&principal, &endpoint_id, id, *until, latency_ms).await
        {
            tracing::warn!(error = %e, "could not give the endpoint's lease back; it expires by itself");
        }
        let (verdict, signal) = after(response.status, response.retry_after, attempt, schedule, opened_at, unix_now(), rand::rng().random_range(0.8..=1.2));
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
        tracing::info!(attempt, succeeded, http_status = response.status, latency_ms, error = response.error.as_deref(), "attempt");

        let mut plan = match verdict {
            Verdict::Delivered => Plan::done(Some(settle(DeliveryStatus::Succeeded, Some(record)))),
            Verdict::Gone => {
                tracing::warn!("endpoint answered 410 Gone; disabled");
                self.endpoints.set_status(&principal, &endpoint.id, EndpointStatus::Disabled).await?;
                Plan::done(Some(settle(DeliveryStatus::Failed, Some(record))))
            }
            Verdict::RetryAt(at) => {
                tracing::info!(next_attempt_at = at, "will retry");
                // Written into the state (`ByDue`): the scheduler enqueues it when it is due.
                Plan::done(Some(StateChange::RetryLater { principal, attempt: Attempt { next_retry_at: Some(at), ..record } }))
            }
            Verdict::Exhausted => {
                tracing::warn!("retry schedule exhausted; final failure recorded, message copied to the DLQ");
                Plan { change: Some(settle(DeliveryStatus::Failed, Some(record))), then: Then::DeadLetter("retry schedule exhausted"), signal: None }
            }
        };
        plan.signal = Some((signal, latency_ms));
        Ok(plan)
    }
}

/// A moment from now (unix seconds): 1–3 s, spread, for deliveries that wait in DynamoDB until
/// something is known (or works) again.
fn moment() -> u64 {
    unix_now() + rand::rng().random_range(1..=3)
}

/// Moves the delivery to the slow lane ([`Deliverer::move_to_slow_lane`] sends it).
fn to_slow_lane(msg: DeliveryMessage) -> Plan {
    Plan { change: None, then: Then::SlowLane(msg), signal: None }
}

/// Leaves the delivery pending and unattempted until `until`.
fn hold(msg: &DeliveryMessage, until: u64) -> StateChange {
    StateChange::Hold { principal: msg.principal(), event: msg.event_id, endpoint: msg.endpoint_id, until }
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
