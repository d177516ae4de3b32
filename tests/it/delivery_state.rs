//! The delivery state in DynamoDB, on the real local servers: contention is retried and never
//! mistaken for a failed condition, concurrent settles count exactly, finally failed deliveries are
//! recovered (API, CLI and dead-letter redrive), and a stream record nobody can read is parked
//! while its deliveries still arrive.

use std::time::Duration;

use integration_tests::conflicts::ConflictInjector;
use integration_tests::receiver::{Answer, Receiver};
use integration_tests::{Api, account, attribute_event_item, eventually, isolated_stack, publish, test_principal};
use paygate::aws::Target;
use paygate::store::StoreError;
use paygate::store::deliveries::{Attempt, DeliveryStatus, StateChange};
use paygate::webhook::deliver::{Deliverer, RetrySchedule};
use paygate::webhook::endpoints::{EnabledEvents, Endpoint, new_endpoint};
use paygate::webhook::fanout::DeliveryMessage;
use paygate::webhook::ssrf::WebhookClient;
use paygate::{Event, EventType, Principal};
use paygate_cli::pollers::{self, Pollers};
use paygate_cli::stack::Stack;

const BOUND: Duration = Duration::from_secs(60);

fn deliverer(stack: &Stack, schedule: &[u64]) -> Deliverer {
    let mut d = stack.deliverer(RetrySchedule { live: schedule.to_vec(), test: schedule.to_vec() });
    d.client = WebhookClient::with_timeout(stack.policy, Duration::from_secs(5));
    d
}

