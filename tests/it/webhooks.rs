//! Webhooks end to end on the real local servers: events written to DynamoDB Local flow through the
//! stream poller into `fanout`, through the SQS server into `deliver-webhooks`, and reach real HTTP
//! receivers on 127.0.0.1 that verify both signature schemes. Each test has private tables and queues.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use integration_tests::receiver::{Answer, Receiver};
use integration_tests::{Api, account, eventually, isolated_stack, live_principal, stack, test_principal};
use paygate::ingest::{DataObject, IngestData, IngestRequest};
use paygate::store::deliveries::DeliveryStatus;
use paygate::store::endpoints::Created;
use paygate::webhook::deliver::{Deliverer, RetrySchedule};
use paygate::webhook::endpoints::{EnabledEvents, Endpoint, EndpointStatus, new_endpoint};
use paygate::webhook::fanout::DeliveryMessage;
use paygate::webhook::ssrf::{UrlPolicy, WebhookClient};
use paygate::{Event, EventType, Principal};
use paygate_cli::pollers::{self, Pollers};
use paygate_cli::stack::Stack;

/// A deliverer with a retry schedule of seconds and a 5 s request timeout (roomy for a loaded
/// machine, short enough for the timeout test).
fn deliverer(stack: &Stack, schedule: &[u64]) -> Deliverer {
    let mut d = stack.deliverer(RetrySchedule { live: schedule.to_vec(), test: schedule.to_vec() });
    d.client = WebhookClient::with_timeout(stack.policy, Duration::from_secs(5));
    d
}

async fn running(schedule: &[u64]) -> (Stack, Pollers) {
    let stack = isolated_stack().await;
    let pollers = pollers::start(&stack, deliverer(&stack, schedule), true).await.unwrap();
    (stack, pollers)
}

