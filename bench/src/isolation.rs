//! Tenant isolation, through the pollers `paygate dev` runs with the deployed defaults (15 s
//! timeout, the default breaker): merchant B's webhook latency while merchant A's 1,000 deliveries
//! time out, against B alone in the same run; the delivery queue's in-flight messages while 1,000
//! deliveries wait for their retries; and how late the scheduler brings a due retry.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use paygate::store::endpoints::Created;
use paygate::webhook::deliver::RetrySchedule;
use paygate::webhook::endpoints::{EnabledEvents, Endpoint, new_endpoint};
use paygate::{AccountId, Mode, Principal};
use paygate_cli::stack::Stack;
use tokio::sync::mpsc;

use crate::measure::{Receiver, publish_payment};
use crate::report::{Row, Target};

/// B's events, alone and while A's time out.
const B_EVENTS: usize = 20;
/// A's deliveries to a dead endpoint; the retries waiting in the in-flight row.
const A_EVENTS: usize = 1_000;
/// Retries whose lateness is measured.
const LATE: usize = 100;

fn principal() -> Principal {
    Principal { account: AccountId::generate(), mode: Mode::Test }
}

/// An endpoint for every event at `receiver`, which answers 200 after `delay` (or never, when
/// `None`: it accepts the connection and keeps it) and reports the event ids it gets on `seen`.
async fn endpoint(stack: &Stack, p: &Principal, delay: Option<Duration>, seen: mpsc::UnboundedSender<String>) -> anyhow::Result<Endpoint> {
    let receiver = Receiver::bind().await?;
    let ep = new_endpoint(Mode::Test, receiver.url.parse()?, EnabledEvents::All, None);
    receiver.serve(ep.secret.expose().to_owned(), delay.unwrap_or(Duration::from_secs(3600)), seen);
    anyhow::ensure!(stack.endpoints().create(p, &ep).await? == Created::Created, "could not create the endpoint");
    Ok(ep)
}

/// A payment event for `p` (`data.object.id` = `id`), then a ring of the pollers' doorbell, as
/// every `paygate dev` publisher does: the stream is read as the events come, as the deployed
/// mapping reads it (four times a second a shard), not in one burst a second. (Without the rings,
/// the last second of A's events, ~150, was fanned out at once just as B's first events were
/// published, and B waited on that one DynamoDB Local.)
async fn publish_rung(stack: &Stack, p: &Principal, id: &str) -> anyhow::Result<paygate::Event> {
    let event = publish_payment(stack, p, serde_json::json!({"id": id, "object": "payment"})).await?;
    paygate_cli::doorbell::ring(&stack.config.events_table);
    Ok(event)
}

/// `n` events for `p`, 16 publishes at a time, each ringing the doorbell ([`publish_rung`]).
async fn publish_many(stack: &Stack, p: &Principal, n: usize) -> anyhow::Result<Vec<paygate::Event>> {
    use futures::StreamExt;
    futures::stream::iter(0..n).map(|_| publish_rung(stack, p, "pay_many")).buffer_unordered(16).collect::<Vec<_>>().await.into_iter().collect()
}