async fn endpoint(stack: &Stack, p: &Principal, r: &Receiver, events: &[&str]) -> Endpoint {
    let enabled = EnabledEvents::parse(&events.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap();
    let ep = new_endpoint(p.mode, r.url.parse().unwrap(), enabled, None);
    assert_eq!(stack.endpoints().create(p, &ep).await.unwrap(), paygate::store::endpoints::Created::Created);
    r.expect_secrets(&[ep.secret.expose()]);
    ep
}

fn payment() -> serde_json::Value {
    serde_json::json!({"id": "pay_1", "object": "payment", "amount": 5000, "currency": "GHS"})
}

async fn pending(stack: &Stack, p: &Principal, e: &Event) -> u32 {
    stack.events().get(p, e.id).await.unwrap().unwrap().pending_webhooks
}

/// Waits (bounded) until the delivery has `status`; returns what it last was.
async fn becomes(stack: &Stack, p: &Principal, e: &Event, ep: &Endpoint, status: DeliveryStatus) -> Option<DeliveryStatus> {
    let reached = eventually(BOUND, || async { (stack.deliveries().status(p, e.id, &ep.id).await.unwrap() == Some(status)).then_some(()) }).await;
    reached.map(|_| status).or(stack.deliveries().status(p, e.id, &ep.id).await.unwrap())
}

/// `pending_webhooks` equals the unsettled deliveries of the event (when the count is stable
/// around the read of the states).
async fn count_is_exact(stack: &Stack, p: &Principal, e: &Event) -> bool {
    let before = pending(stack, p, e).await;
    let open = stack.deliveries().states(p, e.id).await.unwrap().iter().filter(|s| s.status == DeliveryStatus::Pending).count() as u32;
    let after = pending(stack, p, e).await;
    before != after || before == open
}

/// Settles the delivery of `e` to `ep` as succeeded (no attempt recorded), alone.
fn succeeded(p: &Principal, e: &Event, ep: &Endpoint) -> StateChange {
    StateChange::Settle { principal: p.clone(), event: e.id, endpoint: ep.id, status: DeliveryStatus::Succeeded, attempt: None, event_exists: true }
}

/// One delivery of `e` to `ep` from the delivery queue, through a fresh deliverer; its message is
/// not left to retry.
async fn deliver_once(stack: &Stack, p: &Principal, e: &Event, ep: &Endpoint) {
    let batch = integration_tests::sqs_batch(&stack.config.delivery_queue_url, &[DeliveryMessage::new(p, e.id, ep.id)]);
    assert!(deliverer(stack, &[1]).handle(batch).await.batch_item_failures.is_empty());
}

async fn running(schedule: &[u64]) -> (Stack, Pollers) {
    let stack = isolated_stack().await;
    let pollers = pollers::start(&stack, deliverer(&stack, schedule), true).await.unwrap();
    (stack, pollers)
}

#[tokio::test]
async fn transaction_conflicts_are_retried_and_never_taken_for_a_failed_condition() {
    let direct = isolated_stack().await;
    let Target::Local { dynamodb, sqs } = Target::local() else { unreachable!() };
    let injector = ConflictInjector::start(&dynamodb).await;
    let mut contended = direct.clone();
    contended.deps.clients = paygate::aws::Clients::new(&Target::Local { dynamodb: injector.url.clone(), sqs }).await;
    let a = account(&direct).await;
    let p = test_principal(&a);
    let r = Receiver::start(vec![]).await;
    let ep = endpoint(&direct, &p, &r, &["*"]).await;

    // A few conflicts: retried with jitter, then committed; the count drops once.
    let e = publish(&direct, &p, EventType::PaymentSucceeded, payment()).await;
    assert_eq!(pending(&direct, &p, &e).await, 1);
    injector.inject(3);
    let settled = contended.deliveries().apply(&succeeded(&p, &e, &ep)).await.unwrap();
    assert!(settled, "committed after the conflicts");
    assert_eq!(injector.injected(), 3);
    assert_eq!(pending(&direct, &p, &e).await, 0);
    // Settling again is a failed condition (settled already), not a conflict: nothing changes.
    assert!(!contended.deliveries().apply(&succeeded(&p, &e, &ep)).await.unwrap());
    assert_eq!(pending(&direct, &p, &e).await, 0);

    // Conflicts that do not end: an error to retry later, never a silent "already settled".
    let e = publish(&direct, &p, EventType::PaymentSucceeded, payment()).await;
    injector.inject(1000);
    let err = contended.deliveries().apply(&succeeded(&p, &e, &ep)).await.unwrap_err();
    assert!(matches!(err, StoreError::Contention), "{err}");
    assert_eq!(direct.deliveries().status(&p, e.id, &ep.id).await.unwrap(), Some(DeliveryStatus::Pending));
    assert_eq!(pending(&direct, &p, &e).await, 1, "nothing half-done");
    injector.inject(0);
    assert!(contended.deliveries().apply(&succeeded(&p, &e, &ep)).await.unwrap());
    assert_eq!(pending(&direct, &p, &e).await, 0);
}

/// Sixteen endpoints with their receivers, and an event for all of them (counted sixteen times).
async fn sixteen_endpoints_and_an_event() -> (Stack, Principal, Vec<Receiver>, Vec<Endpoint>, Event) {
    let stack = isolated_stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let receivers: Vec<Receiver> = futures::future::join_all((0..16).map(|_| Receiver::start(vec![]))).await;
    let mut eps = Vec::new();
    for r in &receivers {
        eps.push(endpoint(&stack, &p, r, &["*"]).await);
    }
    let e = publish(&stack, &p, EventType::PaymentSucceeded, payment()).await;
    assert_eq!(e.pending_webhooks, 16);
    assert_eq!(pending(&stack, &p, &e).await, 16);
    (stack, p, receivers, eps, e)
}

#[tokio::test]
async fn sixteen_endpoints_settling_one_event_at_once_count_exactly() {
    let (stack, p, receivers, eps, e) = sixteen_endpoints_and_an_event().await;
    // All sixteen messages in one batch: delivered concurrently, settled in one transaction.
    let batch = integration_tests::sqs_batch(&stack.config.delivery_queue_url, &eps.iter().map(|ep| DeliveryMessage::new(&p, e.id, ep.id)).collect::<Vec<_>>());
    let response = deliverer(&stack, &[1]).handle(batch).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    assert!(receivers.iter().all(|r| r.received().len() == 1));
    for ep in &eps {
        assert_eq!(stack.deliveries().status(&p, e.id, &ep.id).await.unwrap(), Some(DeliveryStatus::Succeeded));
    }
    assert_eq!(pending(&stack, &p, &e).await, 0, "sixteen settles, sixteen decrements");
}

#[tokio::test]
async fn sixteen_batches_settling_one_event_at_once_count_exactly() {
    let (stack, p, receivers, eps, e) = sixteen_endpoints_and_an_event().await;
    // Sixteen one-message batches at once (sixteen concurrent invocations): sixteen transactions
    // contending for the event's count.
    let d = deliverer(&stack, &[1]);
    let responses = futures::future::join_all(
        eps.iter().map(|ep| d.handle(integration_tests::sqs_batch(&stack.config.delivery_queue_url, &[DeliveryMessage::new(&p, e.id, ep.id)]))),
    )
    .await;
    assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));
    assert!(receivers.iter().all(|r| r.received().len() == 1));
    for ep in &eps {
        assert_eq!(stack.deliveries().status(&p, e.id, &ep.id).await.unwrap(), Some(DeliveryStatus::Succeeded));
    }
    assert_eq!(pending(&stack, &p, &e).await, 0, "sixteen settles, sixteen decrements");
}