async fn endpoint(stack: &Stack, p: &Principal, r: &Receiver, events: &[&str]) -> Endpoint {
    let enabled = EnabledEvents::parse(&events.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap();
    let ep = new_endpoint(p.mode, r.url.parse().unwrap(), enabled, None);
    assert_eq!(stack.endpoints().create(p, &ep).await.unwrap(), Created::Created);
    r.expect_secrets(&[ep.secret.expose()]);
    ep
}

async fn emit(stack: &Stack, p: &Principal, t: EventType) -> Event {
    let input = IngestRequest {
        account_id: p.account.clone(),
        mode: p.mode,
        event_type: t,
        data: IngestData { object: DataObject::parse(serde_json::json!({"id": "pay_1", "object": "payment", "amount": 5000, "currency": "GHS"})).unwrap() },
        request: Default::default(),
        idempotency_key: None,
    };
    // Endpoints get events created after them: make sure the millisecond has passed.
    tokio::time::sleep(Duration::from_millis(2)).await;
    stack.publisher().publish(input).await.unwrap()
}

/// Waits (bounded) until the event's pending_webhooks is `n`; returns what it last was.
async fn pending_becomes(stack: &Stack, p: &Principal, e: &Event, n: u32) -> u32 {
    let read = || async { stack.events().get(p, e.id).await.unwrap().unwrap().pending_webhooks };
    match eventually(Duration::from_secs(30), || async { Some(read().await).filter(|v| *v == n) }).await {
        Some(v) => v,
        None => read().await,
    }
}

/// Waits (bounded) until the (event, endpoint) delivery is no longer pending.
async fn settled(stack: &Stack, p: &Principal, e: &Event, ep: &Endpoint) -> Option<DeliveryStatus> {
    let read = || async { stack.deliveries().status(p, e.id, &ep.id).await.unwrap() };
    match eventually(Duration::from_secs(30), || async { read().await.filter(|s| *s != DeliveryStatus::Pending) }).await {
        Some(s) => Some(s),
        None => read().await,
    }
}

#[tokio::test]
async fn events_reach_each_matching_endpoint_once_signed() {
    let (stack, _pollers) = running(&[1, 1]).await;
    let (a, b) = (account(&stack).await, account(&stack).await);
    let p = test_principal(&a);
    let receivers: Vec<Receiver> = futures::future::join_all((0..7).map(|_| Receiver::start(vec![]))).await;
    let exact = endpoint(&stack, &p, &receivers[0], &["payment.succeeded"]).await;
    let family = endpoint(&stack, &p, &receivers[1], &["payment.*"]).await;
    let all = endpoint(&stack, &p, &receivers[2], &["*"]).await;
    endpoint(&stack, &p, &receivers[3], &["refund.created", "payment.failed"]).await;
    let mut disabled = endpoint(&stack, &p, &receivers[4], &["*"]).await;
    disabled.status = EndpointStatus::Disabled;
    stack.endpoints().replace(&p, &disabled).await.unwrap();
    endpoint(&stack, &test_principal(&b), &receivers[5], &["*"]).await;
    endpoint(&stack, &live_principal(&a), &receivers[6], &["*"]).await;

    let event = emit(&stack, &p, EventType::PaymentSucceeded).await;
    for (r, ep) in receivers[..3].iter().zip([&exact, &family, &all]) {
        let got = r.wait_for(1).await;
        assert_eq!(got.len(), 1, "{}", ep.id);
        assert!(got[0].verified, "both signatures verify");
        assert_eq!(got[0].v1_count, 1);
        let delivered = got[0].event.clone().unwrap();
        assert_eq!(delivered.id, event.id);
        assert_eq!(delivered.data, event.data);
        assert_eq!(settled(&stack, &p, &event, ep).await, Some(DeliveryStatus::Succeeded));
    }
    assert_eq!(pending_becomes(&stack, &p, &event, 0).await, 0);
    tokio::time::sleep(Duration::from_millis(1500)).await; // room for anything that should not come
    for (i, r) in receivers.iter().enumerate() {
        let want = usize::from(i < 3);
        assert_eq!(r.received().len(), want, "receiver {i}");
    }

    // Another event of another family: only the `*` endpoint.
    let refund = emit(&stack, &p, EventType::CustomerCreated).await;
    assert_eq!(receivers[2].wait_for(2).await.len(), 2);
    assert_eq!(pending_becomes(&stack, &p, &refund, 0).await, 0);
    assert_eq!(receivers[0].received().len() + receivers[1].received().len(), 2);
}

#[tokio::test]
async fn failures_retry_until_success_and_are_recorded() {
    let (stack, _pollers) = running(&[1, 1, 1]).await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let flaky = Receiver::start(vec![Answer::Status(500), Answer::Big(500, 10 * 1024 * 1024), Answer::Status(200)]).await;
    let ep = endpoint(&stack, &p, &flaky, &["*"]).await;
    let event = emit(&stack, &p, EventType::PaymentFailed).await;
    assert_eq!(settled(&stack, &p, &event, &ep).await, Some(DeliveryStatus::Succeeded));
    assert_eq!(pending_becomes(&stack, &p, &event, 0).await, 0);
    let attempts = stack.deliveries().attempts(&p, event.id).await.unwrap();
    let summary: Vec<(u32, bool, Option<u16>)> = attempts.iter().map(|a| (a.attempt, a.succeeded, a.http_status)).collect();
    assert_eq!(summary, vec![(1, false, Some(500)), (2, false, Some(500)), (3, true, Some(200))]);
    assert!(attempts[1].response_body.as_ref().unwrap().len() <= 2048, "the 10 MB answer is not kept (nor read)");
    assert_eq!(flaky.received().iter().filter(|r| r.verified).count(), 3);

    // The attempts through the API.
    let api = Api::start(&stack).await;
    let r = api.get(&format!("/v1/events/{}/deliveries", event.id), Some(a.test_key.expose())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["data"][2]["status"], "succeeded");

    // The endpoint's health counts the same three attempts, from its own index.
    let key = a.test_key.expose();
    let stats = api.get(&format!("/v1/webhook_endpoints/{}/stats", ep.id), Some(key)).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let b = &stats.body;
    assert_eq!((b["attempts"].as_u64(), b["succeeded"].as_u64(), b["failed"].as_u64()), (Some(3), Some(1), Some(2)), "{b}");
    assert_eq!(b["interval"], "hour");
    // Two failures, then a success: the breaker never opened, and the success closed the run.
    assert_eq!((b["health"]["state"].as_str(), b["health"]["consecutive_failures"].as_u64()), (Some("closed"), Some(0)), "{b}");
    assert!(b["latency_ms"]["p50"].as_u64().is_some() && b["latency_ms"]["p95"].as_u64() >= b["latency_ms"]["p50"].as_u64());
    let series = b["series"].as_array().unwrap();
    assert!((24..=25).contains(&series.len()), "hourly points of a day: {}", series.len());
    assert_eq!(series.iter().map(|p| p["attempts"].as_u64().unwrap()).sum::<u64>(), 3);
    let failures = b["recent_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|f| f["event"] == event.id.to_string() && f["http_status"] == 500));
    assert_eq!(failures[0]["attempt"], 2, "newest first");
    // A window that ends before the attempts counts none of them.
    let before = event.created_at.0 - 10;
    let empty = api.get(&format!("/v1/webhook_endpoints/{}/stats?since={}&until={before}&interval=day", ep.id, before - 86_400), Some(key)).await;
    assert_eq!((empty.status, empty.body["attempts"].as_u64()), (200, Some(0)), "{}", empty.body);
    assert_eq!(empty.body["success_rate"], serde_json::Value::Null);
}

#[tokio::test]
async fn timeouts_and_refused_connections_retry_then_the_dlq_keeps_the_message() {
    let (stack, _pollers) = running(&[1, 1]).await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    // Nothing listens on this port: bind, note it, close.
    let refused_url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/webhooks", l.local_addr().unwrap())
    };
    let mut dead = Receiver::default();
    dead.url = refused_url.parse().unwrap();
    let dead_ep = endpoint(&stack, &p, &dead, &["payment.*"]).await;
    // Its first request is withdrawn after 0.5 s from the delivery queue's batch and moved to the slow
    // lane (not an attempt); the slow lane's attempt times out (5 s) and is retried.
    let slow = Receiver::start(vec![Answer::Slow(Duration::from_secs(7)), Answer::Slow(Duration::from_secs(7)), Answer::Status(200)]).await;
    let slow_ep = endpoint(&stack, &p, &slow, &["payment.*"]).await;

    let event = emit(&stack, &p, EventType::PaymentCreated).await;
    assert_eq!(settled(&stack, &p, &event, &slow_ep).await, Some(DeliveryStatus::Succeeded));
    assert_eq!(settled(&stack, &p, &event, &dead_ep).await, Some(DeliveryStatus::Failed));
    assert_eq!(pending_becomes(&stack, &p, &event, 0).await, 0);

    let attempts = stack.deliveries().attempts(&p, event.id).await.unwrap();
    let slow_attempts: Vec<_> = attempts.iter().filter(|x| x.endpoint_id == slow_ep.id).collect();
    assert_eq!(slow_attempts.len(), 2);
    assert_eq!(slow_attempts[0].error.as_deref(), Some("timeout"));
    assert_eq!(slow.started(), 3, "the withdrawn request, the attempt that timed out, its retry");
    let dead_attempts: Vec<_> = attempts.iter().filter(|x| x.endpoint_id == dead_ep.id).collect();
    assert_eq!(dead_attempts.len(), 3, "the first attempt and the two retries of the schedule");
    assert!(dead_attempts.iter().all(|x| !x.succeeded && x.error.as_deref().unwrap().starts_with("connection failed")));

    // Nothing lost: the exhausted message waits in the DLQ.
    let sqs = &stack.clients.sqs;
    let in_dlq = eventually(Duration::from_secs(10), || async {
        let out = sqs.receive_message().queue_url(&stack.config.delivery_dlq_url).wait_time_seconds(1).send().await.unwrap();
        out.messages().first().and_then(|m| m.body()).map(str::to_owned)
    })
    .await
    .expect("the exhausted message is in the DLQ");
    let msg: DeliveryMessage = serde_json::from_str(&in_dlq).unwrap();
    assert_eq!((msg.event_id, msg.endpoint_id), (event.id, dead_ep.id));
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let (stack, _pollers) = running(&[1, 1]).await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let gone = Receiver::start(vec![Answer::Status(410)]).await;
    let ep = endpoint(&stack, &p, &gone, &["*"]).await;
    let event = emit(&stack, &p, EventType::PayoutFailed).await;
    assert_eq!(settled(&stack, &p, &event, &ep).await, Some(DeliveryStatus::Failed));
    assert_eq!(stack.endpoints().get(&p, &ep.id).await.unwrap().unwrap().status, EndpointStatus::Disabled);
    assert_eq!(stack.deliveries().attempts(&p, event.id).await.unwrap().len(), 1, "no retries after 410");
    let next = emit(&stack, &p, EventType::PayoutFailed).await;
    assert_eq!(pending_becomes(&stack, &p, &next, 0).await, 0);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(gone.received().len(), 1, "a disabled endpoint gets nothing");
}

fn sqs_message(body: &DeliveryMessage, id: &str, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.body = Some(serde_json::to_string(body).unwrap());
    m.attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

/// One SQS batch with the first receive of (event, endpoint) for each endpoint.
fn first_receives(p: &Principal, event: &Event, endpoints: &[Endpoint]) -> SqsEvent {
    let mut batch = SqsEvent::default();
    batch.records = endpoints
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            let m = DeliveryMessage { account_id: p.account.clone(), mode: p.mode, event_id: event.id, endpoint_id: ep.id };
            sqs_message(&m, &format!("m{i}"), 1)
        })
        .collect();
    batch
}

