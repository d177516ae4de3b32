//! The delivery queue and the slow lane → `deliver-webhooks`, as Lambda's SQS mappings do:
//! batches of [`QUEUE_BATCH`], up to each mapping's concurrency at once, served fairly across
//! tenants.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use paygate::webhook::deliver::Deliverer;
use tokio::sync::{Notify, Semaphore};

use super::{Backoff, QUEUE_BATCH, QUEUE_IDLE};
use crate::stack::Stack;

/// One queue and its mapping: the delivery queue, or the slow lane.
pub(super) struct Lane {
    pub what: &'static str,
    pub url: String,
    /// Batches at once: the mapping's `MaximumConcurrency`.
    pub concurrency: usize,
    /// Rung when a batch of this lane has been handled: the delivery queue's wakes the slow lane's
    /// poller (the batch may have moved deliveries there).
    pub after_batch: Option<Arc<Notify>>,
}

fn to_message(m: aws_sdk_sqs::types::Message, arn: &str) -> SqsMessage {
    let mut msg = SqsMessage::default();
    msg.message_id = m.message_id;
    msg.receipt_handle = m.receipt_handle;
    msg.body = m.body;
    msg.attributes = m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
    msg.message_attributes = m
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let mut a = aws_lambda_events::sqs::SqsMessageAttribute::default();
            a.string_value = v.string_value;
            a.data_type = Some(v.data_type);
            (k, a)
        })
        .collect();
    msg.event_source = Some("aws:sqs".to_owned());
    msg.event_source_arn = Some(arn.to_owned());
    msg
}

