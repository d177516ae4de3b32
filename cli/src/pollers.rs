//! What Lambda's event source mappings do, for `paygate dev` and the tests: the Events table's
//! stream feeds `fanout` and the delivery queue feeds `deliver-webhooks`, with the same event
//! shapes, batch sizes and partial batch failures.

use std::collections::{HashMap, HashSet};

use std::time::Duration;

use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use paygate::webhook::deliver::Deliverer;
use paygate::webhook::fanout::Fanout;
use tokio::task::JoinHandle;

use crate::stack::Stack;

/// Stream batch size (the template's, too).
pub const STREAM_BATCH: i32 = 100;
/// Queue batch size (the template's, too).
pub const QUEUE_BATCH: i32 = 10;
/// How often a failing stream batch is retried before it is skipped (the template's MaximumRetryAttempts).
const STREAM_RETRIES: u32 = 3;

/// The two pollers; aborted when dropped.
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

/// Starts both pollers for a stack. `from_start`: read the stream's existing records too (a fresh
/// table); otherwise only what is written from now on, as a new event source mapping would.
pub async fn start(stack: &Stack, deliverer: Deliverer, from_start: bool) -> Result<Pollers, String> {
    let stream = stream_poller(stack, stack.fanout(), from_start).await?;
    let queue = tokio::spawn(queue_poller(stack.clients.sqs.clone(), stack.config.delivery_queue_url.clone(), deliverer));
    Ok(Pollers { tasks: vec![stream, queue] })
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

/// A DynamoDB Streams client for the local DynamoDB.
async fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    let paygate::aws::Target::Local { dynamodb, .. } = paygate::aws::Target::local() else { unreachable!() };
    let sdk = paygate::aws::local_sdk_config().await;
    aws_sdk_dynamodbstreams::Client::from_conf(aws_sdk_dynamodbstreams::config::Builder::from(&sdk).endpoint_url(dynamodb).build())
}

/// Where a shard is read from next.
struct Shard {
    iterator: Option<String>,
    last_sequence: Option<String>,
    /// For a shard that existed when the poller started: read from LATEST (dev) or TRIM_HORIZON (tests).
    from_start: bool,
}

/// Polls every shard of the Events table's stream: shards present at start from their start
/// (`from_start`) or from now, shards that appear later from their start.
async fn stream_poller(stack: &Stack, fanout: Fanout, from_start: bool) -> Result<JoinHandle<()>, String> {
    let table = stack
        .clients
        .dynamodb
        .describe_table()
        .table_name(&stack.config.events_table)
        .send()
        .await
        .map_err(|e| format!("describe {}: {e:?}", stack.config.events_table))?;
    let stream_arn = table.table.and_then(|t| t.latest_stream_arn).ok_or("the Events table has no stream")?;
    let streams = streams_client().await;
    let mut shards: HashMap<String, Shard> = HashMap::new();
    for id in shard_ids(&streams, &stream_arn).await {
        shards.insert(id, Shard { iterator: None, last_sequence: None, from_start });
    }
    Ok(tokio::spawn(async move {
        let mut last_describe = tokio::time::Instant::now();
        loop {
            if last_describe.elapsed() > Duration::from_secs(5) {
                last_describe = tokio::time::Instant::now();
                for id in shard_ids(&streams, &stream_arn).await {
                    shards.entry(id).or_insert(Shard { iterator: None, last_sequence: None, from_start: true });
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
                    let got = streams
                        .get_shard_iterator()
                        .stream_arn(&stream_arn)
                        .shard_id(id)
                        .shard_iterator_type(kind)
                        .set_sequence_number(seq)
                        .send()
                        .await;
                    match got {
                        Ok(o) => shard.iterator = o.shard_iterator,
                        Err(e) => {
                            tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), shard = id, "get_shard_iterator failed");
                            continue;
                        }
                    }
                    // Once read from its start, a shard continues after its last record.
                    shard.from_start = true;
                }
                let Some(iterator) = shard.iterator.clone() else { continue };
                let out = match streams.get_records().shard_iterator(&iterator).limit(STREAM_BATCH).send().await {
                    Ok(o) => o,
                    Err(e) => {
                        tracing::debug!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), shard = id, "get_records failed; new iterator");
                        shard.iterator = None;
                        continue;
                    }
                };
                shard.iterator = out.next_shard_iterator;
                let records: Vec<EventRecord> = out.records.unwrap_or_default().into_iter().map(to_record).collect();
                if let Some(last) = records.last() {
                    shard.last_sequence = last.change.sequence_number.clone();
                    any = true;
                    invoke_fanout(&fanout, records).await;
                }
            }
            if !any {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }))
}

async fn shard_ids(streams: &aws_sdk_dynamodbstreams::Client, arn: &str) -> Vec<String> {
    match streams.describe_stream().stream_arn(arn).send().await {
        Ok(d) => d
            .stream_description
            .and_then(|s| s.shards)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.shard_id)
            .collect(),
        Err(e) => {
            tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "describe_stream failed");
            Vec::new()
        }
    }
}

/// One batch, retried from the first failed record, as Lambda does with ReportBatchItemFailures.
async fn invoke_fanout(fanout: &Fanout, mut records: Vec<EventRecord>) {
    let mut tries = 0;
    while !records.is_empty() {
        let mut batch = StreamEvent::default();
        batch.records = records.clone();
        let response = fanout.handle(batch).await;
        let Some(failed) = response.batch_item_failures.first().and_then(|f| f.item_identifier.clone()) else {
            return;
        };
        tries += 1;
        if tries > STREAM_RETRIES {
            tracing::error!(sequence_number = failed, "fan-out kept failing; batch skipped (the deployed mapping sends it to its on-failure queue)");
            return;
        }
        let at = records.iter().position(|r| r.change.sequence_number.as_deref() == Some(&failed)).unwrap_or(0);
        records.drain(..at);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn to_message(m: aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut msg = SqsMessage::default();
    msg.message_id = m.message_id;
    msg.receipt_handle = m.receipt_handle;
    msg.body = m.body;
    msg.attributes = m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
    msg.event_source = Some("aws:sqs".to_owned());
    msg
}

/// Long-polls the delivery queue, ten messages at a time; deletes what the handler did not report failed.
async fn queue_poller(sqs: aws_sdk_sqs::Client, queue_url: String, deliverer: Deliverer) {
    loop {
        let out = match sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(QUEUE_BATCH)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receive_message failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let messages: Vec<SqsMessage> = out.messages.unwrap_or_default().into_iter().map(to_message).collect();
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages.clone();
        let response = deliverer.handle(event).await;
        let failed: HashSet<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            if let Err(e) = sqs.delete_message_batch().queue_url(&queue_url).set_entries(Some(entries)).send().await {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "delete_message_batch failed");
            }
        }
    }
}
