//! Tenant isolation on the real local servers: waiting retries live in DynamoDB, not as in-flight
//! SQS messages. Every test runs `paygate dev`'s pollers and scheduler on private tables and
//! queues, with real receivers on 127.0.0.1. Nothing is timed: conditions are counted, and waited
//! on with generous bounds.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use integration_tests::receiver::{Answer, Receiver};
use integration_tests::{account, eventually, isolated_stack, publish, test_principal};
use paygate::store::deliveries::DeliveryStatus;
use paygate::store::endpoints::Created;
use paygate::webhook::deliver::{Deliverer, RetrySchedule};
use paygate::webhook::endpoints::{EnabledEvents, Endpoint, new_endpoint};
use paygate::webhook::ssrf::WebhookClient;
use paygate::{EventType, Principal};
use paygate_cli::pollers;
use paygate_cli::stack::Stack;

fn deliverer(stack: &Stack, schedule: &[u64]) -> Deliverer {
    let mut d = stack.deliverer(RetrySchedule { live: schedule.to_vec(), test: schedule.to_vec() });
    d.client = WebhookClient::with_timeout(stack.policy, Duration::from_secs(5));
    d
}

async fn endpoint(stack: &Stack, p: &Principal, r: &Receiver) -> Endpoint {
    let ep = new_endpoint(p.mode, r.url.parse().unwrap(), EnabledEvents::All, None);
    assert_eq!(stack.endpoints().create(p, &ep).await.unwrap(), Created::Created);
    r.expect_secrets(&[ep.secret.expose()]);
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