/// Receives from a lane's queue, ten messages at a time, and hands batches to the deliverer while
/// it receives more, up to the lane's concurrency in batches at once (as Lambda's mapping does);
/// when the queue is empty it waits [`QUEUE_IDLE`] or until woken by `sent`. (Not a long poll: the
/// local SQS server answers those in 100 ms steps, and a wake-up cannot cancel one without risking
/// messages handed to a request nobody reads.)
///
/// **Fair, as the deployed queue is.** In AWS the delivery queue is an SQS fair queue (every
/// message's `MessageGroupId` is its tenant): a tenant with many messages in flight does not delay
/// the others. The local SQS server keeps plain order, so this poller does what the fair queue does:
/// it reads ahead (up to [`READ_AHEAD`] messages) and builds each batch from the tenants with the
/// fewest messages in flight, so a quiet merchant's messages go out before a noisy one's backlog.
///
/// A local SQS server that restarted has forgotten its queues: they are created again (the pending
/// deliveries are in DynamoDB, and the sweeper sends them again).
pub(super) async fn queue_poller(stack: Stack, deliverer: Deliverer, lane: Lane, sent: Arc<Notify>, handled: Arc<Notify>) {
    let (sqs, queue_url) = (&stack.clients.sqs, &lane.url);
    // The deliverer tells the lanes apart by their queue's ARN.
    let arn = paygate::aws::local_queue_arn(queue_url);
    let mut backoff = Backoff::new(lane.what);
    let slots = Arc::new(Semaphore::new(lane.concurrency));
    let fair = Arc::new(std::sync::Mutex::new(Fair::default()));
    // A batch finished: a slot is free.
    let done = Arc::new(Notify::new());
    // Batches run in a set this poller owns: when it is aborted, so are they.
    let mut batches = tokio::task::JoinSet::new();
    loop {
        let room = fair.lock().expect("fair lock").buffered < READ_AHEAD;
        let mut got = 0;
        if room {
            match sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(QUEUE_BATCH)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
            {
                Ok(out) => {
                    backoff.reset();
                    let messages: Vec<SqsMessage> = out.messages.unwrap_or_default().into_iter().map(|m| to_message(m, &arn)).collect();
                    got = messages.len();
                    fair.lock().expect("fair lock").add(messages);
                }
                Err(e) => {
                    if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) {
                        tracing::warn!(queue = lane.what, "the queue is gone (the SQS server restarted?); creating the queues again");
                        if let Err(e) = stack.provision().await {
                            tracing::warn!(error = %e, "could not create the queues");
                        }
                    }
                    backoff.fail(&aws_sdk_sqs::error::DisplayErrorContext(e).to_string()).await;
                }
            }
        }
        while batches.try_join_next().is_some() {}
        // As many batches as there are free slots, the fairest first.
        loop {
            let Ok(slot) = slots.clone().try_acquire_owned() else { break };
            let Some(batch) = fair.lock().expect("fair lock").next_batch() else { break };
            let (deliverer, sqs, queue_url, fair, done, handled, after_batch) =
                (deliverer.clone(), sqs.clone(), queue_url.clone(), fair.clone(), done.clone(), handled.clone(), lane.after_batch.clone());
            batches.spawn(async move {
                let groups: Vec<String> = batch.iter().map(group_of).collect();
                invoke_deliverer(&deliverer, &sqs, &queue_url, batch).await;
                fair.lock().expect("fair lock").finished(&groups);
                drop(slot);
                done.notify_one();
                handled.notify_one();
                if let Some(n) = after_batch {
                    n.notify_one();
                }
            });
        }
        if got == 0 {
            let idle = fair.lock().expect("fair lock").buffered == 0;
            if idle {
                tokio::select! {
                    _ = sent.notified() => {}
                    _ = tokio::time::sleep(QUEUE_IDLE) => {}
                }
            } else {
                // Messages read ahead, every slot busy (or nothing more to read): until a batch ends.
                tokio::select! {
                    _ = done.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}

/// Messages the queue poller reads ahead of its free batch slots, at most: enough to see past one
/// tenant's backlog to the next tenant's messages (each is invisible for the queue's visibility
/// timeout meanwhile, 180 s, far longer than a backlog this size waits here).
pub const READ_AHEAD: usize = 1_000;

/// The tenant of a delivery message (its `MessageGroupId`).
fn group_of(m: &SqsMessage) -> String {
    m.attributes.get("MessageGroupId").cloned().unwrap_or_default()
}

/// What an SQS fair queue does, for the local poller: messages read ahead, by tenant, and each
/// tenant's messages in flight.
#[derive(Default)]
struct Fair {
    waiting: HashMap<String, std::collections::VecDeque<SqsMessage>>,
    in_flight: HashMap<String, usize>,
    buffered: usize,
}

impl Fair {
    fn add(&mut self, messages: Vec<SqsMessage>) {
        for m in messages {
            self.waiting.entry(group_of(&m)).or_default().push_back(m);
            self.buffered += 1;
        }
    }

    /// Up to [`QUEUE_BATCH`] messages, each from the tenant with the fewest in flight then.
    fn next_batch(&mut self) -> Option<Vec<SqsMessage>> {
        let mut batch = Vec::new();
        while batch.len() < QUEUE_BATCH as usize {
            let Some(group) = self.waiting.keys().min_by_key(|g| self.in_flight.get(*g).copied().unwrap_or(0)).cloned() else { break };
            let queue = self.waiting.get_mut(&group).expect("a waiting group");
            batch.extend(queue.pop_front());
            if queue.is_empty() {
                self.waiting.remove(&group);
            }
            self.buffered -= 1;
            *self.in_flight.entry(group).or_default() += 1;
        }
        (!batch.is_empty()).then_some(batch)
    }

    fn finished(&mut self, groups: &[String]) {
        for g in groups {
            if let Some(n) = self.in_flight.get_mut(g) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.in_flight.remove(g);
                }
            }
        }
    }
}

/// One batch through the deliverer; deletes what it did not report failed.
async fn invoke_deliverer(deliverer: &Deliverer, sqs: &aws_sdk_sqs::Client, queue_url: &str, messages: Vec<SqsMessage>) {
    let mut event = SqsEvent::default();
    event.records = messages.clone();
    let response = deliverer.handle(event).await;
    let failed: HashSet<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
        .filter_map(|(i, m)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(m.receipt_handle.clone()?).build().ok())
        .collect();
    if !entries.is_empty() {
        // Not deleted: the messages come back and are acknowledged then as duplicates.
        if let Err(e) = sqs.delete_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "delete_message_batch failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(group: &str, i: usize) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("{group}-{i}"));
        m.attributes.insert("MessageGroupId".to_owned(), group.to_owned());
        m
    }

    /// A quiet tenant read behind a noisy tenant's backlog goes out in the next batch, not after it.
    #[test]
    fn batches_serve_the_tenant_with_the_fewest_in_flight_first() {
        let mut fair = Fair::default();
        fair.add((0..100).map(|i| message("noisy", i)).collect());
        let first = fair.next_batch().unwrap();
        assert!(first.iter().all(|m| group_of(m) == "noisy") && first.len() == 10);
        fair.add((0..3).map(|i| message("quiet", i)).collect());
        let second = fair.next_batch().unwrap();
        let quiet = second.iter().filter(|m| group_of(m) == "quiet").count();
        assert_eq!(quiet, 3, "the quiet tenant's three, in the very next batch: {:?}", second.iter().map(|m| m.message_id.clone()).collect::<Vec<_>>());
        assert_eq!(second.len(), 10, "topped up with the noisy tenant's");
        assert_eq!(second.iter().take(3).filter(|m| group_of(m) == "quiet").count(), 3, "the quiet tenant's first");
        fair.finished(&first.iter().map(group_of).collect::<Vec<_>>());
        assert_eq!(fair.buffered, 100 + 3 - 20);
        let mut left = 0;
        while let Some(b) = fair.next_batch() {
            left += b.len();
        }
        assert_eq!(left, 83, "nothing lost");
    }
}