/// How long each of `n` events (published one every 100 ms for `p`) took from before its publish
/// to its arrival on `seen`.
async fn b_latencies(stack: &Stack, p: &Principal, seen: &mut mpsc::UnboundedReceiver<String>, n: usize) -> anyhow::Result<Vec<Duration>> {
    let publish = async {
        let mut sent: Vec<(String, tokio::time::Instant)> = Vec::new();
        for _ in 0..n {
            let at = tokio::time::Instant::now();
            let e = publish_rung(stack, p, "pay_b").await?;
            sent.push((e.id.to_string(), at));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::Ok(sent)
    };
    // Arrivals are stamped as they come, while the publishing goes on.
    let arrive = async {
        let mut arrived: Vec<(String, tokio::time::Instant)> = Vec::new();
        while arrived.len() < n {
            let id = tokio::time::timeout(Duration::from_secs(120), seen.recv()).await?.ok_or_else(|| anyhow::anyhow!("receiver gone"))?;
            arrived.push((id, tokio::time::Instant::now()));
        }
        anyhow::Ok(arrived)
    };
    let (sent, arrived) = tokio::try_join!(publish, arrive)?;
    sent.iter()
        .map(|(id, at)| {
            let (_, came) = arrived.iter().find(|(a, _)| a == id).ok_or_else(|| anyhow::anyhow!("event {id} did not arrive"))?;
            Ok(came.duration_since(*at))
        })
        .collect()
}

pub async fn run(stack: Stack) -> anyhow::Result<Vec<Row>> {
    let pollers = paygate_cli::pollers::start(&stack, stack.deliverer(RetrySchedule::default()), true).await?;
    let (a, b) = (principal(), principal());
    let (b_seen, mut b_got) = mpsc::unbounded_channel();
    endpoint(&stack, &b, Some(Duration::ZERO), b_seen).await?;
    let (a_seen, _a_got) = mpsc::unbounded_channel();
    endpoint(&stack, &a, None, a_seen).await?;
    // Warm up (DynamoDB Local's first requests run interpreted), then B alone.
    b_latencies(&stack, &b, &mut b_got, B_EVENTS).await?;
    let alone = b_latencies(&stack, &b, &mut b_got, B_EVENTS).await?;
    // A's 1,000, then B's, while A's first attempts hang.
    publish_many(&stack, &a, A_EVENTS).await?;
    let with_a = b_latencies(&stack, &b, &mut b_got, B_EVENTS).await?;
    let pct = |v: &[Duration], p: f64| crate::measure::ms(crate::measure::percentile(v, p));
    drop(pollers);

    let (in_flight, waiting) = in_flight_while_waiting().await?;
    let (late_p50, late_p99) = lateness().await?;
    let rows = vec![
        Row::new(
            "B's webhook p50 while A's 1,000 time out",
            pct(&with_a, 0.5),
            "ms",
            Some(("B alone, p50", pct(&alone, 0.5))),
            Target::RatioAtMost(1.5),
            format!(
                "{B_EVENTS} B events 100 ms apart from publish to receiver, published right after A's {A_EVENTS} to an endpoint that never answers (15 s timeout, default breaker), through paygate dev's pollers"
            ),
        ),
        Row::new(
            "B's webhook p90 while A's 1,000 time out",
            pct(&with_a, 0.9),
            "ms",
            Some(("B alone, p90", pct(&alone, 0.9))),
            Target::RatioAtMost(1.5),
            format!("as above; B's events in publishing order: {:?} ms", with_a.iter().map(Duration::as_millis).collect::<Vec<_>>()),
        ),
        Row::new(
            "in-flight messages per 1,000 waiting retries",
            in_flight * 1000.0 / waiting.max(1.0),
            "messages",
            None,
            Target::AtMost(10.0),
            format!(
                "ApproximateNumberOfMessagesNotVisible once {waiting:.0} deliveries failing at once (HTTP 500) all wait for their retries (the default test schedule: 5 minutes) or for the breaker"
            ),
        ),
        Row::new(
            "retry lateness p99 (attempt − due time)",
            late_p99,
            "ms",
            Some(("p50", late_p50)),
            Target::AtMost(5_000.0),
            format!(
                "{LATE} deliveries failing once with a 3 s retry, brought back by the scheduler (one sweep a second); breaker off, so every retry is the scheduler's"
            ),
        ),
    ];
    Ok(rows)
}

/// 1,000 deliveries that fail fast; once every one waits, the queue's in-flight messages.
async fn in_flight_while_waiting() -> anyhow::Result<(f64, f64)> {
    let stack = crate::stack().await?;
    let pollers = paygate_cli::pollers::start(&stack, stack.deliverer(RetrySchedule::default()), true).await?;
    let p = principal();
    let receiver = crate::measure::FailingReceiver::start(u64::MAX).await?;
    let ep = new_endpoint(Mode::Test, receiver.url.parse()?, EnabledEvents::All, None);
    anyhow::ensure!(stack.endpoints().create(&p, &ep).await? == Created::Created, "could not create the endpoint");
    let events = publish_many(&stack, &p, A_EVENTS).await?;
    // Every delivery attempted or held: its state has a next attempt in the future.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let mut waiting = 0;
        for e in &events {
            if stack.deliveries().state(&p, e.id, &ep.id).await?.is_some_and(|s| s.next_attempt_at > 0) {
                waiting += 1;
            }
        }
        if waiting == events.len() || tokio::time::Instant::now() > deadline {
            let out = stack
                .clients
                .sqs
                .get_queue_attributes()
                .queue_url(&stack.config.delivery_queue_url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await?;
            let n =
                out.attributes.unwrap_or_default().get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            drop(pollers);
            return Ok((n, waiting as f64));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `LATE` deliveries that fail once and are retried 3 s later: how late each retry came, p50 and
/// p99 in ms.
async fn lateness() -> anyhow::Result<(f64, f64)> {
    let stack = crate::stack().await?;
    let mut deliverer = stack.deliverer(RetrySchedule { live: vec![3], test: vec![3] });
    deliverer.breaker.threshold = u32::MAX;
    let pollers = paygate_cli::pollers::start(&stack, deliverer, true).await?;
    let p = principal();
    let receiver = crate::measure::FailingReceiver::start(LATE as u64).await?;
    let ep = new_endpoint(Mode::Test, receiver.url.parse()?, EnabledEvents::All, None);
    anyhow::ensure!(stack.endpoints().create(&p, &ep).await? == Created::Created, "could not create the endpoint");
    let events = publish_many(&stack, &p, LATE).await?;
    let mut late = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for e in &events {
        loop {
            let attempts = stack.deliveries().attempts(&p, e.id).await?;
            if let [first, second, ..] = attempts.as_slice() {
                let due_ms = first.next_retry_at.unwrap_or_default() * 1000;
                late.push(Duration::from_millis(receiver.arrival_ms(e.id, 2).unwrap_or(second.created_at * 1000).saturating_sub(due_ms)));
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the retries did not all come");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    drop(pollers);
    let pct = |p: f64| crate::measure::ms(crate::measure::percentile(&late, p));
    Ok((pct(0.5), pct(0.99)))
}
