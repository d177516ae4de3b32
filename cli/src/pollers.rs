//! What Lambda's event source mappings and the EventBridge schedule do, for `paygate dev` and the
//! tests: the Events table's stream feeds `fanout`, the delivery queue feeds `deliver-webhooks`, and
//! the sweeper runs on a timer, with the same event shapes, batch sizes and partial batch failures.
//!
//! No poller ever drops a batch: a failure is retried with capped backoff until the servers are
//! back, logged once per backoff step. A stream record that cannot be read at all is logged at error
//! level, parked in the fan-out failure queue, and skipped (its deliveries are the sweeper's).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use paygate::aws::Target;
use paygate::webhook::deliver::Deliverer;
use paygate::webhook::fanout::Fanout;
use paygate::webhook::sweeper::{Sweeper, TICK as SWEEP_TICK};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::stack::Stack;

/// Stream batch size (the template's, too).
pub const STREAM_BATCH: i32 = 100;
/// Queue batch size (the template's, too).
pub const QUEUE_BATCH: i32 = 10;
/// Batches of the delivery queue handled at once: the deployed mapping's `MaximumConcurrency`
/// (a test holds the two equal). A slow batch holds one of them, never the queue.
pub const QUEUE_CONCURRENCY: usize = 50;
/// How long an idle stream poller waits before reading its shards again, unless its doorbell rings
/// (see `doorbell`): once a second. A poll costs DynamoDB Local several milliseconds of CPU
/// (`make bench` measures idle CPU with and without the pollers), and writers that ring are read at
/// once.
pub const STREAM_IDLE: Duration = Duration::from_secs(1);
/// How long an idle queue poller waits before receiving again, unless woken sooner: the pollers
/// wake it whenever they have just sent deliveries (fan-out, sweep), so only messages sent by
/// another process or coming back after their retry delay wait for this.
const QUEUE_IDLE: Duration = Duration::from_millis(500);
/// Backoff of a failing poller: from the first step, doubling, up to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The pollers and the sweeper; aborted when dropped.
pub struct Pollers {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Pollers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the pollers and the sweeper for a stack. `from_start`: read the stream's existing records
/// too (a fresh table); otherwise only what is written from now on, as a new event source mapping would.
pub async fn start(stack: &Stack, deliverer: Deliverer, from_start: bool) -> anyhow::Result<Pollers> {
    // "Deliveries were just sent": wakes the queue poller from its idle wait.
    let sent = Arc::new(Notify::new());
    // "A batch of deliveries was handled" (it may have scheduled retries or holds): wakes the
    // sweeper to look at the next due time again.
    let handled = Arc::new(Notify::new());
    let stream = stream_poller(stack, stack.fanout(), from_start, sent.clone()).await?;
    let queue = tokio::spawn(queue_poller(stack.clone(), deliverer, sent.clone(), handled.clone()));
    let sweeper = tokio::spawn(sweep_every(stack.sweeper(), sent, handled));
    Ok(Pollers { tasks: vec![stream, queue, sweeper] })
}

/// Capped exponential backoff that logs each failure once, with the wait that follows it.
struct Backoff {
    what: &'static str,
    next: Duration,
}

impl Backoff {
    fn new(what: &'static str) -> Self {
        Backoff { what, next: BACKOFF_FIRST }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }

