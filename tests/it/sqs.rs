//! The delivery queue on the SQS server, created from template.yaml: receive counts and redrive.

use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use integration_tests::{eventually, stack};
use paygate_cli::stack::provision::{Resources, TEMPLATE, default_name, provision};

#[tokio::test]
async fn messages_count_receives_and_land_in_the_dlq_after_max_receive_count() {
    let stack = stack().await;
    // Private copies of the template's queues, so other tests' messages cannot interfere.
    let suffix = ulid::Ulid::generate().to_string().to_lowercase();
    let queues = provision(&stack.clients, &|id| format!("{}-{suffix}", default_name(id))).await.unwrap();
    let queue = &queues.queue_urls["DeliveryQueue"];
    let dlq = &queues.queue_urls["DeliveryDeadLetterQueue"];
    let max = Resources::from_template(TEMPLATE).unwrap().queue("DeliveryQueue").unwrap().redrive_policy.as_ref().unwrap().max_receive_count;
    let sqs = &stack.clients.sqs;

    sqs.send_message().queue_url(queue).message_body(r#"{"event_id":"evt_x"}"#).send().await.unwrap();
    for n in 1..=max {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        let messages = out.messages();
        assert_eq!(messages.len(), 1, "receive {n}");
        let count = messages[0].attributes().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount].clone();
        assert_eq!(count, n.to_string());
        // Not acknowledged: make it visible again at once, as a failed delivery with no backoff would.
        sqs.change_message_visibility().queue_url(queue).receipt_handle(messages[0].receipt_handle().unwrap()).visibility_timeout(0).send().await.unwrap();
    }
    let out = sqs.receive_message().queue_url(queue).wait_time_seconds(1).send().await.unwrap();
    assert!(out.messages().is_empty(), "after {max} receives the message leaves the queue");
    let moved = eventually(Duration::from_secs(10), || async {
        let out = sqs.receive_message().queue_url(dlq).wait_time_seconds(1).send().await.unwrap();
        Some(out.messages().iter().filter_map(|m| m.body().map(str::to_owned)).collect::<Vec<_>>()).filter(|m| !m.is_empty())
    })
    .await
    .unwrap_or_default();
    assert_eq!(moved, vec![r#"{"event_id":"evt_x"}"#.to_owned()], "the message is in the DLQ, nothing lost");
}