#[tokio::test]
async fn a_batch_written_together_falls_back_to_each_change_when_one_state_moved() {
    let stack = isolated_stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let receivers: Vec<Receiver> = futures::future::join_all((0..3).map(|_| Receiver::start(vec![]))).await;
    let mut eps = Vec::new();
    for r in &receivers {
        eps.push(endpoint(&stack, &p, r, &["*"]).await);
    }
    let (e, other) = (publish(&stack, &p, EventType::PaymentSucceeded, payment()).await, publish(&stack, &p, EventType::PaymentSucceeded, payment()).await);
    assert_eq!((pending(&stack, &p, &e).await, pending(&stack, &p, &other).await), (3, 3));
    let deliveries = stack.deliveries();

    // Together: two events' counts move once each, by the sum of their settles; a retry keeps its count.
    let retry = Attempt {
        event_id: other.id,
        endpoint_id: eps[2].id,
        attempt: 1,
        succeeded: false,
        http_status: Some(503),
        latency_ms: 3,
        error: None,
        response_body: None,
        created_at: paygate::ids::unix_now(),
        next_retry_at: Some(paygate::ids::unix_now() + 60),
    };
    let changes = [
        succeeded(&p, &e, &eps[0]),
        succeeded(&p, &e, &eps[1]),
        succeeded(&p, &other, &eps[0]),
        StateChange::RetryLater { principal: p.clone(), attempt: retry },
    ];
    let results: Vec<bool> = deliveries.apply_all(&changes).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(results, [true, true, true, true]);
    assert_eq!((pending(&stack, &p, &e).await, pending(&stack, &p, &other).await), (1, 2));
    let state = deliveries.state(&p, other.id, &eps[2].id).await.unwrap().unwrap();
    assert_eq!((state.status, state.attempts), (DeliveryStatus::Pending, 1), "the retry is recorded, still pending");
    assert_eq!(deliveries.attempts(&p, other.id).await.unwrap().len(), 1);

    // One state settled meanwhile (a duplicate message): the rest still settle, each alone, and
    // the settled one is reported and counted once.
    let changes = [succeeded(&p, &e, &eps[1]), succeeded(&p, &e, &eps[2]), succeeded(&p, &other, &eps[1])];
    let results: Vec<bool> = deliveries.apply_all(&changes).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(results, [false, true, true]);
    assert_eq!((pending(&stack, &p, &e).await, pending(&stack, &p, &other).await), (0, 1));
    assert!(count_is_exact(&stack, &p, &e).await && count_is_exact(&stack, &p, &other).await);
}

#[tokio::test]
async fn two_messages_for_one_delivery_in_a_batch_send_it_once() {
    let stack = isolated_stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let r = Receiver::start(vec![]).await;
    let ep = endpoint(&stack, &p, &r, &["*"]).await;
    let e = publish(&stack, &p, EventType::PaymentSucceeded, payment()).await;
    let m = DeliveryMessage::new(&p, e.id, ep.id);
    let response = deliverer(&stack, &[1]).handle(integration_tests::sqs_batch(&stack.config.delivery_queue_url, &[m.clone(), m])).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    assert_eq!(r.received().len(), 1, "one POST");
    assert_eq!(stack.deliveries().status(&p, e.id, &ep.id).await.unwrap(), Some(DeliveryStatus::Succeeded));
    assert_eq!(pending(&stack, &p, &e).await, 0);
}

