//! Tenant isolation on the real local servers: waiting retries live in DynamoDB, not as in-flight
//! SQS messages; one merchant's dead endpoint does not delay another's webhooks; an endpoint's
//! breaker opens, probes and closes; `rate_limit`, `429` + `Retry-After` and the concurrency cap
//! hold; an endpoint failing for too long is disabled. Every test runs `paygate dev`'s pollers and scheduler on private tables and
//! queues, with real receivers on 127.0.0.1. Nothing is timed: conditions are counted, and waited
//! on with generous bounds.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use futures::StreamExt;
use integration_tests::receiver::{Answer, Receiver};
use integration_tests::{Api, account, eventually, isolated_stack, publish, test_principal};
use paygate::model::health::{HealthUpdate, Mark};
use paygate::store::deliveries::DeliveryStatus;
use paygate::store::endpoints::Created;
use paygate::webhook::breaker::BreakerConfig;
use paygate::webhook::deliver::{Deliverer, RetrySchedule};
use paygate::webhook::endpoints::{EnabledEvents, Endpoint, new_endpoint};
use paygate::webhook::fanout::DeliveryMessage;
use paygate::webhook::ssrf::WebhookClient;
use paygate::{EventType, Principal};
use paygate_cli::pollers;
use paygate_cli::stack::Stack;

fn deliverer(stack: &Stack, schedule: &[u64]) -> Deliverer {
    let mut d = stack.deliverer(RetrySchedule { live: schedule.to_vec(), test: schedule.to_vec() });
    d.client = WebhookClient::with_timeout(stack.policy, Duration::from_secs(5));
    d
}

/// An endpoint for every event type at the receiver (not yet stored), which expects its secret.
fn endpoint_for(p: &Principal, r: &Receiver) -> Endpoint {
    let ep = new_endpoint(p.mode, r.url.parse().unwrap(), EnabledEvents::All, None);
    r.expect_secrets(&[ep.secret.expose()]);
    ep
}

async fn endpoint(stack: &Stack, p: &Principal, r: &Receiver) -> Endpoint {
    let ep = endpoint_for(p, r);
    assert_eq!(stack.endpoints().create(p, &ep).await.unwrap(), Created::Created);
    ep
}

