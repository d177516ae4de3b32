//! What Lambda's event source mappings and the EventBridge schedule do, for `paygate dev` and the
//! tests: the Events table's stream feeds `fanout`, the delivery queues feed `deliver-webhooks`, and
//! the sweeper runs on a timer, with the same event shapes, batch sizes and partial batch failures.
//!
//! No poller ever drops a batch: a failure is retried with capped backoff until the servers are
//! back, logged once per backoff step. A stream record that cannot be read at all is logged at error
//! level, parked in the fan-out failure queue, and skipped (its deliveries are the sweeper's).
//!
//! `stream.rs` reads the stream (`lanes.rs`: its records fanned out in parallel by partition key,
//! as the mapping's `ParallelizationFactor` does), `queue.rs` the delivery queue and the slow lane
//! (one poller each); here: starting them, the sweeper's timer, and the backoff they share.

use std::sync::Arc;
use std::time::Duration;

use paygate::webhook::deliver::Deliverer;
use paygate::webhook::sweeper::{Sweeper, TICK as SWEEP_TICK};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::stack::Stack;

mod lanes;
mod queue;
mod stream;

pub use queue::READ_AHEAD;
use queue::{Lane, queue_poller};
use stream::stream_poller;

/// Stream batch size (the template's, too).
pub const STREAM_BATCH: i32 = 100;
/// Queue batch size (the template's, too).
pub const QUEUE_BATCH: i32 = 10;
/// Batches of the delivery queue handled at once: the deployed mapping's `MaximumConcurrency`
/// (a test holds the two equal). A slow batch holds one of them, never the queue.
pub const QUEUE_CONCURRENCY: usize = 50;
/// Batches of the slow lane handled at once: the slow mapping's `MaximumConcurrency` (the template's
/// `SlowDeliveryConcurrency` default; a test holds the two equal).
pub const SLOW_QUEUE_CONCURRENCY: usize = 50;
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
    // "The delivery queue's batch was handled" (it may have moved deliveries to the slow lane).
    let moved = Arc::new(Notify::new());
    let main = Lane { what: "delivery queue", url: stack.config.delivery_queue_url.clone(), concurrency: QUEUE_CONCURRENCY, after_batch: Some(moved.clone()) };
    let slow = Lane { what: "slow lane", url: stack.config.slow_delivery_queue_url.clone(), concurrency: SLOW_QUEUE_CONCURRENCY, after_batch: None };
    let queue = tokio::spawn(queue_poller(stack.clone(), deliverer.clone(), main, sent.clone(), handled.clone()));
    let slow_queue = tokio::spawn(queue_poller(stack.clone(), deliverer, slow, moved, handled.clone()));
    let sweeper = tokio::spawn(sweep_every(stack.sweeper(), sent, handled));
    Ok(Pollers { tasks: vec![stream, queue, slow_queue, sweeper] })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The local pollers batch and run concurrently as the deployed delivery mapping does.
    #[test]
    fn the_queue_poller_matches_the_templates_delivery_mapping() {
        let template: serde_norway::Value = serde_norway::from_str(crate::stack::provision::TEMPLATE).unwrap();
        let events = &template["Resources"]["DeliverWebhooksFunction"]["Properties"]["Events"];
        for (event, queue, concurrency) in [("Queue", "DeliveryQueue", QUEUE_CONCURRENCY), ("SlowQueue", "SlowDeliveryQueue", SLOW_QUEUE_CONCURRENCY)] {
            let mapping = &events[event]["Properties"];
            let serde_norway::Value::Tagged(arn) = &mapping["Queue"] else { panic!("{event}: {mapping:?}") };
            assert_eq!(arn.value.as_str(), Some(format!("{queue}.Arn").as_str()));
            assert_eq!(mapping["BatchSize"].as_i64(), Some(i64::from(QUEUE_BATCH)));
            assert_eq!(mapping["FunctionResponseTypes"][0].as_str(), Some("ReportBatchItemFailures"));
            // MaximumConcurrency is a parameter: its default is what dev runs.
            let max = &mapping["ScalingConfig"]["MaximumConcurrency"];
            let serde_norway::Value::Tagged(reference) = max else { panic!("MaximumConcurrency: {max:?}") };
            let parameter = reference.value.as_str().unwrap();
            assert_eq!(template["Parameters"][parameter]["Default"].as_u64(), Some(concurrency as u64), "{event}");
        }
        assert_eq!(events.as_mapping().unwrap().len(), 2, "the delivery queue and the slow lane");
        let stream = &template["Resources"]["FanoutFunction"]["Properties"]["Events"];
        let batch = stream.as_mapping().unwrap().values().next().unwrap()["Properties"]["BatchSize"].as_i64();
        assert_eq!(batch, Some(i64::from(STREAM_BATCH)));
        let factor = stream.as_mapping().unwrap().values().next().unwrap()["Properties"]["ParallelizationFactor"].as_u64();
        assert_eq!(factor, Some(lanes::PARALLELIZATION as u64));
    }
}