#[tokio::test]
async fn recover_requeues_final_failures_once_and_counts_them_again() {
    let (stack, _pollers) = running(&[1]).await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let key = a.test_key.expose();
    // Down for the first event's whole schedule (two attempts), up after.
    let r = Receiver::start(vec![Answer::Status(503), Answer::Status(503)]).await;
    let ep = endpoint(&stack, &p, &r, &["*"]).await;
    let e = publish(&stack, &p, EventType::PaymentFailed, payment()).await;
    assert_eq!(becomes(&stack, &p, &e, &ep, DeliveryStatus::Failed).await, Some(DeliveryStatus::Failed));
    assert_eq!(pending(&stack, &p, &e).await, 0, "a final failure is settled");
    let api = Api::start(&stack).await;
    let attempts = api.get(&format!("/v1/events/{}/deliveries", e.id), Some(key)).await;
    let statuses: Vec<&str> = attempts.body["data"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "failed"]);
    let next: Vec<bool> = attempts.body["data"].as_array().unwrap().iter().map(|a| a["next_retry_at"].is_string()).collect();
    assert_eq!(next, [true, false], "the final failure is visible: a failed attempt with no next retry");

    // Bad input first.
    let path = format!("/v1/webhook_endpoints/{}/recover", ep.id);
    let missing = api.post(&path, key, "", None).await;
    assert_eq!((missing.status, missing.body["error"]["param"].as_str()), (400, Some("since")));
    let bad = api.post(&path, key, "since=yesterday", None).await;
    assert_eq!((bad.status, bad.body["error"]["code"].as_str()), (400, Some("parameter_invalid")));
    let unknown = api.post("/v1/webhook_endpoints/we_01M86Q64Q75548AGQCZMZ8CETQ/recover", key, "since=0", None).await;
    assert_eq!(unknown.status, 404);
    let later = api.post(&path, key, &format!("since={}", e.created_at.unix_seconds() + 60), None).await;
    assert_eq!((later.status, later.body["queued"].as_u64()), (200, Some(0)), "nothing failed since then");

    // Recover: queued, counted again at once, delivered once more, and settled.
    let since = e.created_at.unix_seconds();
    let recovered = api.post(&path, key, &format!("since={since}"), Some("recover-1")).await;
    assert_eq!(recovered.status, 200, "{}", recovered.body);
    assert_eq!(recovered.body["object"], "webhook_recovery");
    assert_eq!(recovered.body["queued"], 1);
    assert_eq!(recovered.body["events"], serde_json::json!([e.id]));
    assert!(count_is_exact(&stack, &p, &e).await);
    assert_eq!(becomes(&stack, &p, &e, &ep, DeliveryStatus::Succeeded).await, Some(DeliveryStatus::Succeeded));
    assert_eq!(r.received().len(), 3);
    assert_eq!(pending(&stack, &p, &e).await, 0);
    // Idempotent: the same key replays; a new call finds nothing more to do.
    let replay = api.post(&path, key, &format!("since={since}"), Some("recover-1")).await;
    assert!(replay.replayed);
    assert_eq!(replay.body["queued"], 1);
    let again = api.post(&path, key, &format!("since={since}"), None).await;
    assert_eq!(again.body["queued"], 0);
    tokio::time::sleep(Duration::from_millis(1500)).await; // room for a delivery that should not come
    assert_eq!(r.received().len(), 3, "delivered once more, not twice");

    // The CLI runs the same thing (RFC 3339 this time).
    let r2 = Receiver::start(vec![Answer::Status(500), Answer::Status(500)]).await;
    let ep2 = endpoint(&stack, &p, &r2, &["refund.*"]).await;
    let e2 = publish(&stack, &p, EventType::RefundCreated, payment()).await;
    assert_eq!(becomes(&stack, &p, &e2, &ep2, DeliveryStatus::Failed).await, Some(DeliveryStatus::Failed));
    paygate_cli::commands::recover(&stack, key, &ep2.id.to_string(), &e2.created_at.to_string()).await.unwrap();
    assert_eq!(becomes(&stack, &p, &e2, &ep2, DeliveryStatus::Succeeded).await, Some(DeliveryStatus::Succeeded));
    assert_eq!(pending(&stack, &p, &e2).await, 0);
}

