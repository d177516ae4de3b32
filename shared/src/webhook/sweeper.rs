//! The sweeper: finishes whatever the queue lost. Every pending delivery state carries the time by
//! which something should have touched it (its next attempt plus `PAYGATE_REDRIVE_AFTER_SECONDS`);
//! the sweeper finds the states past that time with one key-condition Query per `ByDue` shard,
//! enqueues a message for each, and moves their time on by the grace again. A stream record that
//! never arrived, a message that vanished or was dropped in an outage: all end up here, so every
//! pending delivery is eventually attempted until it settles. Deployed, an EventBridge schedule runs
//! it every minute; `paygate dev` runs the same code on a timer.

use futures::future::join_all;

use crate::ids::unix_now;
use crate::store::deliveries::{DUE_SHARDS, DeliveryStore};
use crate::webhook::fanout::{DeliveryMessage, Fanout, FanoutError};

/// States read per Query.
const PAGE: i32 = 100;
/// Queries per shard and run, so one run stays well inside the function's timeout.
const MAX_PAGES: usize = 20;

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
        let results = join_all((0..DUE_SHARDS).map(|shard| self.sweep_shard(shard, now))).await;
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
            tracing::warn!(enqueued, "sweeper re-enqueued overdue deliveries");
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(enqueued),
        }
    }

    async fn sweep_shard(&self, shard: u32, now: u64) -> Result<usize, FanoutError> {
        let mut enqueued = 0;
        for _ in 0..MAX_PAGES {
            let overdue = self.deliveries.overdue(shard, now, PAGE).await?;
            if overdue.is_empty() {
                break;
            }
            let messages: Vec<DeliveryMessage> =
                overdue.iter().map(|o| DeliveryMessage::new(&o.principal, o.event_id, o.endpoint_id)).collect();
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