    async fn fail(&mut self, error: &str) {
        tracing::warn!(what = self.what, error, retry_in_ms = self.next.as_millis() as u64, "failed; retrying");
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(BACKOFF_CAP);
    }
}

/// The longest `paygate dev`'s sweeper sleeps when nothing is due sooner.
const SWEEP_IDLE: Duration = Duration::from_secs(30);

/// The scheduler's loop, for ever: a sweep, then sleep until the next pending delivery is due (at
/// most [`SWEEP_IDLE`], at least [`SWEEP_TICK`] between two sweeps) or until a batch of deliveries
/// was handled (`handled`: it may have scheduled an earlier retry). So a due retry is enqueued
/// within about a second, as deployed (where the sweeper sweeps every [`SWEEP_TICK`]), and an idle
/// stack costs DynamoDB a few small Queries every half minute instead of every second.
async fn sweep_every(sweeper: Sweeper, sent: Arc<Notify>, handled: Arc<Notify>) {
    loop {
        let started = tokio::time::Instant::now();
        match sweeper.sweep().await {
            Ok(0) => {}
            Ok(_) => sent.notify_one(),
            Err(e) => tracing::warn!(error = %e, "sweep failed; the next one tries again"),
        }
        let now = paygate::ids::unix_now();
        let wait = match sweeper.next_due().await {
            Ok(Some(due)) => Duration::from_secs(due.saturating_sub(now)).min(SWEEP_IDLE),
            Ok(None) => SWEEP_IDLE,
            Err(_) => SWEEP_TICK,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = handled.notified() => {}
        }
        tokio::time::sleep_until(started + SWEEP_TICK).await;
    }
}

fn to_record(r: aws_sdk_dynamodbstreams::types::Record) -> EventRecord {
    let mut record = EventRecord::default();
    record.event_name = r.event_name.map(|n| n.as_str().to_owned()).unwrap_or_default();
    record.event_id = r.event_id.unwrap_or_default();
    record.event_source = Some("aws:dynamodb".to_owned());
    record.aws_region = "us-east-1".to_owned();
    if let Some(d) = r.dynamodb {
        record.change.sequence_number = d.sequence_number;
        record.change.size_bytes = d.size_bytes.unwrap_or_default();
        record.change.keys = serde_dynamo::Item::from(d.keys.unwrap_or_default());
        record.change.new_image = serde_dynamo::Item::from(d.new_image.unwrap_or_default());
        record.change.old_image = serde_dynamo::Item::from(d.old_image.unwrap_or_default());
    }
    record
}

/// A DynamoDB Streams client for the stack's DynamoDB, with the same timeouts as every client.
async fn streams_client(target: &Target) -> aws_sdk_dynamodbstreams::Client {
    let dynamodb = match target {
        Target::Local { dynamodb, .. } => dynamodb.clone(),
        Target::Emulator { endpoint, .. } => endpoint.clone(),
        Target::Aws => paygate::aws::LOCAL_DYNAMODB_URL.to_owned(),
    };
    let sdk = paygate::aws::local_sdk_config().await;
    aws_sdk_dynamodbstreams::Client::from_conf(aws_sdk_dynamodbstreams::config::Builder::from(&sdk).endpoint_url(dynamodb).build())
}

/// Where a shard is read from next.
struct Shard {
    iterator: Option<String>,
    last_sequence: Option<String>,
    /// For a shard that existed when the poller started: read from LATEST (dev) or TRIM_HORIZON (tests).
    from_start: bool,
    backoff: Backoff,
}

impl Shard {
    fn new(from_start: bool) -> Self {
        Shard { iterator: None, last_sequence: None, from_start, backoff: Backoff::new("stream shard") }
    }
}

/// One page of a shard: the records it could read, the raw JSON of those it could not, and where
/// the shard goes on.
struct Page {
    records: Vec<EventRecord>,
    unreadable: Vec<(Option<String>, serde_json::Value)>,
    next: Option<String>,
}

/// GetRecords. When the SDK cannot read the answer (DynamoDB Local writes an empty map as `{}` in
/// stream images, which no SDK accepts), the page is read from the raw JSON instead, record by
/// record, so one bad record is set aside rather than stalling the shard.
async fn get_records(streams: &aws_sdk_dynamodbstreams::Client, iterator: &str) -> anyhow::Result<Page> {
    match streams.get_records().shard_iterator(iterator).limit(STREAM_BATCH).send().await {
        Ok(o) => Ok(Page { records: o.records.unwrap_or_default().into_iter().map(to_record).collect(), unreadable: Vec::new(), next: o.next_shard_iterator }),
        // A 2xx answer the SDK could not read: read it ourselves.
        Err(e) if e.raw_response().is_some_and(|r| r.status().is_success()) => {
            let raw: serde_json::Value = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .and_then(|b| serde_json::from_slice(b).ok())
                .ok_or_else(|| anyhow!("GetRecords answered something that is not JSON"))?;
            let mut page = Page { records: Vec::new(), unreadable: Vec::new(), next: raw["NextShardIterator"].as_str().map(str::to_owned) };
            for record in raw["Records"].as_array().cloned().unwrap_or_default() {
                let sequence = record.pointer("/dynamodb/SequenceNumber").and_then(|s| s.as_str()).map(str::to_owned);
                match serde_json::from_value::<EventRecord>(record.clone()) {
                    Ok(r) => page.records.push(r),
                    Err(_) => page.unreadable.push((sequence, record)),
                }
            }
            Ok(page)
        }
        // A new stream's shard read before its first record (DynamoDB Local): nothing to read
        // yet; no next iterator, so a fresh one is asked for.
        Err(e) if e.as_service_error().is_some_and(|s| s.is_trimmed_data_access_exception()) => {
            Ok(Page { records: Vec::new(), unreadable: Vec::new(), next: None })
        }
        Err(e) => Err(anyhow!("{}", e.into_service_error())),
    }
}

/// Logs an unreadable stream record at error level and parks it in the fan-out failure queue
/// (where the deployed mapping's on-failure destination puts what it gives up on).
async fn park(stack_sqs: &aws_sdk_sqs::Client, queue_url: &str, sequence: Option<String>, record: serde_json::Value) {
    tracing::error!(
        sequence_number = sequence.as_deref(),
        "unreadable stream record parked in the fan-out failure queue and skipped; the sweeper schedules its deliveries"
    );
    let sent = stack_sqs.send_message().queue_url(queue_url).message_body(record.to_string()).send().await;
    if let Err(e) = sent {
        tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), sequence_number = sequence.as_deref(), "could not park the stream record");
    }
}