#[tokio::test]
async fn dead_letters_moved_back_are_delivered_again() {
    let (stack, _pollers) = running(&[1]).await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let r = Receiver::start(vec![Answer::Status(500), Answer::Status(500)]).await;
    let ep = endpoint(&stack, &p, &r, &["*"]).await;
    let e = publish(&stack, &p, EventType::PaymentSucceeded, payment()).await;
    assert_eq!(becomes(&stack, &p, &e, &ep, DeliveryStatus::Failed).await, Some(DeliveryStatus::Failed));
    let in_dlq = eventually(BOUND, || async {
        let attrs = stack
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&stack.config.delivery_dlq_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let n: u32 = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (n > 0).then_some(n)
    })
    .await;
    assert_eq!(in_dlq, Some(1), "the exhausted message is in the dead-letter queue");

    // `paygate dlq redrive`, as the README says.
    paygate_cli::commands::dlq_redrive(&stack, 100).await.unwrap();
    assert_eq!(becomes(&stack, &p, &e, &ep, DeliveryStatus::Succeeded).await, Some(DeliveryStatus::Succeeded));
    assert_eq!(r.received().len(), 3);
    assert_eq!(pending(&stack, &p, &e).await, 0);
    let attempts = stack.deliveries().attempts(&p, e.id).await.unwrap();
    let summary: Vec<(u32, bool)> = attempts.iter().map(|a| (a.attempt, a.succeeded)).collect();
    assert_eq!(summary, [(1, false), (2, false), (1, true)], "a redriven delivery starts its schedule again");
}

