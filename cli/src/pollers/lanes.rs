//! The stream mapping's `ParallelizationFactor`, for the local stream poller: the records read
//! from a shard go to [`PARALLELIZATION`] lanes by partition key (one merchant and mode, or one of
//! its event shards, is always in the same lane), each lane hands its records to the fan-out in
//! the order they were read, and the lanes run at once. So one merchant's burst holds up its own
//! lane, not the other merchants' records read after it, as in the deployed mapping.
//!
//! A lane gets its records in batches of at most the mapping's `BatchSize`. The reader does not
//! wait for a lane to finish before reading on: at most [`IN_FLIGHT`] records are read and not yet
//! handled, over all lanes.

use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::dynamodb::EventRecord;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

/// Lanes: the template's `ParallelizationFactor` (a test holds the two equal).
pub const PARALLELIZATION: usize = 10;
/// Records read and not yet handled, over all lanes, before the reader waits.
pub const IN_FLIGHT: usize = 10_000;

/// What a lane does with its records, in order; it returns once they are handled (the local
/// poller's handler retries until they are: nothing is skipped).
pub type Handler = Arc<dyn Fn(Vec<EventRecord>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The lanes and their tasks; the tasks end when this is dropped.
pub struct Lanes {
    batch: usize,
    senders: Vec<mpsc::UnboundedSender<(Vec<EventRecord>, OwnedSemaphorePermit)>>,
    room: Arc<Semaphore>,
    hasher: std::hash::RandomState,
    tasks: Vec<JoinHandle<()>>,
}

impl Lanes {
    /// `lanes` lanes, handed batches of at most `batch` records, `in_flight` records at most read
    /// and not yet handled (at least a batch).
    pub fn new(lanes: usize, batch: usize, in_flight: usize, handler: Handler) -> Self {
        let batch = batch.max(1);
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..lanes.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<EventRecord>, OwnedSemaphorePermit)>();
            let handler = handler.clone();
            tasks.push(tokio::spawn(async move {
                while let Some((records, permit)) = rx.recv().await {
                    handler(records).await;
                    drop(permit);
                }
            }));
            senders.push(tx);
        }
        Lanes { batch, senders, room: Arc::new(Semaphore::new(in_flight.max(batch))), hasher: std::hash::RandomState::new(), tasks }
    }

    /// The lane of a record: by its partition key (`pk`); a record without one goes to the first.
    pub fn lane_of(&self, record: &EventRecord) -> usize {
        match record.change.keys.get("pk") {
            Some(serde_dynamo::AttributeValue::S(pk)) => (self.hasher.hash_one(pk.as_str()) % self.senders.len() as u64) as usize,
            _ => 0,
        }
    }

    /// Hands `records` (in the order read) to their lanes, waiting only while [`IN_FLIGHT`]
    /// records are read and not yet handled.
    pub async fn dispatch(&self, records: Vec<EventRecord>) {
        let mut by_lane: Vec<Vec<EventRecord>> = vec![Vec::new(); self.senders.len()];
        for record in records {
            by_lane[self.lane_of(&record)].push(record);
        }
        for (lane, records) in by_lane.into_iter().enumerate() {
            for batch in records.chunks(self.batch) {
                let wanted = u32::try_from(batch.len()).unwrap_or(u32::MAX);
                let permit = self.room.clone().acquire_many_owned(wanted).await.expect("the semaphore is never closed");
                // A lane's task ends only when this is dropped.
                let _ = self.senders[lane].send((batch.to_vec(), permit));
            }
        }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    fn record(pk: &str, n: usize) -> EventRecord {
        let mut r = EventRecord::default();
        r.change.keys = serde_dynamo::Item::from(HashMap::from([("pk".to_owned(), serde_dynamo::AttributeValue::S(pk.to_owned()))]));
        r.change.sequence_number = Some(format!("{n:06}"));
        r
    }

    /// A merchant whose records cannot be handled yet holds up its own lane only: another
    /// merchant's records read after them are handled meanwhile, and each merchant's in the order
    /// read.
    #[tokio::test]
    async fn a_held_up_merchant_holds_up_its_lane_only_and_order_is_kept_per_key() {
        let handled: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let (h, r) = (handled.clone(), release.clone());
        let handler: Handler = Arc::new(move |records: Vec<EventRecord>| {
            let (h, r) = (h.clone(), r.clone());
            Box::pin(async move {
                for record in records {
                    let Some(serde_dynamo::AttributeValue::S(pk)) = record.change.keys.get("pk").cloned() else { unreachable!() };
                    if pk == "acct_a#test" {
                        r.acquire().await.unwrap().forget();
                    }
                    h.lock().unwrap().push((pk, record.change.sequence_number.unwrap()));
                }
            })
        });
        let lanes = Lanes::new(PARALLELIZATION, 100, IN_FLIGHT, handler);
        // A key of another lane than A's.
        let b = (0..100).map(|i| format!("acct_b{i}#test")).find(|k| lanes.lane_of(&record(k, 0)) != lanes.lane_of(&record("acct_a#test", 0))).unwrap();
        let mut burst: Vec<EventRecord> = (0..300).map(|n| record("acct_a#test", n)).collect();
        burst.extend((300..305).map(|n| record(&b, n)));
        lanes.dispatch(burst).await;
        // B's five are handled while A's first waits.
        testkit::eventually(std::time::Duration::from_secs(10), || {
            let n = handled.lock().unwrap().len();
            async move { (n == 5).then_some(()) }
        })
        .await
        .expect("B's records handled while A's wait");
        assert!(handled.lock().unwrap().iter().all(|(pk, _)| *pk == b));
        release.add_permits(300);
        testkit::eventually(std::time::Duration::from_secs(10), || {
            let n = handled.lock().unwrap().len();
            async move { (n == 305).then_some(()) }
        })
        .await
        .expect("A's records handled once they can be");
        let a: Vec<String> = handled.lock().unwrap().iter().filter(|(pk, _)| pk == "acct_a#test").map(|(_, s)| s.clone()).collect();
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(a, sorted, "A's records in the order read");
    }

    /// A lane is handed its records in batches of at most the batch size, in order.
    #[tokio::test]
    async fn a_lane_is_handed_batches_of_at_most_the_batch_size() {
        let batches: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let b = batches.clone();
        let handler: Handler = Arc::new(move |records: Vec<EventRecord>| {
            b.lock().unwrap().push(records.into_iter().map(|r| r.change.sequence_number.unwrap()).collect());
            Box::pin(std::future::ready(()))
        });
        let lanes = Lanes::new(1, 2, 100, handler);
        lanes.dispatch((0..5).map(|n| record("a", n)).collect()).await;
        testkit::eventually(std::time::Duration::from_secs(10), || {
            let n = batches.lock().unwrap().len();
            async move { (n == 3).then_some(()) }
        })
        .await
        .expect("three batches");
        assert_eq!(*batches.lock().unwrap(), [vec!["000000", "000001"], vec!["000002", "000003"], vec!["000004"]]);
    }

    /// The reader waits once `IN_FLIGHT` records are read and not handled, and goes on as they are.
    #[tokio::test]
    async fn the_reader_waits_at_the_in_flight_bound() {
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let r = release.clone();
        let handler: Handler = Arc::new(move |_records: Vec<EventRecord>| {
            let r = r.clone();
            Box::pin(async move { r.acquire().await.unwrap().forget() })
        });
        let lanes = Lanes::new(1, 1, 3, handler);
        lanes.dispatch(vec![record("a", 0), record("a", 1), record("a", 2)]).await;
        let more = lanes.dispatch(vec![record("a", 3)]);
        tokio::pin!(more);
        tokio::select! {
            biased;
            _ = &mut more => panic!("a fourth record went in with three read and not handled"),
            _ = std::future::ready(()) => {}
        }
        release.add_permits(1);
        tokio::time::timeout(std::time::Duration::from_secs(10), more).await.expect("the fourth goes in once the first three are handled");
    }
}
