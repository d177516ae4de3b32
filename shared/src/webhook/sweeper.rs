//! The sweeper: the scheduler of every delivery that is not on its way right now. Every pending
//! delivery state carries the time at which it is due (`ByDue`): a retry's next attempt, or, for a
//! state whose message should be on its way, that time plus `PAYGATE_REDRIVE_AFTER_SECONDS`. The
//! sweeper finds the states whose time has come with one key-condition Query per `ByDue` shard,
//! enqueues a message for each, and moves their time on by the grace (should that message vanish,
//! they come due again).
//!
//! So retries wait in DynamoDB, not as invisible SQS messages (which count against the queue's
//! ~120,000 in-flight messages, shared by every merchant), and a stream record that never arrived
//! or a message lost in an outage end up here too: every pending delivery is attempted until it
//! settles. [`Sweeper::run_until`] sweeps every [`TICK`]; deployed, an EventBridge schedule starts it
//! every minute and it sweeps for [`RUN_FOR`] of that minute, so a retry is late by about a tick
//! (and by the gap between two runs at worst); `paygate dev` runs the same loop.

use std::time::Duration;

use futures::future::join_all;
use futures::{StreamExt, stream};

use crate::model::ids::unix_now;
use crate::store::deliveries::DeliveryStore;
use crate::webhook::fanout::{DeliveryMessage, Fanout, FanoutError};

/// States read per Query.
const PAGE: i32 = 100;
/// Shards read at once: the template's `DueShards` may be in the hundreds, and one function
/// should not open a connection per shard every second.
const SHARDS_AT_ONCE: usize = 32;
/// Queries per shard and run, so one run stays well inside the function's timeout.
const MAX_PAGES: usize = 20;

/// How often the scheduler sweeps: a due retry waits about this much at most for its message.
pub const TICK: Duration = Duration::from_secs(1);
/// How long one deployed invocation sweeps (its schedule starts one every minute; the template's
/// timeout leaves room for the last sweep).
pub const RUN_FOR: Duration = Duration::from_secs(54);

/// What the sweeper needs, built once.
#[derive(Debug, Clone)]
pub struct Sweeper {
    pub deliveries: DeliveryStore,
    pub fanout: Fanout,
}

impl Sweeper {
    /// One run over every shard. Returns how many deliveries it enqueued again; an error when any
    /// shard could not be swept (the rest were), so the next run tries again and an alarm can see it.
    pub async fn sweep(&self) -> Result<usize, FanoutError> {
        let now = unix_now();
        let results = self.each_shard(|shard| self.sweep_shard(shard, now)).await;
        let mut enqueued = 0;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(n) => enqueued += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if enqueued > 0 {
            // The normal path of every retry (and of whatever the stream or the queue lost).
            tracing::info!(enqueued, "sweeper enqueued the deliveries now due");
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(enqueued),
        }
    }

    /// The earliest due time of any pending delivery (`None`: none is pending): one small Query per
    /// shard. `paygate dev`'s sweeper sleeps until then (or until deliveries were handled), instead
    /// of sweeping every second while nothing is due.
    pub async fn next_due(&self) -> Result<Option<u64>, FanoutError> {
        let mut earliest = None;
        for r in self.each_shard(|shard| self.deliveries.next_due(shard)).await {
            if let Some(t) = r? {
                earliest = Some(earliest.map_or(t, |e: u64| e.min(t)));
            }
        }
        Ok(earliest)
    }

    /// `f` of every `ByDue` shard, [`SHARDS_AT_ONCE`] at a time; the results in no set order.
    async fn each_shard<T, Fut: std::future::Future<Output = T>>(&self, f: impl FnMut(u32) -> Fut) -> Vec<T> {
        stream::iter(0..self.deliveries.due_shards()).map(f).buffer_unordered(SHARDS_AT_ONCE).collect().await
    }

    /// Sweeps every [`TICK`] until `until`, then returns how many deliveries it enqueued in all.
    /// A failed sweep is logged and tried again at the next tick; an error only when the last
    /// sweep failed too (so the Lambda's error alarm sees a scheduler that cannot work).
    pub async fn run_until(&self, until: tokio::time::Instant) -> Result<usize, FanoutError> {
        let mut enqueued = 0;
        loop {
            let started = tokio::time::Instant::now();
            let swept = self.sweep().await;
            match &swept {
                Ok(n) => enqueued += n,
                Err(e) => tracing::warn!(error = %e, "sweep failed; the next tick tries again"),
            }
            let next = started + TICK;
            if next >= until {
                return swept.map(|_| enqueued);
            }
            tokio::time::sleep_until(next).await;
        }
    }

    async fn sweep_shard(&self, shard: u32, now: u64) -> Result<usize, FanoutError> {
        let mut enqueued = 0;
        for _ in 0..MAX_PAGES {
            let overdue = self.deliveries.overdue(shard, now, PAGE).await?;
            if overdue.is_empty() {
                break;
            }
            let messages: Vec<DeliveryMessage> = overdue.iter().map(|o| DeliveryMessage::new(&o.principal, o.event_id, o.endpoint_id)).collect();
            self.fanout.enqueue(&messages).await?;
            // Enqueued first, postponed after: a failure in between enqueues it twice, never not at all.
            let until = unix_now() + self.deliveries.redrive_after();
            for r in join_all(overdue.iter().map(|o| self.deliveries.postpone(o, until))).await {
                r?;
            }
            enqueued += overdue.len();
            if overdue.len() < PAGE as usize {
                break;
            }
        }
        Ok(enqueued)
    }
}