#[tokio::test]
async fn an_unreadable_stream_record_is_parked_and_its_deliveries_still_arrive() {
    let mut stack = isolated_stack().await;
    stack.config.redrive_after = Duration::from_secs(2);
    let _pollers = pollers::start(&stack, deliverer(&stack, &[1]), true).await.unwrap();
    let a = account(&stack).await;
    let p = test_principal(&a);
    let r = Receiver::start(vec![]).await;
    let ep = endpoint(&stack, &p, &r, &["*"]).await;
    // An event whose `data` is an empty map, written straight to the table in the item shape from
    // before events carried their JSON (such items live until their TTL, and other writers exist):
    // DynamoDB Local's stream shows that map as `{}`, a shape no SDK reads, so the whole GetRecords
    // page fails to parse.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let mut odd = Event::new(EventType::CustomerCreated, serde_json::Map::new(), Default::default());
    odd.pending_webhooks = 1;
    let put = aws_sdk_dynamodb::types::Put::builder().table_name(&stack.config.events_table).set_item(Some(attribute_event_item(&p, &odd))).build().unwrap();
    let mut writes = vec![aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build()];
    writes.extend(stack.deliveries().opening(&p, odd.id, std::slice::from_ref(&ep.id)).unwrap());
    stack.clients.dynamodb.transact_write_items().set_transact_items(Some(writes)).send().await.unwrap();
    let plain = publish(&stack, &p, EventType::CustomerCreated, serde_json::json!({"id": "cus_2", "object": "customer"})).await;
    for e in [&odd, &plain] {
        assert_eq!(becomes(&stack, &p, e, &ep, DeliveryStatus::Succeeded).await, Some(DeliveryStatus::Succeeded), "{}", e.id);
        assert_eq!(pending(&stack, &p, e).await, 0);
    }
    let delivered = r.received().into_iter().find(|x| x.event.as_ref().is_some_and(|v| v.id == odd.id)).unwrap();
    assert!(delivered.event.unwrap().data.object.is_empty(), "the event itself is intact");
    let parked = stack
        .clients
        .sqs
        .receive_message()
        .queue_url(&stack.config.fanout_failure_queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let bodies: Vec<&str> = parked.messages().iter().filter_map(|m| m.body()).collect();
    assert!(bodies.iter().any(|b| b.contains(&odd.id.to_string())), "the record is parked where it can be found: {bodies:?}");
    assert!(!bodies.iter().any(|b| b.contains(&plain.id.to_string())), "only the unreadable one");
}

/// The sweeper moves a state's due time on after enqueueing it only if nothing moved it meanwhile:
/// a delivery handled at once (held or retried, with its own next time) keeps that time.
#[tokio::test]
async fn the_sweeper_never_overwrites_a_due_time_written_after_it_read_the_state() {
    let stack = isolated_stack().await;
    let p = test_principal(&account(&stack).await);
    let r = Receiver::start(vec![]).await;
    let ep = endpoint(&stack, &p, &r, &["*"]).await;
    let e = publish(&stack, &p, EventType::PaymentSucceeded, payment()).await;
    let later = paygate::ids::unix_now() + 10_000;
    let store = stack.deliveries();
    let mut found = Vec::new();
    for shard in 0..paygate::store::deliveries::DUE_SHARDS {
        found.extend(store.overdue(shard, later, 100).await.unwrap().into_iter().filter(|o| o.event_id == e.id));
    }
    let [seen] = found.as_slice() else { panic!("one due state: {found:?}") };
    // Meanwhile its message was handled: the delivery waits until `held` (say its breaker is open).
    let held = paygate::ids::unix_now() + 42;
    let hold = StateChange::Hold { principal: p.clone(), event: e.id, endpoint: ep.id, until: held };
    assert!(store.apply(&hold).await.unwrap());
    assert!(!store.postpone(seen, later + 300).await.unwrap(), "the sweeper's view was stale");
    assert_eq!(store.state(&p, e.id, &ep.id).await.unwrap().unwrap().next_attempt_at, held);
    let mut still = Vec::new();
    for shard in 0..paygate::store::deliveries::DUE_SHARDS {
        still.extend(store.overdue(shard, held, 100).await.unwrap().into_iter().filter(|o| o.event_id == e.id));
    }
    assert_eq!(still.len(), 1, "due at the held time, not the sweeper's");
    assert_eq!(still[0].due_at, held);
}

/// Raising the `ByDue` shard count (`DueShards`) loses nothing: states written with 4 shards are
/// found by a store with 64, and the new ones spread over the 64.
#[tokio::test]
async fn raising_the_due_shards_keeps_every_pending_state_in_sight() {
    let mut stack = isolated_stack().await;
    let p = test_principal(&account(&stack).await);
    let r = Receiver::start(vec![]).await;
    let ep = endpoint(&stack, &p, &r, &["*"]).await;
    let mut events = Vec::new();
    for _ in 0..12 {
        events.push(publish(&stack, &p, EventType::PaymentSucceeded, payment()).await.id);
    }
    stack.config.due_shards = 64;
    for _ in 0..24 {
        events.push(publish(&stack, &p, EventType::PaymentSucceeded, payment()).await.id);
    }
    let store = stack.deliveries();
    assert_eq!(store.due_shards(), 64);
    let later = paygate::ids::unix_now() + 10_000;
    let mut found = Vec::new();
    let mut beyond_the_first_four = 0;
    for shard in 0..store.due_shards() {
        let here: Vec<_> = store.overdue(shard, later, 100).await.unwrap().into_iter().filter(|o| o.endpoint_id == ep.id).map(|o| o.event_id).collect();
        if shard >= 4 {
            beyond_the_first_four += here.len();
        }
        found.extend(here);
    }
    found.sort();
    events.sort();
    assert_eq!(found, events, "every pending state, old and new");
    assert!(beyond_the_first_four > 0, "the new states use the new shards");
}

/// An endpoint's attempts are spread over its `ByEndpoint` keys, and read back merged, newest
/// first: 40 attempts over the shards and 6 written before the shards (under the endpoint's one
/// key), read 12 at a time and all at once.
#[tokio::test]
async fn endpoint_attempts_merge_every_shard_and_the_older_key_newest_first() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use paygate::store::deliveries::ENDPOINT_SHARDS;
    let stack = isolated_stack().await;
    let p = test_principal(&account(&stack).await);
    let endpoint = paygate::EndpointId::generate();
    let base = paygate::ids::unix_now_ms() - 60_000;
    let mut ids = Vec::new();
    for i in 0..46u64 {
        let id = ulid::Ulid::from_parts(base + i * 1_000, u128::from(i) * 7_919);
        // The first six as written before the shards; the rest on the shard the store picks.
        let key =
            if i < 6 { format!("{}#{endpoint}", p.partition()) } else { format!("{}#{endpoint}#{}", p.partition(), id.random() % u128::from(ENDPOINT_SHARDS)) };
        let event = paygate::EventId::generate();
        stack
            .clients
            .dynamodb
            .put_item()
            .table_name(&stack.config.deliveries_table)
            .item("pk", AttributeValue::S(format!("{}#{event}", p.partition())))
            .item("sk", AttributeValue::S(format!("{endpoint}#attempt#{id}")))
            .item("endpoint_pk", AttributeValue::S(key))
            .item("attempt_id", AttributeValue::S(id.to_string()))
            .item("event_id", AttributeValue::S(event.to_string()))
            .item("attempt_number", AttributeValue::N("1".into()))
            .item("ok", AttributeValue::Bool(true))
            .item("latency_ms", AttributeValue::N(i.to_string()))
            .send()
            .await
            .unwrap();
        ids.push(base + i * 1_000);
    }
    let store = stack.deliveries();
    let now = paygate::ids::unix_now_ms() + 1;
    let twelve = store.endpoint_attempts(&p, &endpoint, base, now, 12).await.unwrap();
    let newest: Vec<u64> = ids.iter().rev().take(12).copied().collect();
    assert_eq!(twelve.attempts.iter().map(|a| a.at_ms).collect::<Vec<_>>(), newest, "the newest twelve, newest first");
    assert!(twelve.has_more);
    let all = store.endpoint_attempts(&p, &endpoint, base, now, 100).await.unwrap();
    assert_eq!(all.attempts.iter().map(|a| a.at_ms).collect::<Vec<_>>(), ids.iter().rev().copied().collect::<Vec<_>>(), "every one, the older key's too");
    assert!(!all.has_more);
    // A window: [base + 10 s, base + 20 s) holds ten.
    let window = store.endpoint_attempts(&p, &endpoint, base + 10_000, base + 20_000, 100).await.unwrap();
    assert_eq!(window.attempts.len(), 10);
    let shards: std::collections::HashSet<u128> = (6..46u64).map(|i| (u128::from(i) * 7_919) % u128::from(ENDPOINT_SHARDS)).collect();
    assert!(shards.len() > 4, "the attempts cover most shards: {shards:?}");
}

