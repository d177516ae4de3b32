//! One SQS batch of 10 deliveries, to 10 receivers that each take 300 ms, handled as
//! `deliver-webhooks` handles it, against the ideal (one receiver's 300 ms: the batch is delivered
//! concurrently); and the DynamoDB requests each delivered message costs.

use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use paygate::store::deliveries::{Attempt, DeliveryStatus, StateChange};
use paygate::store::endpoints::Created;
use paygate::webhook::deliver::RetrySchedule;
use paygate::webhook::endpoints::{EnabledEvents, new_endpoint};
use paygate::webhook::fanout::DeliveryMessage;
use paygate::{AccountId, Mode, Principal};
use paygate_cli::stack::Stack;
use tokio::sync::mpsc;

use crate::measure::{Calls, Receiver, describe, median, ms, publish_payment};
use crate::report::{Row, Target};

const RECEIVERS: usize = 10;
const RECEIVER_DELAY: Duration = Duration::from_millis(300);
const ROUNDS: usize = 9;
/// Batch writes before anything is timed. The benchmark's DynamoDB Local is a fresh JVM: its first
/// transactions run interpreted, 2-5× slower than once compiled, and DynamoDB has no such phase.
const WARMUP_WRITES: usize = 40;

fn message(m: &DeliveryMessage, i: usize) -> SqsMessage {
    let mut s = SqsMessage::default();
    s.message_id = Some(format!("bench-{i}"));
    s.body = Some(serde_json::to_string(m).expect("message serialises"));
    s.attributes.insert("ApproximateReceiveCount".into(), "1".into());
    s
}

pub async fn run(mut stack: Stack) -> anyhow::Result<Vec<Row>> {
    let calls = Calls::install(&mut stack);
    let p = Principal { account: AccountId::generate(), mode: Mode::Test };
    let (seen, mut delivered) = mpsc::unbounded_channel();
    let mut endpoints = Vec::new();
    for _ in 0..RECEIVERS {
        let receiver = Receiver::bind().await?;
        let ep = new_endpoint(Mode::Test, receiver.url.parse()?, EnabledEvents::All, None);
        receiver.serve(ep.secret.expose().to_owned(), RECEIVER_DELAY, seen.clone());
        anyhow::ensure!(stack.endpoints().create(&p, &ep).await? == Created::Created, "the benchmark account has too many endpoints");
        endpoints.push(ep);
    }
    let deliverer = stack.deliverer(RetrySchedule { live: vec![1], test: vec![1] });
    for _ in 0..WARMUP_WRITES {
        settle_all(&stack, &p, &endpoints).await?;
    }
    let mut batches = Vec::new();
    let mut requests = std::collections::BTreeMap::new();
    for round in 0..=ROUNDS {
        let event = publish_payment(&stack, &p, serde_json::json!({"id": "pay_bench", "object": "payment"})).await?;
        let mut batch = SqsEvent::default();
        batch.records = endpoints.iter().enumerate().map(|(i, ep)| message(&DeliveryMessage::new(&p, event.id, ep.id), i)).collect();
        calls.take();
        let start = Instant::now();
        let response = deliverer.handle(batch).await;
        let took = start.elapsed();
        anyhow::ensure!(response.batch_item_failures.is_empty(), "a benchmark delivery failed");
        for _ in 0..RECEIVERS {
            anyhow::ensure!(delivered.recv().await.as_deref() == Some(event.id.to_string().as_str()), "a receiver saw another event");
        }
        // Round 0 warms the connections up.
        if round > 0 {
            batches.push(took);
            for (op, n) in calls.take() {
                *requests.entry(op).or_insert(0) += n;
            }
        }
    }
    // The batch's one write alone; and the one item of it on the Events table, alone: the event's
    // count, whose change DynamoDB Local also writes to the table's stream.
    let mut writes = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..ROUNDS {
        writes.push(settle_all(&stack, &p, &endpoints).await?);
        let event = publish_payment(&stack, &p, serde_json::json!({"id": "pay_bench", "object": "payment"})).await?;
        let change = stack.events().pending_change(&p, event.id, 1).await?;
        let start = Instant::now();
        stack.clients.dynamodb.transact_write_items().transact_items(change).send().await?;
        counts.push(start.elapsed());
    }
    let messages = (ROUNDS * RECEIVERS) as u32;
    let per_message = f64::from(requests.values().sum::<u32>()) / f64::from(messages);
    Ok(vec![
        Row::new(
            "batch of 10 deliveries to 300 ms receivers",
            ms(median(&batches)),
            "ms",
            Some(("ideal (one receiver)", ms(RECEIVER_DELAY))),
            Target::RatioAtMost(1.1),
            format!(
                "median of {ROUNDS} batches through Deliverer::handle, receivers verifying signatures, after {WARMUP_WRITES} \
                 such writes warmed DynamoDB Local up; the batch's one write alone (ten settles and attempts of one event in \
                 one transaction): median {:.1} ms, of which the event's count alone (one item of the stream-enabled Events \
                 table, in a transaction of its own): median {:.1} ms",
                ms(median(&writes)),
                ms(median(&counts))
            ),
        ),
        Row::new(
            "DynamoDB requests per delivered message",
            per_message,
            "requests",
            None,
            Target::AtMost(2.0),
            format!("counted on the wire over {messages} successful deliveries: {}", describe(&requests, messages)),
        ),
        Row::new(
            "DynamoDB requests per delivery, healthy, with the breaker and throttle",
            per_message,
            "requests",
            Some(("one read and one write per batch", 2.0 / RECEIVERS as f64)),
            Target::AboveBaselineAtMost(0.2),
            "the same deliveries: the endpoint's health is read in the batch's one BatchGetItem and written only when it changes; \
             an endpoint with a rate_limit adds one conditional write per batch, a slow one two per attempt (its lease)",
        ),
    ])
}

/// What a batch writes, alone: the ten settles of a new event, with their attempts, in one
/// transaction. How long the write took.
async fn settle_all(stack: &Stack, p: &Principal, endpoints: &[paygate::webhook::endpoints::Endpoint]) -> anyhow::Result<Duration> {
    let event = publish_payment(stack, p, serde_json::json!({"id": "pay_bench", "object": "payment"})).await?;
    let changes: Vec<StateChange> = endpoints
        .iter()
        .map(|ep| StateChange::Settle {
            principal: p.clone(),
            event: event.id,
            endpoint: ep.id,
            status: DeliveryStatus::Succeeded,
            attempt: Some(Attempt {
                event_id: event.id,
                endpoint_id: ep.id,
                attempt: 1,
                succeeded: true,
                http_status: Some(200),
                latency_ms: 300,
                error: None,
                response_body: Some("ok".into()),
                created_at: paygate::ids::unix_now(),
                next_retry_at: None,
            }),
            event_exists: true,
        })
        .collect();
    let start = Instant::now();
    let written = stack.deliveries().apply_all(&changes).await;
    let took = start.elapsed();
    anyhow::ensure!(written.iter().all(|w| matches!(w, Ok(true))), "the batch's write failed");
    Ok(took)
}
