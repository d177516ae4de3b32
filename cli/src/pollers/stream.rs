//! The Events table's stream → `fanout`, as Lambda's stream mapping does: batches of at most
//! [`STREAM_BATCH`] records, handed to the fan-out in lanes by partition key (`lanes`, the
//! mapping's `ParallelizationFactor`), a record nobody can read parked in the fan-out failure queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use paygate::aws::Target;
use paygate::webhook::fanout::Fanout;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::lanes::{Handler, IN_FLIGHT, Lanes, PARALLELIZATION};
use super::{BACKOFF_FIRST, Backoff, STREAM_BATCH, STREAM_IDLE};
use crate::stack::Stack;

/// Records a GetRecords call reads at most: the API's maximum. A burst of one merchant is read in
/// a few calls, so the records behind it reach their own lanes soon; each lane is still handed
/// batches of at most [`STREAM_BATCH`].
const STREAM_READ: i32 = 1000;

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
    match streams.get_records().shard_iterator(iterator).limit(STREAM_READ).send().await {
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
pub(super) async fn stream_poller(stack: &Stack, fanout: Fanout, from_start: bool, sent: Arc<Notify>) -> anyhow::Result<JoinHandle<()>> {
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
    let handler: Handler = Arc::new(move |records| {
        let (fanout, sent) = (fanout.clone(), sent.clone());
        Box::pin(async move {
            invoke_fanout(&fanout, records).await;
            sent.notify_one();
        })
    });
    let lanes = Lanes::new(PARALLELIZATION, STREAM_BATCH as usize, IN_FLIGHT, handler);
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
                    lanes.dispatch(page.records).await;
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