/// `recover` does bounded work: 105 final failures are re-opened 100 in the first call (with
/// `has_more`) and the other 5 in the next, oldest events first; none twice.
#[tokio::test]
async fn recover_reopens_at_most_a_hundred_a_call() {
    let stack = isolated_stack().await;
    let mut d = deliverer(&stack, &[]);
    d.breaker.threshold = 1_000;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let key = a.test_key.expose();
    let r = Receiver::start(vec![Answer::Status(500); 105]).await;
    let ep = endpoint(&stack, &p, &r, &["*"]).await;
    let mut events = Vec::new();
    for _ in 0..105 {
        events.push(publish(&stack, &p, EventType::PaymentFailed, payment()).await);
    }
    // One attempt each, and no retry in the schedule: 105 final failures.
    for chunk in events.chunks(10) {
        assert!(d.handle(integration_tests::delivery_batch(&p, chunk, ep.id)).await.batch_item_failures.is_empty());
    }
    for e in &events {
        assert_eq!(stack.deliveries().status(&p, e.id, &ep.id).await.unwrap(), Some(DeliveryStatus::Failed));
    }
    let api = Api::start(&stack).await;
    let path = format!("/v1/webhook_endpoints/{}/recover", ep.id);
    let first = api.post(&path, key, "since=0", None).await;
    assert_eq!((first.status, first.body["queued"].as_u64(), first.body["has_more"].as_bool()), (200, Some(100), Some(true)), "{}", first.body);
    let oldest: Vec<String> = events[..100].iter().map(|e| e.id.to_string()).collect();
    assert_eq!(first.body["events"], serde_json::json!(oldest), "the oldest first");
    let second = api.post(&path, key, "since=0", None).await;
    assert_eq!((second.body["queued"].as_u64(), second.body["has_more"].as_bool()), (Some(5), Some(false)), "{}", second.body);
    let third = api.post(&path, key, "since=0", None).await;
    assert_eq!((third.body["queued"].as_u64(), third.body["has_more"].as_bool()), (Some(0), Some(false)));
    for e in &events {
        assert_eq!(stack.deliveries().status(&p, e.id, &ep.id).await.unwrap(), Some(DeliveryStatus::Pending), "re-opened once");
    }
}