#[tokio::test]
async fn a_message_delivered_twice_decrements_once() {
    // No pollers: the handlers are called directly with the shapes SQS sends.
    let stack = isolated_stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let receivers: Vec<Receiver> = futures::future::join_all((0..10).map(|_| Receiver::start(vec![]))).await;
    let mut eps = Vec::new();
    for r in &receivers {
        eps.push(endpoint(&stack, &p, r, &["*"]).await);
    }
    let event = emit(&stack, &p, EventType::RefundSucceeded).await;
    let fanout = stack.fanout();
    assert_eq!(fanout.fan_out(&p, event.id).await.unwrap(), 10);
    assert_eq!(fanout.fan_out(&p, event.id).await.unwrap(), 10, "re-processing the record sends again…");
    assert_eq!(stack.events().get(&p, event.id).await.unwrap().unwrap().pending_webhooks, 10, "…but counts once");

    let d = deliverer(&stack, &[1]);
    let batch = first_receives(&p, &event, &eps);
    let first = batch.records[0].clone();
    let response = d.handle(batch).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(receivers.iter().all(|r| r.received().len() == 1 && r.received()[0].verified));
    assert_eq!(stack.events().get(&p, event.id).await.unwrap().unwrap().pending_webhooks, 0);

    // The same message again (SQS's at-least-once): acknowledged, nothing sent, no second decrement.
    let mut again = SqsEvent::default();
    let mut redelivered = first.clone();
    redelivered.attributes.insert("ApproximateReceiveCount".into(), "2".into());
    again.records = vec![redelivered, first];
    assert!(d.handle(again).await.batch_item_failures.is_empty());
    assert_eq!(receivers[0].received().len(), 1);
    assert_eq!(stack.events().get(&p, event.id).await.unwrap().unwrap().pending_webhooks, 0);
}