/// The delivery queue's (visible, in flight) messages.
async fn queue_depth(stack: &Stack) -> (u64, u64) {
    let out = stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.config.delivery_queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes.unwrap_or_default();
    let n = |a: QueueAttributeName| attrs.get(&a).and_then(|v| v.parse().ok()).unwrap_or(0);
    (n(QueueAttributeName::ApproximateNumberOfMessages), n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

/// 200 deliveries whose first attempts fail fast, with retries 30 s away: once the attempts are
/// recorded, their messages are gone from the queue (a retry is a DynamoDB item until it is due),
/// `pending_webhooks` still counts every one, and when the receiver answers again they are retried
/// by the scheduler and delivered.
#[tokio::test]
async fn waiting_retries_are_not_in_flight_in_the_queue() {
    const EVENTS: usize = 200;
    let stack = isolated_stack().await;
    // Every delivery is attempted: this test is about retries, not the breaker (which would hold
    // most of them, unattempted, in DynamoDB too).
    let mut d = deliverer(&stack, &[30, 30, 30]);
    d.breaker.threshold = u32::MAX;
    let _pollers = pollers::start(&stack, d, true).await.unwrap();
    let p = test_principal(&account(&stack).await);
    let receiver = Receiver::start(vec![Answer::Status(500); EVENTS]).await;
    let ep = endpoint(&stack, &p, &receiver).await;
    let mut events = Vec::new();
    for i in 0..EVENTS {
        events.push(publish(&stack, &p, EventType::PaymentSucceeded, serde_json::json!({"id": format!("pay_{i}"), "object": "payment"})).await);
    }

    // Every first attempt made and recorded (the state counts it).
    let recorded = eventually(Duration::from_secs(120), || async {
        for e in &events {
            let state = stack.deliveries().state(&p, e.id, &ep.id).await.unwrap()?;
            if state.attempts == 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(recorded.is_some(), "every first attempt was recorded ({} requests received)", receiver.received().len());
    assert_eq!(receiver.received().len(), EVENTS, "one attempt each so far");
    let (visible, in_flight) = queue_depth(&stack).await;
    println!("after {EVENTS} failed first attempts: {visible} messages visible, {in_flight} in flight");
    assert!(in_flight <= (EVENTS / 10) as u64, "{in_flight} messages in flight for {EVENTS} waiting retries");
    assert_eq!(visible, 0, "no message waits in the queue for its retry");
    for e in &events {
        assert_eq!(stack.events().get(&p, e.id).await.unwrap().unwrap().pending_webhooks, 1, "still pending: {}", e.id);
        assert_eq!(stack.deliveries().status(&p, e.id, &ep.id).await.unwrap(), Some(DeliveryStatus::Pending));
    }

    // The receiver answers 200 from now on: every retry comes from the scheduler, and succeeds.
    let delivered = eventually(Duration::from_secs(120), || async {
        for e in &events {
            if stack.deliveries().status(&p, e.id, &ep.id).await.unwrap() != Some(DeliveryStatus::Succeeded) {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(delivered.is_some(), "every retry delivered ({} requests received)", receiver.received().len());
    for e in &events {
        assert_eq!(stack.events().get(&p, e.id).await.unwrap().unwrap().pending_webhooks, 0);
    }
    assert!(receiver.received().iter().all(|r| r.verified));
}

/// A deliverer whose breaker works on the scale of a test: open after `threshold` failures, probes
/// 1 s apart at first, 4 s at most.
fn quick_breaker(stack: &Stack, schedule: &[u64], threshold: u32) -> Deliverer {
    let mut d = deliverer(stack, schedule);
    d.breaker = BreakerConfig { threshold, first_probe: 1, max_probe: 4, ..BreakerConfig::default() };
    d
}

/// `n` events for `p`, 8 publishes at a time. A publish that fails (DynamoDB Local timing out
/// under the load of these tests on a small machine) is tried again, as a producer would.
async fn publish_many(stack: &Stack, p: &Principal, n: usize) -> Vec<paygate::Event> {
    use paygate::ingest::{DataObject, IngestData, IngestRequest};
    tokio::time::sleep(Duration::from_millis(2)).await;
    let events: Vec<paygate::Event> = futures::stream::iter(0..n)
        .map(|i| async move {
            let input = || IngestRequest {
                account_id: p.account.clone(),
                mode: p.mode,
                event_type: EventType::PaymentSucceeded,
                data: IngestData { object: DataObject::parse(serde_json::json!({"id": format!("pay_{i}"), "object": "payment"})).unwrap() },
                request: Default::default(),
                idempotency_key: None,
            };
            for _ in 0..5 {
                match stack.publisher().publish(input()).await {
                    Ok(e) => return e,
                    Err(e) => {
                        eprintln!("publish failed ({e}); trying again");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            panic!("five publishes failed");
        })
        .buffer_unordered(8)
        .collect()
        .await;
    paygate_cli::doorbell::ring(&stack.config.events_table);
    events
}

/// Waits (bounded) until every event's delivery to `ep` has `status`.
async fn all_become(stack: &Stack, p: &Principal, events: &[paygate::Event], ep: &Endpoint, status: DeliveryStatus, bound: Duration) -> bool {
    eventually(bound, || async {
        for e in events {
            if stack.deliveries().status(p, e.id, &ep.id).await.unwrap() != Some(status) {
                return None;
            }
        }
        Some(())
    })
    .await
    .is_some()
}

fn percentile(mut v: Vec<u64>, p: usize) -> u64 {
    v.sort_unstable();
    v.get((v.len() * p / 100).min(v.len().saturating_sub(1))).copied().unwrap_or_default()
}

/// B's milliseconds from publishing to the receiver, for each of `events`.
fn latencies(r: &Receiver, published: &[(paygate::EventId, u64)]) -> Vec<u64> {
    let got = r.received();
    published.iter().filter_map(|(id, at)| got.iter().find(|g| g.event.as_ref().is_some_and(|e| e.id == *id)).map(|g| g.at_ms.saturating_sub(*at))).collect()
}

/// Account A's endpoint accepts connections and never answers; account B's answers at once. With
/// A's 600 events in the queue, B's events are all delivered while A's backlog still waits, and
/// once A's breaker is open A's endpoint gets only its probes. B's figures are printed, not
/// asserted: what A's first attempts cost B is at most the 0.5 s after which the delivery queue's
/// batches withdraw them.
#[tokio::test]
async fn a_dead_endpoint_does_not_delay_another_merchant() {
    let stack = isolated_stack().await;
    let _pollers = pollers::start(&stack, quick_breaker(&stack, &[60, 60], 5), true).await.unwrap();
    let (a, b) = (test_principal(&account(&stack).await), test_principal(&account(&stack).await));
    let dead = Receiver::start(vec![Answer::Slow(Duration::from_secs(3600)); 100_000]).await;
    let fast = Receiver::start(vec![]).await;
    let a_ep = endpoint(&stack, &a, &dead).await;
    let b_ep = endpoint(&stack, &b, &fast).await;

    // B alone first: its figures, for comparison (printed, not asserted).
    let mut alone = Vec::new();
    for _ in 0..12 {
        let at = paygate::ids::unix_now_ms();
        let [e] = publish_many(&stack, &b, 1).await.try_into().unwrap();
        alone.push((e.id, at));
        fast.wait_for(alone.len()).await;
    }
    let alone_ms = latencies(&fast, &alone);

    let publishing = std::time::Instant::now();
    let a_events = publish_many(&stack, &a, 600).await;
    let (published_in, a_started) = (publishing.elapsed(), dead.started());
    let mut with_a = Vec::new();
    let mut b_events = Vec::new();
    for _ in 0..12 {
        let at = paygate::ids::unix_now_ms();
        let [e] = publish_many(&stack, &b, 1).await.try_into().unwrap();
        with_a.push((e.id, at));
        b_events.push(e);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(all_become(&stack, &b, &b_events, &b_ep, DeliveryStatus::Succeeded, Duration::from_secs(120)).await, "B's events all delivered");
    let mut a_pending = 0;
    for e in &a_events {
        a_pending += stack.events().get(&a, e.id).await.unwrap().unwrap().pending_webhooks;
    }
    let with_a_ms = latencies(&fast, &with_a);
    println!(
        "A's 600 published in {} ms, {a_started} of their attempts begun by then; B's events while A's time out, in publishing order (ms): {with_a_ms:?}",
        published_in.as_millis()
    );
    println!(
        "B alone: p50 {} ms, p90 {} ms; B while A's 600 time out: p50 {} ms, p90 {} ms; A's deliveries still pending {a_pending}, A's attempts so far {}",
        percentile(alone_ms.clone(), 50),
        percentile(alone_ms, 90),
        percentile(with_a_ms.clone(), 50),
        percentile(with_a_ms, 90),
        dead.started()
    );
    assert!(a_pending >= 500, "A's backlog was still there while B's events arrived ({a_pending} pending)");
    // A's breaker opens once five of its attempts have timed out (5 s each); B may well have been
    // served before that, so wait for it (bounded) rather than expect it already.
    let open = eventually(Duration::from_secs(60), || async { stack.health().get(&a, &a_ep.id).await.unwrap().is_open().then_some(()) }).await;
    assert!(open.is_some(), "A's breaker opened within 60 s ({} attempts so far)", dead.started());

    // From now on A's endpoint gets its probes only: one per probe interval (1 s doubling to 4 s),
    // at most 8 in 15 s of watching, where without the breaker it would get an attempt per event.
    let before = dead.started();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let probes = dead.started() - before;
    println!("A's attempts in 15 s with its breaker open: {probes}");
    assert!(probes <= 8, "{probes} attempts at a dead endpoint whose breaker is open");
    assert!(dead.started() < a_events.len(), "not every A event was tried: {}", dead.started());
}

/// The endpoint fails, its breaker opens, the probes are spaced, the endpoint recovers and the
/// breaker closes; then the backlog drains at the endpoint's `rate_limit`, counted by the receiver.
#[tokio::test]
async fn the_breaker_opens_probes_closes_and_the_backlog_drains_at_the_rate_limit() {
    const RATE: u32 = 10;
    const EVENTS: usize = 120;
    if std::env::var_os("PAYGATE_TEST_LOGS").is_some() {
        paygate::logging::init();
    }
    let stack = isolated_stack().await;
    let _pollers = pollers::start(&stack, quick_breaker(&stack, &[5, 5, 5], 3), true).await.unwrap();
    let p = test_principal(&account(&stack).await);
    let receiver = Receiver::start(vec![Answer::Status(503); 100_000]).await;
    let ep = Endpoint { rate_limit: Some(RATE), ..endpoint_for(&p, &receiver) };
    assert_eq!(stack.endpoints().create(&p, &ep).await.unwrap(), Created::Created);
    let events = publish_many(&stack, &p, EVENTS).await;

    // It opens, and probes: two probes claimed (the interval doubled twice, 1 s → 4 s).
    let probing = eventually(Duration::from_secs(60), || async {
        let h = stack.health().get(&p, &ep.id).await.unwrap();
        (h.is_open() && h.probe_interval >= 4).then_some(())
    })
    .await;
    assert!(probing.is_some(), "the breaker opened and probed: {:?}", stack.health().get(&p, &ep.id).await.unwrap());
    let failed_so_far = receiver.started();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let probes = receiver.started() - failed_so_far;
    assert!(probes <= 2, "one probe per interval (4 s now) while open, not the backlog: {probes} in 3 s");
    assert!(failed_so_far < EVENTS / 2, "the breaker held most of the backlog: {failed_so_far} attempts");

    // It answers again: the next probe closes the breaker and the backlog drains at its rate.
    receiver.recover();
    let recovered_at = paygate::ids::unix_now_ms();
    let delivered = all_become(&stack, &p, &events, &ep, DeliveryStatus::Succeeded, Duration::from_secs(180)).await;
    let health = stack.health().get(&p, &ep.id).await.unwrap();
    let mut states = std::collections::BTreeMap::new();
    for e in &events {
        let s = stack.deliveries().state(&p, e.id, &ep.id).await.unwrap().unwrap();
        *states.entry(format!("{:?} (attempts {})", s.status, s.attempts)).or_insert(0) += 1;
    }
    assert!(delivered, "the backlog was delivered: {states:?}, {health:?}, now {}", paygate::ids::unix_now());
    assert!(!health.is_open() && health.consecutive_failures == 0, "closed again: {health:?}");
    let got = receiver.received();
    assert_eq!(got.iter().filter(|r| r.status == 200).count(), EVENTS, "each event delivered once");
    assert!(got.iter().all(|r| r.verified));
    // The rate limit: never more than 10 % over it in any 10 s window (the sends are spaced by
    // 1000 / RATE ms; arrival times add the network's jitter).
    let times: Vec<u64> = got.iter().map(|r| r.at_ms).filter(|t| *t >= recovered_at).collect();
    let most = times.iter().map(|t| times.iter().filter(|u| **u >= *t && **u < t + 10_000).count()).max().unwrap();
    let span = times.iter().max().unwrap() - times.iter().min().unwrap();
    println!("backlog of {} drained in {span} ms at rate_limit {RATE}/s; most in any 10 s window: {most}", times.len());
    assert!(most <= (RATE as usize * 10) * 11 / 10, "{most} deliveries in 10 s at {RATE}/s");
}

/// A `429` with `Retry-After` pauses that endpoint (nothing else is sent to it until then), not
/// the queue: another endpoint of the same account keeps receiving.
#[tokio::test]
async fn a_429_with_retry_after_slows_that_endpoint_down() {
    let stack = isolated_stack().await;
    let _pollers = pollers::start(&stack, quick_breaker(&stack, &[1, 1, 1], 5), true).await.unwrap();
    let p = test_principal(&account(&stack).await);
    let throttled = Receiver::start(vec![Answer::TooMany(4)]).await;
    let other = Receiver::start(vec![]).await;
    let ep = endpoint(&stack, &p, &throttled).await;
    let other_ep = endpoint(&stack, &p, &other).await;
    let first = publish(&stack, &p, EventType::PaymentSucceeded, serde_json::json!({"id": "pay_first", "object": "payment"})).await;
    let paused = eventually(Duration::from_secs(30), || async { stack.health().get(&p, &ep.id).await.unwrap().paused_until })
        .await
        .expect("the 429 paused the endpoint");
    let rest = publish_many(&stack, &p, 10).await;
    assert!(all_become(&stack, &p, &rest, &other_ep, DeliveryStatus::Succeeded, Duration::from_secs(60)).await, "the other endpoint is not slowed");
    let all: Vec<paygate::Event> = rest.iter().cloned().chain([first]).collect();
    assert!(all_become(&stack, &p, &all, &ep, DeliveryStatus::Succeeded, Duration::from_secs(60)).await, "then the paused endpoint gets everything");
    let got = throttled.received();
    assert_eq!(got[0].status, 429);
    let during: Vec<u64> = got[1..].iter().map(|r| r.at_ms).filter(|at| *at < paused * 1000).collect();
    assert!(during.is_empty(), "nothing was sent during the pause (until {paused}): {during:?}");
}

/// An endpoint failing continuously for `disable_after` (5 days; 3 s here) is disabled with a
/// reason; enabling it again through the API resets its breaker.
#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_disabled_and_enabling_it_resets_the_breaker() {
    let stack = isolated_stack().await;
    let mut d = quick_breaker(&stack, &[1, 1, 1, 1, 1, 1, 1, 1], 2);
    d.breaker.disable_after = 3;
    let _pollers = pollers::start(&stack, d, true).await.unwrap();
    let a = account(&stack).await;
    let p = test_principal(&a);
    let receiver = Receiver::start(vec![Answer::Status(500); 100_000]).await;
    let ep = endpoint(&stack, &p, &receiver).await;
    publish_many(&stack, &p, 5).await;
    let api = Api::start(&stack).await;
    let path = format!("/v1/webhook_endpoints/{}", ep.id);
    let key = a.test_key.expose();
    let disabled = eventually(Duration::from_secs(90), || async {
        let r = api.get(&path, Some(key)).await;
        (r.body["status"] == "disabled").then_some(r.body)
    })
    .await
    .expect("disabled by its breaker");
    assert!(disabled["health"]["disabled_reason"].as_str().unwrap().starts_with("failing since"), "{disabled}");
    assert_eq!(disabled["health"]["state"], "open");

    let enabled = api.post(&path, key, "status=enabled", None).await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    assert_eq!(enabled.body["health"]["state"], "closed");
    assert_eq!(enabled.body["health"]["consecutive_failures"], 0);
    assert_eq!(enabled.body["health"]["disabled_reason"], serde_json::Value::Null);
    assert_eq!((&enabled.body["health"]["slow"], &enabled.body["health"]["slow_lane"]), (&serde_json::json!(false), &serde_json::json!(false)));
}

/// A slow endpoint (200 after 2.5 s) with a backlog holds at most `max_concurrency` attempts at
/// once; the rest wait in DynamoDB without holding a delivery slot, and all are delivered.
#[tokio::test]
async fn a_slow_endpoint_holds_at_most_its_concurrency() {
    const CAP: u32 = 3;
    let stack = isolated_stack().await;
    let mut d = quick_breaker(&stack, &[5, 5, 5], 5);
    d.breaker.max_concurrency = CAP;
    let _pollers = pollers::start(&stack, d, true).await.unwrap();
    let p = test_principal(&account(&stack).await);
    let slow = Receiver::start(vec![Answer::Slow(Duration::from_millis(2_500)); 100_000]).await;
    let ep = endpoint(&stack, &p, &slow).await;
    // The first attempts find it slow.
    let first = publish_many(&stack, &p, 2).await;
    assert!(all_become(&stack, &p, &first, &ep, DeliveryStatus::Succeeded, Duration::from_secs(60)).await);
    assert!(stack.health().get(&p, &ep.id).await.unwrap().slow_since.is_some(), "marked slow");
    slow.reset_max_in_flight();
    let backlog = publish_many(&stack, &p, 30).await;
    assert!(all_become(&stack, &p, &backlog, &ep, DeliveryStatus::Succeeded, Duration::from_secs(180)).await, "the backlog was delivered");
    println!("most attempts in flight at once at a slow endpoint with a cap of {CAP}: {}", slow.max_in_flight());
    assert!(slow.max_in_flight() <= CAP as usize, "{} in flight", slow.max_in_flight());
    assert!(slow.max_in_flight() >= 2, "and it was used");
}

/// What the two lanes' tests start from: a fresh stack, a deliverer with a quick breaker, the two
/// queues' URLs, and a merchant's endpoint at a receiver answering `script`.
struct Lanes {
    stack: Stack,
    d: Deliverer,
    main: String,
    slow_lane: String,
    p: Principal,
    receiver: Receiver,
    ep: Endpoint,
}

async fn lanes(script: Vec<Answer>) -> Lanes {
    let stack = isolated_stack().await;
    let d = quick_breaker(&stack, &[5, 5, 5], 5);
    let (main, slow_lane) = (stack.config.delivery_queue_url.clone(), stack.config.slow_delivery_queue_url.clone());
    let p = test_principal(&account(&stack).await);
    let receiver = Receiver::start(script).await;
    let ep = endpoint(&stack, &p, &receiver).await;
    Lanes { stack, d, main, slow_lane, p, receiver, ep }
}

/// The delivery messages waiting in a queue (received, then deleted).
async fn take_messages(stack: &Stack, queue_url: &str) -> Vec<DeliveryMessage> {
    let mut got = Vec::new();
    for _ in 0..3 {
        let out = stack.clients.sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
        for m in out.messages() {
            got.push(serde_json::from_str(m.body().unwrap()).unwrap());
            stack.clients.sqs.delete_message().queue_url(queue_url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    got
}

/// Deployed, an attempt holds its batch (one of the mapping's concurrent invocations) until it
/// ends. So the delivery queue's batches never hold on to a slow endpoint: the attempt that finds
/// it slow is withdrawn after 0.5 s and the delivery moved to the slow lane, and from then on the
/// endpoint's deliveries are moved there without an attempt. The slow lane's batch attempts them,
/// finds the endpoint slow (3 s) and goes on with a lease each, and they are delivered.
#[tokio::test]
async fn a_slow_endpoints_attempts_are_made_from_the_slow_lane_only() {
    let Lanes { stack, d, main, slow_lane, p, receiver: slow, ep } = lanes(vec![Answer::Slow(Duration::from_millis(3_000)); 100]).await;
    let events = publish_many(&stack, &p, 2).await;
    let [first, second] = [0, 1].map(|i| DeliveryMessage::new(&p, events[i].id, ep.id));

    // Not known slow yet: attempted, withdrawn when it turns out slow, moved.
    let response = d.handle(integration_tests::sqs_batch(&main, std::slice::from_ref(&first))).await;
    assert!(response.batch_item_failures.is_empty(), "acknowledged: {response:?}");
    assert_eq!(slow.started(), 1);
    let health = stack.health().get(&p, &ep.id).await.unwrap();
    assert!(health.slow_lane_since.is_some() && health.slow_since.is_none(), "in the slow lane, not known slow yet: {health:?}");
    assert_eq!(stack.deliveries().status(&p, first.event_id, &ep.id).await.unwrap(), Some(DeliveryStatus::Pending), "withdrawn, not counted");
    assert_eq!(take_messages(&stack, &slow_lane).await, std::slice::from_ref(&first), "moved to the slow lane");

    // In the slow lane: moved without an attempt.
    let response = d.handle(integration_tests::sqs_batch(&main, std::slice::from_ref(&second))).await;
    assert!(response.batch_item_failures.is_empty(), "acknowledged: {response:?}");
    assert_eq!(slow.started(), 1, "no attempt from the delivery queue's batch");
    assert_eq!(take_messages(&stack, &slow_lane).await, std::slice::from_ref(&second), "moved to the slow lane");

    // The slow lane attempts them, with leases, to the end.
    let response = d.handle(integration_tests::sqs_batch(&slow_lane, &[first.clone(), second.clone()])).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(slow.started(), 3);
    for m in [&first, &second] {
        assert_eq!(stack.deliveries().status(&p, m.event_id, &ep.id).await.unwrap(), Some(DeliveryStatus::Succeeded));
    }
    let health = stack.health().get(&p, &ep.id).await.unwrap();
    assert!(health.slow_since.is_some(), "marked slow by the slow lane's attempts");
    assert!(health.leases.is_empty(), "the leases were given back");
}

/// An endpoint answering in about a second (slower than the delivery queue's batches wait, faster
/// than a slow endpoint) goes through the slow lane without leases, and comes back to the delivery
/// queue once its attempts there take under 250 ms.
#[tokio::test]
async fn an_endpoint_answering_in_a_second_goes_through_the_slow_lane_until_it_is_fast_again() {
    let Lanes { stack, d, main, slow_lane, p, receiver, ep } = lanes(vec![Answer::Slow(Duration::from_millis(1_000)); 2]).await;
    let events = publish_many(&stack, &p, 3).await;
    let [a, b, c] = [0, 1, 2].map(|i| DeliveryMessage::new(&p, events[i].id, ep.id));
    let lane = || async { stack.health().get(&p, &ep.id).await.unwrap() };

    // Withdrawn after 0.5 s, moved.
    assert!(d.handle(integration_tests::sqs_batch(&main, std::slice::from_ref(&a))).await.batch_item_failures.is_empty());
    assert_eq!(take_messages(&stack, &slow_lane).await, std::slice::from_ref(&a), "moved to the slow lane");
    assert!(lane().await.slow_lane_since.is_some(), "in the slow lane");
    // Made from the slow lane, a second long: delivered without a lease, not marked slow.
    assert!(d.handle(integration_tests::sqs_batch(&slow_lane, std::slice::from_ref(&a))).await.batch_item_failures.is_empty());
    assert_eq!(stack.deliveries().status(&p, a.event_id, &ep.id).await.unwrap(), Some(DeliveryStatus::Succeeded));
    let health = lane().await;
    assert!(health.slow_lane_since.is_some() && health.slow_since.is_none() && health.leases.is_empty(), "{health:?}");
    assert_eq!(receiver.started(), 2);

    // Still in the slow lane: moved without an attempt; made there, at once this time.
    assert!(d.handle(integration_tests::sqs_batch(&main, std::slice::from_ref(&b))).await.batch_item_failures.is_empty());
    assert_eq!(receiver.started(), 2, "no attempt from the delivery queue's batch");
    assert_eq!(take_messages(&stack, &slow_lane).await, std::slice::from_ref(&b));
    assert!(d.handle(integration_tests::sqs_batch(&slow_lane, std::slice::from_ref(&b))).await.batch_item_failures.is_empty());
    assert!(lane().await.slow_lane_since.is_none(), "fast again: back to the delivery queue");

    // Attempted from the delivery queue again.
    assert!(d.handle(integration_tests::sqs_batch(&main, std::slice::from_ref(&c))).await.batch_item_failures.is_empty());
    assert_eq!(receiver.started(), 4);
    assert_eq!(stack.deliveries().status(&p, c.event_id, &ep.id).await.unwrap(), Some(DeliveryStatus::Succeeded));
    assert!(take_messages(&stack, &slow_lane).await.is_empty());
}

/// `n` deliveries to an endpoint marked `mark`, with `taken` of its 10 leases taken, through one
/// batch of the delivery queue: how many crossed to the slow lane, and how many wait in DynamoDB
/// (pending, their state changed). The batch makes no attempt.
async fn cross(mark: Mark, taken: usize, n: usize) -> (usize, usize) {
    let Lanes { stack, d, main, slow_lane, p, receiver, ep } = lanes(vec![Answer::Slow(Duration::from_millis(2_500)); 10]).await;
    stack.health().mark(&p, &ep.id, mark).await.unwrap();
    let now_ms = paygate::ids::unix_now_ms();
    for lease in 0..taken {
        assert!(stack.health().acquire_lease(&p, &ep.id, &lease.to_string(), now_ms + 60_000, now_ms).await.unwrap());
    }
    let events = publish_many(&stack, &p, n).await;
    let deliveries: Vec<_> = events.iter().map(|e| DeliveryMessage::new(&p, e.id, ep.id)).collect();
    let state = |e: paygate::EventId| {
        let stack = &stack;
        let (p, ep) = (&p, ep.id);
        async move { stack.deliveries().state(p, e, &ep).await.unwrap().unwrap() }
    };
    let mut before = Vec::new();
    for e in &events {
        before.push(state(e.id).await);
    }
    let response = d.handle(integration_tests::sqs_batch(&main, &deliveries)).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(receiver.started(), 0, "no attempt from the delivery queue's batch");
    let crossed = take_messages(&stack, &slow_lane).await.len();
    let mut waiting = 0;
    for (e, was) in events.iter().zip(before) {
        let now = state(e.id).await;
        assert_eq!(now.status, DeliveryStatus::Pending);
        waiting += usize::from(now != was);
    }
    (crossed, waiting)
}

/// From the delivery queue, a slow endpoint's deliveries cross to the slow lane only as many as it
/// has leases free: with 8 of its 10 taken, 2 of 5 cross and 3 wait in its line in DynamoDB, so a
/// dead endpoint's backlog does not all cross only to find no lease.
#[tokio::test]
async fn deliveries_cross_to_the_slow_lane_only_as_many_as_leases_are_free() {
    assert_eq!(cross(Mark::Slow, 8, 5).await, (2, 3));
}

/// An endpoint new in the slow lane (an attempt took 0.5 s a moment ago) may not answer at all:
/// until the slow lane has shown whether it does, its deliveries cross only as many as it would
/// have leases free (10 of 12), and the others wait a moment in DynamoDB, so that a dead
/// endpoint's backlog does not all cross, and all get a request there, before it is known slow.
#[tokio::test]
async fn an_endpoint_new_in_the_slow_lane_crosses_only_as_many_as_it_would_have_leases() {
    assert_eq!(cross(Mark::SlowLane, 0, 12).await, (10, 2));
}

/// A slow endpoint whose breaker is open is probed from the slow lane: the delivery queue's batch
/// moves the delivery due for the probe without claiming the probe, and the slow lane's batch
/// claims it, probes, and the endpoint's breaker closes.
#[tokio::test]
async fn a_slow_endpoint_is_probed_from_the_slow_lane() {
    let Lanes { stack, d, main, slow_lane, p, receiver: slow, ep } = lanes(vec![Answer::Slow(Duration::from_millis(2_500)); 10]).await;
    let now = paygate::ids::unix_now();
    let open = HealthUpdate { failures: 5, open: Some((now - 1, 1)), slow: Some(true), ..Default::default() };
    stack.health().record(&p, &ep.id, &open).await.unwrap();
    let [event] = publish_many(&stack, &p, 1).await.try_into().unwrap();
    let delivery = DeliveryMessage::new(&p, event.id, ep.id);

    let response = d.handle(integration_tests::sqs_batch(&main, std::slice::from_ref(&delivery))).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(slow.started(), 0, "no probe from the delivery queue's batch");
    assert_eq!(stack.health().get(&p, &ep.id).await.unwrap().next_probe_at, Some(now - 1), "the probe not claimed");
    assert_eq!(take_messages(&stack, &slow_lane).await, std::slice::from_ref(&delivery), "moved to the slow lane");

    let response = d.handle(integration_tests::sqs_batch(&slow_lane, std::slice::from_ref(&delivery))).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(slow.started(), 1, "the probe");
    assert_eq!(stack.deliveries().status(&p, event.id, &ep.id).await.unwrap(), Some(DeliveryStatus::Succeeded));
    assert!(!stack.health().get(&p, &ep.id).await.unwrap().is_open(), "the breaker closed");
}

/// Every delivery message carries its tenant, `{account}#{mode}`, as `MessageGroupId` (what makes
/// the standard queue an SQS fair queue in AWS); the local SQS server accepts and returns it.
#[tokio::test]
async fn delivery_messages_carry_their_tenant_as_message_group_id() {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let stack = isolated_stack().await;
    let (a, b) = (test_principal(&account(&stack).await), test_principal(&account(&stack).await));
    let r = Receiver::start(vec![]).await;
    let mut expected = Vec::new();
    for p in [&a, &b] {
        endpoint(&stack, p, &r).await;
        let e = publish(&stack, p, EventType::PaymentSucceeded, serde_json::json!({"id": "pay_1", "object": "payment"})).await;
        assert_eq!(stack.fanout().fan_out(p, e.id).await.unwrap(), 1);
        expected.push(p.partition());
    }
    let out = stack
        .clients
        .sqs
        .receive_message()
        .queue_url(&stack.config.delivery_queue_url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .send()
        .await
        .unwrap();
    let mut groups: Vec<String> = out.messages().iter().filter_map(|m| m.attributes()?.get(&MessageSystemAttributeName::MessageGroupId).cloned()).collect();
    groups.sort();
    expected.sort();
    assert_eq!(groups, expected);
}

/// A backlog that cannot go now waits in the endpoint's line: 60 deliveries to an endpoint limited
/// to 2 a second, handled at once by six concurrent batches, take a slot each within the next
/// second or a place in line, one pace (500 ms) apart: the held ones come back spread over about
/// 30 s, at most a few a second, so each is looked at again about once instead of every few seconds.
#[tokio::test]
async fn a_backlog_over_the_rate_limit_waits_in_line() {
    const RATE: u32 = 2;
    const EVENTS: usize = 60;
    let stack = isolated_stack().await;
    let d = deliverer(&stack, &[60]);
    let p = test_principal(&account(&stack).await);
    let receiver = Receiver::start(vec![]).await;
    let ep = Endpoint { rate_limit: Some(RATE), ..endpoint_for(&p, &receiver) };
    assert_eq!(stack.endpoints().create(&p, &ep).await.unwrap(), Created::Created);
    let events = publish_many(&stack, &p, EVENTS).await;
    let batches = events.chunks(10).map(|chunk| integration_tests::delivery_batch(&p, chunk, ep.id));
    let started = paygate::ids::unix_now();
    for response in futures::future::join_all(batches.map(|b| d.handle(b))).await {
        assert!(response.batch_item_failures.is_empty());
    }
    let mut due = Vec::new();
    for e in &events {
        let s = stack.deliveries().state(&p, e.id, &ep.id).await.unwrap().unwrap();
        if s.status == DeliveryStatus::Pending {
            assert_eq!(s.attempts, 0, "held, not attempted");
            due.push(s.next_attempt_at - started);
        }
    }
    due.sort();
    let sent = receiver.received().len();
    let busiest = due.iter().map(|t| due.iter().filter(|u| *u == t).count()).max().unwrap_or(0);
    println!("{sent} sent at once; {} held, due from +{} s to +{} s, at most {busiest} in one second", due.len(), due[0], due[due.len() - 1]);
    assert_eq!(sent + due.len(), EVENTS, "each delivery sent or held");
    assert!(sent <= 2 * RATE as usize + 1, "the slots of about a second: {sent}");
    assert!(busiest <= RATE as usize + 1, "held ones come back at the endpoint's pace: {busiest} due in one second");
    let span = due[due.len() - 1] - due[0];
    assert!(span as usize >= due.len() / (RATE as usize) - 2, "spread over the line: {span} s for {}", due.len());
}