/// The delivery function reads an endpoint's copy under the endpoint's own key, kept in step with
/// every write of the endpoint (create, update, status, delete). An endpoint written before copies
/// existed (its copy removed here) is still delivered to, from the original, and gets its copy.
#[tokio::test]
async fn deliveries_read_the_endpoints_copy_which_follows_every_write() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use paygate::store::endpoints::Replaced;
    use paygate::webhook::endpoints::EndpointStatus;

    let stack = isolated_stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let r = Receiver::start(vec![]).await;
    let ep = endpoint(&stack, &p, &r, &["*"]).await;
    let store = stack.endpoints();
    let copy_key = |id: &paygate::EndpointId| {
        std::collections::HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("{}#{id}", p.partition()))),
            ("id".to_owned(), AttributeValue::S(id.to_string())),
        ])
    };
    let copy = || async {
        let out = stack
            .clients
            .dynamodb
            .get_item()
            .table_name(&stack.config.webhook_endpoints_table)
            .set_key(Some(copy_key(&ep.id)))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item.map(|i| paygate::store::endpoints::EndpointStore::endpoint_of(i, p.mode).unwrap())
    };
    // Created with its copy; an update and a status change move both.
    assert_eq!(copy().await.unwrap().url, ep.url);
    let read = store.get(&p, &ep.id).await.unwrap().unwrap();
    let moved = paygate::webhook::endpoints::Endpoint { description: Some("moved".into()), ..read };
    assert_eq!(store.replace(&p, &moved).await.unwrap(), Replaced::Replaced);
    assert_eq!(copy().await.unwrap().description.as_deref(), Some("moved"));
    assert_eq!(copy().await.unwrap().version, store.get(&p, &ep.id).await.unwrap().unwrap().version);
    store.set_status(&p, &ep.id, EndpointStatus::Disabled).await.unwrap();
    assert_eq!(copy().await.unwrap().status, EndpointStatus::Disabled, "what the delivery function reads is disabled too");
    let e = publish(&stack, &p, EventType::PaymentSucceeded, payment()).await;
    deliver_once(&stack, &p, &e, &ep).await;
    assert!(r.received().is_empty(), "a disabled endpoint gets nothing");
    store.set_status(&p, &ep.id, EndpointStatus::Enabled).await.unwrap();

    // An endpoint with no copy (as written before copies): delivered from the original, then copied.
    stack.clients.dynamodb.delete_item().table_name(&stack.config.webhook_endpoints_table).set_key(Some(copy_key(&ep.id))).send().await.unwrap();
    let e = publish(&stack, &p, EventType::PaymentSucceeded, payment()).await;
    deliver_once(&stack, &p, &e, &ep).await;
    assert_eq!(r.received().len(), 1);
    assert_eq!(copy().await.unwrap().status, EndpointStatus::Enabled, "the copy is written from the original");
    // A status change of an endpoint without a copy writes one too.
    stack.clients.dynamodb.delete_item().table_name(&stack.config.webhook_endpoints_table).set_key(Some(copy_key(&ep.id))).send().await.unwrap();
    store.set_status(&p, &ep.id, EndpointStatus::Disabled).await.unwrap();
    assert_eq!(copy().await.unwrap().status, EndpointStatus::Disabled);
    // Deleted with its copy.
    assert!(store.delete(&p, &ep.id).await.unwrap());
    assert!(copy().await.is_none());
}
