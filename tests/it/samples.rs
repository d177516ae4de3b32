//! Every file in `events/` is a real Lambda event shape: each is deserialised into its function's
//! `aws_lambda_events` type (or `lambda_http`'s request, as the runtime does) and run through the
//! function's handler against the local servers, seeded with the account, key, event and endpoint
//! the samples name.

use std::collections::BTreeSet;
use std::path::Path;

use aws_lambda_events::sqs::SqsEvent;
use integration_tests::isolated_stack;
use integration_tests::receiver::Receiver;
use lambda_http::request::LambdaRequest;
use paygate::http::{lambda, routes};
use paygate::store::deliveries::DeliveryStatus;
use paygate::webhook::deliver::RetrySchedule;
use paygate::{EventId, Principal};
use paygate_cli::stack::Stack;
use serde_json::Value;

use paygate_cli::samples::{ENDPOINT, EVENT};

fn read(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An API Gateway (HTTP API, payload 2.0) sample through the service its function's `main` runs
/// (the function that serves the sample's route key), as the runtime would.
async fn http(stack: &Stack, name: &str) -> (u16, Value) {
    use tower::ServiceExt;
    let sample = read(name);
    let route_key = sample["routeKey"].as_str().unwrap().to_owned();
    let function = routes().into_iter().find(|r| r.key() == route_key).unwrap_or_else(|| panic!("{name}: no route {route_key}")).function;
    let req: lambda_http::Request = serde_json::from_value::<LambdaRequest>(sample).unwrap().into();
    let response = lambda(std::sync::Arc::new(stack.api()), function).oneshot(req).await.unwrap();
    assert!(response.headers().contains_key("request-id"), "{name}");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}")))
}

async fn seed(stack: &Stack, receiver: &Receiver) -> Principal {
    let (p, endpoint) = paygate_cli::samples::seed(stack, &receiver.url).await.unwrap();
    receiver.expect_secrets(&[endpoint.secret.expose()]);
    p
}

#[tokio::test]
async fn every_sample_event_runs_through_its_function() {
    let stack = isolated_stack().await;
    let receiver = Receiver::start(vec![]).await;
    let p = seed(&stack, &receiver).await;
    let mut exercised = BTreeSet::new();
    let mut ran = |name: &'static str| {
        exercised.insert(name);
        name
    };

    // API Gateway HTTP API payloads.
    let (s, b) = http(&stack, ran("get-event.apigw.json")).await;
    assert_eq!((s, b["id"].as_str()), (200, Some(EVENT)));
    let (s, b) = http(&stack, ran("get-event-not-found.apigw.json")).await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("resource_missing")));
    let (s, b) = http(&stack, ran("list-events-by-type.apigw.json")).await;
    assert_eq!(s, 200);
    assert_eq!(b["data"][0]["id"], EVENT);
    assert!(b["data"].as_array().unwrap().iter().all(|e| e["type"] == "payment.succeeded"));
    let (s, b) = http(&stack, ran("list-events-bad-limit.apigw.json")).await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("limit")));
    let (s, b) = http(&stack, ran("webhook-endpoints-create.apigw.json")).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["secret"].as_str().unwrap().starts_with("whsec_"));
    let (s, b) = http(&stack, ran("webhook-endpoints-list.apigw.json")).await;
    assert_eq!((s, b["data"].as_array().unwrap().len()), (200, 2));

    // Each function authenticates its caller: an unknown key is a Stripe-style 401.
    let (s, b) = http(&stack, ran("get-event-unknown-key.apigw.json")).await;
    assert_eq!((s, b["error"]["code"].as_str()), (401, Some("api_key_invalid")));

    // Direct invocation of ingest-event.
    let event = stack.publisher().handle(read(ran("ingest-event.json"))).await.unwrap();
    assert_eq!(event["type"], "payment.succeeded");
    assert_eq!(event["request"]["idempotency_key"], "order_1234");

    // The DynamoDB stream → fanout: one message for the sample endpoint (the one created above is
    // newer than the event, so it gets nothing).
    let batch: aws_lambda_events::dynamodb::Event = serde_json::from_value(read(ran("fanout-insert.dynamodb-stream.json"))).unwrap();
    let response = stack.fanout().handle(batch).await;
    assert!(response.batch_item_failures.is_empty());
    let id: EventId = EVENT.parse().unwrap();
    assert_eq!(stack.events().get(&p, id).await.unwrap().unwrap().pending_webhooks, 1);
    let queued =
        stack.clients.sqs.receive_message().queue_url(&stack.config.delivery_queue_url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
    assert_eq!(queued.messages().len(), 1);

    // The SQS batch → deliver-webhooks: the same message twice (at-least-once), delivered, counted once.
    let batch: SqsEvent = serde_json::from_value(read(ran("deliver-batch.sqs.json"))).unwrap();
    let response = stack.deliverer(RetrySchedule { live: vec![1], test: vec![1] }).handle(batch).await;
    assert!(response.batch_item_failures.is_empty());
    let got = receiver.received();
    assert!(!got.is_empty() && got.iter().all(|r| r.verified));
    let endpoint = ENDPOINT.parse().unwrap();
    assert_eq!(stack.deliveries().status(&p, id, &endpoint).await.unwrap(), Some(DeliveryStatus::Succeeded));
    assert_eq!(stack.events().get(&p, id).await.unwrap().unwrap().pending_webhooks, 0);

    // The scheduled sweeper (EventBridge Scheduler invokes it with an empty input): nothing is overdue.
    let _input = read(ran("sweeper.schedule.json"));
    assert_eq!(stack.sweeper().sweep().await.unwrap(), 0);

    // The attempts route, after the delivery.
    let (s, b) = http(&stack, ran("event-deliveries.apigw.json")).await;
    assert_eq!(s, 200);
    assert!(!b["data"].as_array().unwrap().is_empty());

    // Every file in events/ was run.
    let all: BTreeSet<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let exercised: BTreeSet<String> = exercised.into_iter().map(str::to_owned).collect();
    assert_eq!(all, exercised, "every sample in events/ has a run here");
}