/// Polls every shard of the Events table's stream: shards present at start from their start
/// (`from_start`) or from now, shards that appear later from their start.
async fn stream_poller(stack: &Stack, fanout: Fanout, from_start: bool, sent: Arc<Notify>) -> anyhow::Result<JoinHandle<()>> {
    let table = stack
        .clients
        .dynamodb
        .describe_table()
        .table_name(&stack.config.events_table)
        .send()
        .await
        .map_err(|e| anyhow!("describe {}: {}", stack.config.events_table, DisplayErrorContext(e)))?;
    let stream_arn = table.table.and_then(|t| t.latest_stream_arn).context("the Events table has no stream")?;
    let streams = streams_client(&stack.clients.target).await;
    let sqs = stack.clients.sqs.clone();
    let parking = stack.config.fanout_failure_queue_url.clone();
    let doorbell = crate::doorbell::Doorbell::listen(&stack.config.events_table);
    let mut shards: HashMap<String, Shard> = HashMap::new();
    for id in shard_ids(&streams, &stream_arn).await.unwrap_or_default() {
        shards.insert(id, Shard::new(from_start));
    }
    Ok(tokio::spawn(async move {
        let mut last_describe = tokio::time::Instant::now();
        loop {
            if last_describe.elapsed() > Duration::from_secs(5) {
                last_describe = tokio::time::Instant::now();
                match shard_ids(&streams, &stream_arn).await {
                    Ok(ids) => {
                        for id in ids {
                            shards.entry(id).or_insert_with(|| Shard::new(true));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "describe_stream failed; trying again in 5 s"),
                }
            }
            let mut any = false;
            for (id, shard) in shards.iter_mut() {
                if shard.iterator.is_none() {
                    let (kind, seq) = match (&shard.last_sequence, shard.from_start) {
                        (Some(seq), _) => (ShardIteratorType::AfterSequenceNumber, Some(seq.clone())),
                        (None, true) => (ShardIteratorType::TrimHorizon, None),
                        (None, false) => (ShardIteratorType::Latest, None),
                    };
                    let got = streams.get_shard_iterator().stream_arn(&stream_arn).shard_id(id).shard_iterator_type(kind).set_sequence_number(seq).send().await;
                    match got.map_err(|e| e.into_service_error()) {
                        Ok(o) => shard.iterator = o.shard_iterator,
                        // DynamoDB Local's answer for the start of a new stream's shard with no
                        // record yet: normal, and not worth a warning; asked again shortly.
                        Err(e) if e.is_trimmed_data_access_exception() => {
                            if shard.last_sequence.take().is_some() {
                                tracing::warn!(shard = %id, "the stream was trimmed past the last record read; reading from its oldest (the sweeper sends what was skipped)");
                            }
                            tokio::time::sleep(BACKOFF_FIRST).await;
                            continue;
                        }
                        Err(e) => {
                            shard.backoff.fail(&e.to_string()).await;
                            continue;
                        }
                    }
                    // Once read from its start, a shard continues after its last record.
                    shard.from_start = true;
                }
                let Some(iterator) = shard.iterator.clone() else { continue };
                let page = match get_records(&streams, &iterator).await {
                    Ok(p) => p,
                    Err(e) => {
                        // A new iterator from the last record read: nothing is skipped.
                        shard.iterator = None;
                        shard.backoff.fail(&format!("{e:#}")).await;
                        continue;
                    }
                };
                shard.backoff.reset();
                for (sequence, record) in page.unreadable.iter().cloned() {
                    park(&sqs, &parking, sequence, record).await;
                }
                let last_sequence = page
                    .records
                    .iter()
                    .filter_map(|r| r.change.sequence_number.clone())
                    .chain(page.unreadable.iter().filter_map(|(s, _)| s.clone()))
                    .max_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
                if !page.records.is_empty() {
                    any = true;
                    invoke_fanout(&fanout, page.records).await;
                    sent.notify_one();
                }
                if last_sequence.is_some() {
                    shard.last_sequence = last_sequence;
                }
                shard.iterator = page.next;
            }
            if !any {
                match &doorbell {
                    Some(bell) => tokio::select! {
                        _ = bell.rung() => {}
                        _ = tokio::time::sleep(STREAM_IDLE) => {}
                    },
                    None => tokio::time::sleep(STREAM_IDLE).await,
                }
            }
        }
    }))
}

async fn shard_ids(streams: &aws_sdk_dynamodbstreams::Client, arn: &str) -> anyhow::Result<Vec<String>> {
    let d = streams.describe_stream().stream_arn(arn).send().await.map_err(|e| anyhow!("{}", DisplayErrorContext(e)))?;
    Ok(d.stream_description.and_then(|s| s.shards).unwrap_or_default().into_iter().filter_map(|s| s.shard_id).collect())
}

/// One batch, retried from the first failed record as Lambda does with ReportBatchItemFailures,
/// until it succeeds: never skipped.
async fn invoke_fanout(fanout: &Fanout, mut records: Vec<EventRecord>) {
    let mut backoff = Backoff::new("fan-out of a stream batch");
    while !records.is_empty() {
        let mut batch = StreamEvent::default();
        batch.records = records.clone();
        let response = fanout.handle(batch).await;
        let Some(failed) = response.batch_item_failures.first().and_then(|f| f.item_identifier.clone()) else {
            return;
        };
        let at = records.iter().position(|r| r.change.sequence_number.as_deref() == Some(&failed)).unwrap_or(0);
        records.drain(..at);
        backoff.fail(&format!("record {failed} failed")).await;
    }
}

fn to_message(m: aws_sdk_sqs::types::Message) -> SqsMessage {
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
    msg
}

/// Receives from the delivery queue, ten messages at a time, and hands batches to the deliverer
/// while it receives more, up to [`QUEUE_CONCURRENCY`] batches at once (as Lambda's mapping does);
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
async fn queue_poller(stack: Stack, deliverer: Deliverer, sent: Arc<Notify>, handled: Arc<Notify>) {
    let (sqs, queue_url) = (&stack.clients.sqs, &stack.config.delivery_queue_url);
    let mut backoff = Backoff::new("delivery queue");
    let slots = Arc::new(Semaphore::new(QUEUE_CONCURRENCY));
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
                    let messages: Vec<SqsMessage> = out.messages.unwrap_or_default().into_iter().map(to_message).collect();
                    got = messages.len();
                    fair.lock().expect("fair lock").add(messages);
                }
                Err(e) => {
                    if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) {
                        tracing::warn!("the delivery queue is gone (the SQS server restarted?); creating the queues again");
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
            let (deliverer, sqs, queue_url, fair, done, handled) =
                (deliverer.clone(), sqs.clone(), queue_url.clone(), fair.clone(), done.clone(), handled.clone());
            batches.spawn(async move {
                let groups: Vec<String> = batch.iter().map(group_of).collect();
                invoke_deliverer(&deliverer, &sqs, &queue_url, batch).await;
                fair.lock().expect("fair lock").finished(&groups);
                drop(slot);
                done.notify_one();
                handled.notify_one();
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

    /// The local pollers batch and run concurrently as the deployed delivery mapping does.
    #[test]
    fn the_queue_poller_matches_the_templates_delivery_mapping() {
        let template: serde_norway::Value = serde_norway::from_str(paygate::local::TEMPLATE).unwrap();
        let mapping = &template["Resources"]["DeliverWebhooksFunction"]["Properties"]["Events"]["Queue"]["Properties"];
        assert_eq!(mapping["BatchSize"].as_i64(), Some(i64::from(QUEUE_BATCH)));
        // MaximumConcurrency is the DeliveryConcurrency parameter: its default is what dev runs.
        let concurrency = &mapping["ScalingConfig"]["MaximumConcurrency"];
        let serde_norway::Value::Tagged(reference) = concurrency else { panic!("MaximumConcurrency: {concurrency:?}") };
        let parameter = reference.value.as_str().unwrap();
        assert_eq!(template["Parameters"][parameter]["Default"].as_u64(), Some(QUEUE_CONCURRENCY as u64));
        let stream = &template["Resources"]["FanoutFunction"]["Properties"]["Events"];
        let batch = stream.as_mapping().unwrap().values().next().unwrap()["Properties"]["BatchSize"].as_i64();
        assert_eq!(batch, Some(i64::from(STREAM_BATCH)));
    }
}