#[tokio::test]
async fn concurrency_is_real() {
    // Ten endpoints on a receiver that holds each request for 300 ms (under the 500 ms after which
    // the delivery queue's batch withdraws an attempt for the slow lane): with the batch delivered
    // concurrently, all ten requests are in flight at the same moment, as the receiver counts them
    // (nothing is timed; `make bench` measures the speed-up).
    let stack = isolated_stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let shared = Receiver::start((0..10).map(|_| Answer::Slow(Duration::from_millis(300))).collect()).await;
    let mut messages = Vec::new();
    for _ in 0..10 {
        let ep = endpoint(&stack, &p, &shared, &["*"]).await;
        messages.push(ep);
    }
    let event = emit(&stack, &p, EventType::PaymentSucceeded).await;
    stack.fanout().fan_out(&p, event.id).await.unwrap();
    let batch = first_receives(&p, &event, &messages);
    assert!(deliverer(&stack, &[1]).handle(batch).await.batch_item_failures.is_empty());
    assert_eq!(shared.received().len(), 10);
    assert_eq!(shared.max_in_flight(), 10, "all ten POSTs were in flight together");
}

/// The API on the shared stack, and a new account's test key.
async fn api_and_key() -> (Api, paygate::store::api_keys::NewAccount) {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    (api, a)
}

/// Creates an endpoint through the API; returns its id.
async fn create(api: &Api, key: &str, form: &str) -> String {
    let created = api.post("/v1/webhook_endpoints", key, form, None).await;
    assert_eq!(created.status, 200, "{}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn endpoints_are_created_from_forms_with_both_list_spellings_and_from_json() {
    let (api, a) = api_and_key().await;
    let key = a.test_key.expose();
    let form = "url=http%3A%2F%2F127.0.0.1%3A9999%2Fa&enabled_events[]=payment.succeeded&enabled_events[1]=refund.*&description=Orders";
    let created = api.post("/v1/webhook_endpoints", key, form, None).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["enabled_events"], serde_json::json!(["payment.succeeded", "refund.*"]));
    assert!(created.body["secret"].as_str().unwrap().starts_with("whsec_"));
    let json = api.post("/v1/webhook_endpoints", key, r#"{"url":"http://127.0.0.1:9999/b","enabled_events":["*"]}"#, None).await;
    assert_eq!(json.status, 200, "{}", json.body);
}

#[tokio::test]
async fn later_reads_never_show_the_secret_and_test_keys_never_see_live_endpoints() {
    let (api, a) = api_and_key().await;
    let key = a.test_key.expose();
    let id = create(&api, key, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fa&enabled_events[]=*&description=Orders").await;
    let got = api.get(&format!("/v1/webhook_endpoints/{id}"), Some(key)).await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("secret").is_none());
    assert_eq!(got.body["description"], "Orders");
    assert_eq!(api.get(&format!("/v1/webhook_endpoints/{id}"), Some(a.live_key.expose())).await.status, 404);
}

#[tokio::test]
async fn endpoint_lists_page_both_ways() {
    let (api, a) = api_and_key().await;
    let key = a.test_key.expose();
    let id = create(&api, key, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fa&enabled_events[]=*").await;
    create(&api, key, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fb&enabled_events[]=*").await;
    let list = api.get("/v1/webhook_endpoints?limit=1", Some(key)).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["has_more"], true);
    let first = list.body["data"][0]["id"].as_str().unwrap().to_owned();
    let next = api.get(&format!("/v1/webhook_endpoints?limit=1&starting_after={first}"), Some(key)).await;
    assert_eq!(next.body["data"][0]["id"], id.as_str());
    assert_eq!(next.body["has_more"], false);
    let back = api.get(&format!("/v1/webhook_endpoints?ending_before={id}"), Some(key)).await;
    assert_eq!(back.body["data"][0]["id"], first.as_str());
}

#[tokio::test]
async fn endpoints_are_updated_and_deleted() {
    let (api, a) = api_and_key().await;
    let key = a.test_key.expose();
    let id = create(&api, key, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fa&enabled_events[]=payment.succeeded").await;
    let upd = api.post(&format!("/v1/webhook_endpoints/{id}"), key, "status=disabled&enabled_events[]=*", None).await;
    assert_eq!((upd.body["status"].as_str(), upd.body["enabled_events"][0].as_str()), (Some("disabled"), Some("*")));
    assert_eq!(api.post(&format!("/v1/webhook_endpoints/{id}"), key, "status=paused", None).await.body["error"]["param"], "status");
    let del = api.delete(&format!("/v1/webhook_endpoints/{id}"), key).await;
    assert_eq!(del.body["deleted"], true);
    assert_eq!(api.get(&format!("/v1/webhook_endpoints/{id}"), Some(key)).await.status, 404);
    assert_eq!(api.delete(&format!("/v1/webhook_endpoints/{id}"), key).await.status, 404);
}

#[tokio::test]
async fn bad_endpoint_parameters_are_400s_naming_the_parameter() {
    let (api, a) = api_and_key().await;
    let key = a.test_key.expose();
    for (body, param) in [
        ("enabled_events[]=*", "url"),
        ("url=http%3A%2F%2F127.0.0.1%3A9999%2F", "enabled_events"),
        ("url=http%3A%2F%2F127.0.0.1%3A9999%2F&enabled_events[]=payment.nope", "enabled_events"),
        ("url=ftp%3A%2F%2Fexample.com%2F&enabled_events[]=*", "url"),
        ("url=not-a-url&enabled_events[]=*", "url"),
        ("url=http%3A%2F%2F127.0.0.1%3A9999%2F&enabled_events[]=*&colour=red", "colour"),
    ] {
        let r = api.post("/v1/webhook_endpoints", key, body, None).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["error"]["param"], param, "{body}");
    }
    let live = api.post("/v1/webhook_endpoints", a.live_key.expose(), "url=http%3A%2F%2F127.0.0.1%3A9999%2F&enabled_events[]=*", None).await;
    assert_eq!((live.status, live.body["error"]["param"].as_str()), (400, Some("url")), "live mode needs https");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_same_request_and_refuses_another() {
    let (api, a) = api_and_key().await;
    let key = a.test_key.expose();
    let body = "url=http%3A%2F%2F127.0.0.1%3A9999%2Fidem&enabled_events[]=*";
    let one = api.post("/v1/webhook_endpoints", key, body, Some("order-1")).await;
    let two = api.post("/v1/webhook_endpoints", key, body, Some("order-1")).await;
    assert!(!one.replayed && two.replayed);
    assert_eq!(one.body, two.body);
    let three = api.post("/v1/webhook_endpoints", key, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fother&enabled_events[]=*", Some("order-1")).await;
    assert_eq!((three.status, three.body["error"]["type"].as_str()), (400, Some("idempotency_error")));
}

#[tokio::test]
async fn at_most_16_endpoints_per_account_and_mode() {
    let (api, a) = api_and_key().await;
    let key = a.test_key.expose();
    for i in 0..16 {
        create(&api, key, &format!("url=http%3A%2F%2F127.0.0.1%3A9999%2F{i}&enabled_events[]=*")).await;
    }
    let over = api.post("/v1/webhook_endpoints", key, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fx&enabled_events[]=*", None).await;
    assert_eq!((over.status, over.body["error"]["code"].as_str()), (400, Some("resource_limit_exceeded")));
}

#[tokio::test]
async fn private_addresses_are_refused_outside_local_dev() {
    let stack = stack().await;
    let mut functions = stack.functions();
    std::sync::Arc::make_mut(&mut functions.api).policy = UrlPolicy::STRICT;
    let api = Api::start_with(functions).await;
    let a = account(&stack).await;
    for url in [
        "http://127.0.0.1:4242/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:4242/hook",
        "http://localhost:4242/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ] {
        let body = format!("{{\"url\":\"{url}\",\"enabled_events\":[\"*\"]}}");
        let r = api.post("/v1/webhook_endpoints", a.test_key.expose(), &body, None).await;
        assert_eq!(r.status, 400, "{url}");
        assert_eq!(r.body["error"]["code"], "url_invalid", "{url}");
    }
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_and_resend_delivers_again() {
    let (stack, _pollers) = running(&[1]).await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let key = a.test_key.expose();
    let r = Receiver::start(vec![]).await;
    let created = api.post("/v1/webhook_endpoints", key, &format!("{{\"url\":\"{}\",\"enabled_events\":[\"payment.*\"]}}", r.url), None).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let old = created.body["secret"].as_str().unwrap().to_owned();
    let rotated = api.post(&format!("/v1/webhook_endpoints/{id}/rotate_secret"), key, "", None).await;
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    r.expect_secrets(&[&old, &new]);
    let event = emit(&stack, &p, EventType::PaymentSucceeded).await;
    let got = r.wait_for(1).await;
    assert_eq!(got[0].v1_count, 2);
    assert!(got[0].verified, "verifies with the old and with the new secret");

    let ep_id = id.parse().unwrap();
    let ep = stack.endpoints().get(&p, &ep_id).await.unwrap().unwrap();
    assert_eq!(settled(&stack, &p, &event, &ep).await, Some(DeliveryStatus::Succeeded));
    let resent = api.post(&format!("/v1/webhook_endpoints/{id}/resend"), key, &format!("event={}", event.id), None).await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    assert_eq!(r.wait_for(2).await.len(), 2);
    assert_eq!(pending_becomes(&stack, &p, &event, 0).await, 0);
    let missing = api.post(&format!("/v1/webhook_endpoints/{id}/resend"), key, "event=evt_nope", None).await;
    assert_eq!((missing.status, missing.body["error"]["param"].as_str()), (404, Some("event")));
}

#[tokio::test]
async fn endpoint_stats_refuse_bad_windows_and_other_accounts() {
    let (api, a) = api_and_key().await;
    let key = a.test_key.expose();
    let id = create(&api, key, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fa&enabled_events[]=*").await;
    let fresh = api.get(&format!("/v1/webhook_endpoints/{id}/stats"), Some(key)).await;
    assert_eq!((fresh.status, fresh.body["attempts"].as_u64(), fresh.body["has_more"].as_bool()), (200, Some(0), Some(false)), "{}", fresh.body);
    for (query, param) in
        [("since=yesterday", "since"), ("since=1", "since"), ("interval=week", "interval"), ("until=1&since=2", "since"), ("limit=3", "limit")]
    {
        let r = api.get(&format!("/v1/webhook_endpoints/{id}/stats?{query}"), Some(key)).await;
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some(param)), "{query}: {}", r.body);
    }
    let other = account(&stack().await).await;
    let r = api.get(&format!("/v1/webhook_endpoints/{id}/stats"), Some(other.test_key.expose())).await;
    assert_eq!(r.status, 404);
    let r = api.get(&format!("/v1/webhook_endpoints/{id}/stats"), Some(a.live_key.expose())).await;
    assert_eq!(r.status, 404, "a live key does not see test endpoints");
}

#[tokio::test]
async fn delivery_refuses_private_addresses_at_connect_time() {
    // Endpoints stored as if they had passed the checks at creation (say the name resolved to a
    // public address then): a strict deliverer still refuses loopback, by name or by address.
    let stack = isolated_stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let r = Receiver::start(vec![]).await;
    let port = r.url.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();
    let mut eps = Vec::new();
    for url in [format!("http://localhost:{port}/webhooks"), format!("http://127.0.0.1:{port}/webhooks")] {
        let ep = new_endpoint(p.mode, url.parse().unwrap(), EnabledEvents::All, None);
        assert_eq!(stack.endpoints().create(&p, &ep).await.unwrap(), Created::Created);
        eps.push(ep);
    }
    let event = emit(&stack, &p, EventType::PaymentCreated).await;
    stack.fanout().fan_out(&p, event.id).await.unwrap();
    let mut strict = deliverer(&stack, &[1]);
    strict.client = WebhookClient::with_timeout(UrlPolicy::STRICT, Duration::from_secs(5));
    let response = strict.handle(first_receives(&p, &event, &eps)).await;
    // Both failed, to be retried: the attempts are recorded and the retries wait in DynamoDB (the
    // messages are acknowledged; the scheduler enqueues each retry when it is due).
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    for ep in &eps {
        let state = stack.deliveries().state(&p, event.id, &ep.id).await.unwrap().unwrap();
        assert_eq!((state.status, state.attempts), (DeliveryStatus::Pending, 1));
        assert!(state.next_attempt_at > 0, "a retry is scheduled");
    }
    assert!(r.received().is_empty(), "nothing reached the loopback receiver");
    let attempts = stack.deliveries().attempts(&p, event.id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        let e = a.error.as_deref().unwrap();
        assert!(e.contains("no public address") || e.contains("not public"), "{e}");
    }
}

#[tokio::test]
async fn endpoints_take_events_as_the_reference_sends_it() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let key = a.test_key.expose();
    // The reference's body, as its client code sends it.
    let body = serde_json::json!({"url": "http://127.0.0.1:9999/hooks", "events": ["subscription.created", "subscription.canceled"]});
    assert!(integration_tests::openapi::schema_accepts("EndpointCreate", &body));
    let created = api.post("/v1/webhook_endpoints", key, &body.to_string(), None).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["enabled_events"], serde_json::json!(["subscription.created", "subscription.canceled"]));
    assert!(created.body.get("events").is_none(), "responses say enabled_events");
    for form in
        ["url=http%3A%2F%2F127.0.0.1%3A9999%2Fa&events[]=payment.*", "url=http%3A%2F%2F127.0.0.1%3A9999%2Fb&events[0]=payment.*&events[1]=refund.created"]
    {
        let r = api.post("/v1/webhook_endpoints", key, form, None).await;
        assert_eq!(r.status, 200, "{form}: {}", r.body);
        assert!(r.body["enabled_events"].as_array().unwrap().contains(&serde_json::json!("payment.*")), "{}", r.body);
    }
    // Both names: a 400 naming `events`, in JSON and in forms, on create and on update.
    let both = serde_json::json!({"url": "http://127.0.0.1:9999/c", "events": ["*"], "enabled_events": ["*"]});
    assert!(!integration_tests::openapi::schema_accepts("EndpointCreate", &both), "the spec says one of the two");
    let r = api.post("/v1/webhook_endpoints", key, &both.to_string(), None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str(), r.body["error"]["param"].as_str()), (400, Some("parameters_exclusive"), Some("events")));
    let r = api.post("/v1/webhook_endpoints", key, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fd&events[]=*&enabled_events[]=*", None).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("events")));
    let path = format!("/v1/webhook_endpoints/{}", created.body["id"].as_str().unwrap());
    let updated = api.post(&path, key, r#"{"events": ["payout.*"]}"#, None).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["enabled_events"], serde_json::json!(["payout.*"]));
    let r = api.post(&path, key, "events[]=*&enabled_events[]=*", None).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("events")));
    let bad = api.post(&path, key, "events[]=payment.exploded", None).await;
    assert_eq!((bad.status, bad.body["error"]["param"].as_str()), (400, Some("events")), "named as it was given");
}

/// Endpoint writes are versioned: a write based on what it read never undoes a write that came in
/// between. A stale copy cannot bring back a rotated secret or re-enable an endpoint a 410
/// disabled; concurrent updates and a rotation through the API all land.
#[tokio::test]
async fn a_concurrent_write_never_undoes_a_rotation_or_a_disable() {
    use paygate::store::endpoints::Replaced;
    let (api, a) = api_and_key().await;
    let stack = stack().await;
    let p = test_principal(&a);
    let key = a.test_key.expose();
    let id = create(&api, key, "url=http://127.0.0.1:4242/hook&enabled_events[]=*").await;
    let ep_id = id.parse().unwrap();
    let stale = stack.endpoints().get(&p, &ep_id).await.unwrap().unwrap();

    let rotated = api.post(&format!("/v1/webhook_endpoints/{id}/rotate_secret"), key, "", None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(stack.endpoints().replace(&p, &stale).await.unwrap(), Replaced::Changed, "the stale copy is refused");
    let now = stack.endpoints().get(&p, &ep_id).await.unwrap().unwrap();
    assert_eq!(now.secret.expose(), rotated.body["secret"].as_str().unwrap(), "the rotated secret stands");

    // A 410 disables (set_status): a copy read before it cannot enable the endpoint again.
    let before = stack.endpoints().get(&p, &ep_id).await.unwrap().unwrap();
    stack.endpoints().set_status(&p, &ep_id, EndpointStatus::Disabled).await.unwrap();
    assert_eq!(stack.endpoints().replace(&p, &before).await.unwrap(), Replaced::Changed);
    assert_eq!(stack.endpoints().get(&p, &ep_id).await.unwrap().unwrap().status, EndpointStatus::Disabled);

    // Through the API, eight updates and a rotation at once: every one lands, none is undone.
    let (path, rotate) = (format!("/v1/webhook_endpoints/{id}"), format!("/v1/webhook_endpoints/{id}/rotate_secret"));
    let forms: Vec<String> = (0..8).map(|i| format!("description=d{i}")).collect();
    let updates = forms.iter().map(|f| api.post(&path, key, f, None));
    let rotation = api.post(&rotate, key, "", None);
    let (answers, rotation) = futures::join!(futures::future::join_all(updates), rotation);
    assert!(answers.iter().all(|r| r.status == 200), "{:?}", answers.iter().map(|r| &r.body).collect::<Vec<_>>());
    assert_eq!(rotation.status, 200, "{}", rotation.body);
    let last = stack.endpoints().get(&p, &ep_id).await.unwrap().unwrap();
    assert_eq!(last.secret.expose(), rotation.body["secret"].as_str().unwrap(), "the rotation survived the updates");
    assert!(last.description.as_deref().is_some_and(|d| d.starts_with('d')));
    assert_eq!(last.version, now.version + 1 + 8 + 1, "every write counted once: the disable, eight updates, a rotation");
}

/// `GET /v1/events/{id}/deliveries` pages like every list: 25 attempts, oldest first, 10 at a time
/// with `has_more`, forward with `starting_after` and back with `ending_before` an attempt's id.
#[tokio::test]
async fn an_events_deliveries_page_oldest_first() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use paygate::store::deliveries::Attempt;
    let (api, a) = api_and_key().await;
    let stack = stack().await;
    let p = test_principal(&a);
    let key = a.test_key.expose();
    let event = emit(&stack, &p, EventType::PaymentSucceeded).await;
    let endpoint = paygate::EndpointId::generate();
    for i in 0..25u32 {
        let attempt = Attempt {
            event_id: event.id,
            endpoint_id: endpoint,
            attempt: i + 1,
            succeeded: i == 24,
            http_status: Some(if i == 24 { 200 } else { 500 }),
            latency_ms: 5,
            error: None,
            response_body: None,
            created_at: paygate::ids::unix_now(),
            next_retry_at: None,
        };
        stack
            .clients
            .dynamodb
            .put_item()
            .table_name(&stack.config.deliveries_table)
            .item("pk", AttributeValue::S(format!("{}#{}", p.partition(), event.id)))
            .item("sk", AttributeValue::S(format!("{endpoint}#attempt#{}", ulid::Ulid::generate())))
            .item("expires_at", AttributeValue::N("9999999999".into()))
            .item("attempt", AttributeValue::M(serde_dynamo::to_item(&attempt).unwrap()))
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let path = format!("/v1/events/{}/deliveries", event.id);
    let page = |query: String| {
        let api = &api;
        let path = &path;
        async move {
            let r = api.get(&format!("{path}{query}"), Some(key)).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let numbers: Vec<u64> = r.body["data"].as_array().unwrap().iter().map(|d| d["attempt"].as_u64().unwrap()).collect();
            let ids: Vec<String> = r.body["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
            (numbers, ids, r.body["has_more"].as_bool().unwrap())
        }
    };
    let (first, ids, more) = page(String::new()).await;
    assert_eq!((first, more), ((1..=10).collect::<Vec<_>>(), true), "oldest first, 10 by default");
    let (second, ids2, more) = page(format!("?starting_after={}", ids[9])).await;
    assert_eq!((second, more), ((11..=20).collect::<Vec<_>>(), true));
    let (third, ids3, more) = page(format!("?starting_after={}&limit=10", ids2[9])).await;
    assert_eq!((third, more), ((21..=25).collect::<Vec<_>>(), false));
    let (back, _, more) = page(format!("?ending_before={}&limit=3", ids3[0])).await;
    assert_eq!((back, more), (vec![18, 19, 20], true), "the three just before, still oldest first");
    let (all, _, more) = page("?limit=100".to_owned()).await;
    assert_eq!((all.len(), more), (25, false));
    let bad = api.get(&format!("{path}?starting_after=evt_nope"), Some(key)).await;
    assert_eq!((bad.status, bad.body["error"]["param"].as_str()), (400, Some("starting_after")), "{}", bad.body);
}
