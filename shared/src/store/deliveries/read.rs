//! Reading delivery records: a batch's snapshots, an event's states and attempts, what is due,
//! an endpoint's final failures and its attempts over time (every `ByEndpoint` shard, merged).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;

use crate::model::ids::{AttemptId, EndpointId, EventId, Principal};
use crate::store::endpoints::EndpointStore;
use crate::store::events::EventStore;
use crate::store::health::HealthStore;
use crate::store::{ItemRef, StoreError, get_many, principal_of_partition};

use super::items::*;
use super::*;

/// One `ByEndpoint` key being read newest first: what was read and not yet taken, and where its
/// next page starts.
pub(super) struct KeyPager {
    pub(super) key: String,
    pub(super) items: std::collections::VecDeque<SummaryItem>,
    pub(super) next: Option<HashMap<String, AttributeValue>>,
    pub(super) done: bool,
}

impl DeliveryStore {
    /// For each (principal, event, endpoint): its state, its event, its endpoint (its delivery
    /// copy, under the endpoint's own key) and the endpoint's health, strongly consistent, all in
    /// one BatchGetItem across the three tables (up to 25 deliveries; an endpoint's items are read
    /// once however many deliveries go to it). An endpoint with no copy yet (written before copies
    /// existed) is read from the merchant's key in a second BatchGetItem, and its copy written.
    pub async fn snapshots(
        &self,
        endpoints: &EndpointStore,
        health: &HealthStore,
        deliveries: &[(Principal, EventId, EndpointId)],
    ) -> Result<Vec<Snapshot>, StoreError> {
        let mut refs: Vec<ItemRef> = Vec::with_capacity(deliveries.len() * 4);
        for (principal, event, endpoint) in deliveries {
            refs.extend([
                ItemRef { table: self.table.clone(), key: state_key(principal, *event, endpoint) },
                self.events.item_ref(principal, *event).await?,
                endpoints.copy_ref(principal, endpoint),
                health.item_ref(principal, endpoint),
            ]);
        }
        let mut items = get_many(&self.client, &refs).await?;
        let uncopied: Vec<usize> = (0..deliveries.len()).filter(|i| items[i * 4 + 2].is_none()).collect();
        if !uncopied.is_empty() {
            let originals: Vec<ItemRef> = uncopied.iter().map(|&i| endpoints.item_ref(&deliveries[i].0, &deliveries[i].2)).collect();
            for (&i, original) in uncopied.iter().zip(get_many(&self.client, &originals).await?) {
                if let Some(original) = &original {
                    endpoints.copy_from(&deliveries[i].0, &deliveries[i].2, original).await?;
                }
                items[i * 4 + 2] = original;
            }
        }
        let mut items = items.into_iter();
        deliveries
            .iter()
            .map(|(principal, _, _)| {
                let (state, event, endpoint, h) = (items.next().flatten(), items.next().flatten(), items.next().flatten(), items.next().flatten());
                Ok(Snapshot {
                    state: state.map(serde_dynamo::from_item::<_, StateItem>).transpose()?.map(DeliveryState::from),
                    event: event.map(EventStore::event_of).transpose()?,
                    endpoint: endpoint.map(|i| EndpointStore::endpoint_of(i, principal.mode)).transpose()?,
                    health: h.map(HealthStore::health_of).transpose()?.unwrap_or_default(),
                })
            })
            .collect()
    }

    pub async fn state(&self, principal: &Principal, event: EventId, endpoint: &EndpointId) -> Result<Option<DeliveryState>, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(state_key(principal, event, endpoint))).consistent_read(true).send().await?;
        Ok(out.item.map(serde_dynamo::from_item::<_, StateItem>).transpose()?.map(DeliveryState::from))
    }

    pub async fn status(&self, principal: &Principal, event: EventId, endpoint: &EndpointId) -> Result<Option<DeliveryStatus>, StoreError> {
        Ok(self.state(principal, event, endpoint).await?.map(|s| s.status))
    }

    /// Every item of one event's partition, states and attempts: one Query.
    pub(super) async fn event_items(&self, principal: &Principal, event: EventId) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk(principal, event)))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.items.unwrap_or_default())
    }

    /// Every state of one event (one Query), attempts left out.
    pub async fn states(&self, principal: &Principal, event: EventId) -> Result<Vec<DeliveryState>, StoreError> {
        self.event_items(principal, event)
            .await?
            .into_iter()
            .filter(|i| i.get("sk").and_then(|s| s.as_s().ok()).is_some_and(|s| s.ends_with("#state")))
            .map(|i| serde_dynamo::from_item::<_, StateItem>(i).map(DeliveryState::from).map_err(StoreError::from))
            .collect()
    }

    /// Pending states of one `ByDue` shard whose time came at or before `now`, oldest first, at
    /// most `limit`: one Query on the index.
    pub async fn overdue(&self, shard: u32, now: u64, limit: i32) -> Result<Vec<Overdue>, StoreError> {
        let out = self
            .due_query(shard)
            .key_condition_expression("due_shard = :shard AND due_at <= :now")
            .expression_attribute_values(":now", n(now))
            .limit(limit)
            .send()
            .await?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| {
                let item: StateItem = serde_dynamo::from_item(i)?;
                let partition = item.pk.rsplit_once('#').map(|(p, _)| p).unwrap_or_default();
                let principal = principal_of_partition(partition).ok_or_else(|| StoreError::Malformed(format!("delivery key {:?}", item.pk)))?;
                Ok(Overdue { principal, event_id: item.event_id, endpoint_id: item.endpoint_id, due_at: item.due_at.unwrap_or_default() })
            })
            .collect()
    }

    /// The earliest due time in one `ByDue` shard, due or not (`None`: nothing pending there): one
    /// Query of one item.
    pub async fn next_due(&self, shard: u32) -> Result<Option<u64>, StoreError> {
        let out = self.due_query(shard).key_condition_expression("due_shard = :shard").limit(1).send().await?;
        Ok(out.items.unwrap_or_default().first().and_then(|i| i.get("due_at")?.as_n().ok()?.parse().ok()))
    }

    /// A Query of one `ByDue` shard, oldest due time first, with `:shard` bound; the caller adds
    /// its key condition (on `due_shard = :shard`, and on `due_at` if it wants).
    pub(super) fn due_query(&self, shard: u32) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client.query().table_name(&self.table).index_name(DUE_INDEX).expression_attribute_values(":shard", s(due_partition(shard)))
    }

    /// The first `max` events whose delivery to `endpoint` finally failed, created at or after
    /// `since` (an id bound), oldest first, and whether there are more: Queries on `ByFailed`.
    pub async fn failed_since(&self, principal: &Principal, endpoint: &EndpointId, since: EventId, max: usize) -> Result<(Vec<EventId>, bool), StoreError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(FAILED_INDEX)
                .key_condition_expression("failed_pk = :f AND event_id >= :since")
                .expression_attribute_values(":f", s(endpoint_partition(principal, endpoint)))
                .expression_attribute_values(":since", s(since.to_string()))
                // One more than wanted: whether there are more is known without another read.
                .limit(i32::try_from(max + 1 - ids.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for i in out.items.unwrap_or_default() {
                ids.push(serde_dynamo::from_item::<_, FailedKey>(i)?.event_id);
            }
            if ids.len() > max {
                ids.truncate(max);
                return Ok((ids, true));
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok((ids, false));
            }
        }
    }

    /// Every attempt at delivering `event`, to any endpoint, oldest first: one Query.
    pub async fn attempts(&self, principal: &Principal, event: EventId) -> Result<Vec<Attempt>, StoreError> {
        Ok(self.attempts_with_ids(principal, event).await?.into_iter().map(|(_, a)| a).collect())
    }

    /// [`Self::attempts`], each with its id (its sort key's ULID).
    pub async fn attempts_with_ids(&self, principal: &Principal, event: EventId) -> Result<Vec<(AttemptId, Attempt)>, StoreError> {
        let mut attempts: Vec<(AttemptId, Attempt)> = self
            .event_items(principal, event)
            .await?
            .into_iter()
            .filter(|i| i.get("sk").and_then(|s| s.as_s().ok()).is_some_and(|s| s.contains("#attempt#")))
            .map(|i| {
                let a = serde_dynamo::from_item::<_, AttemptItem>(i)?;
                let ulid =
                    a.sk.rsplit('#')
                        .next()
                        .and_then(|u| u.parse::<ulid::Ulid>().ok())
                        .ok_or_else(|| StoreError::Malformed(format!("attempt sort key {}", a.sk)))?;
                Ok((AttemptId::from_ulid(ulid), a.attempt))
            })
            .collect::<Result<_, StoreError>>()?;
        attempts.sort_by_key(|(id, _)| *id);
        Ok(attempts)
    }

    /// The attempts to `endpoint` made in `[from_ms, to_ms)` (unix milliseconds), newest first, at
    /// most `max` of them: key-condition Queries on each of its `ByEndpoint` keys, merged newest
    /// first. Each key is read a page at a time, only when the merge needs its next item, so no
    /// more than `max` items plus one page per key are read.
    pub async fn endpoint_attempts(
        &self,
        principal: &Principal,
        endpoint: &EndpointId,
        from_ms: u64,
        to_ms: u64,
        max: usize,
    ) -> Result<EndpointAttempts, StoreError> {
        let keys: Vec<String> = std::iter::once(endpoint_partition(principal, endpoint))
            .chain((0..ENDPOINT_SHARDS).map(|s| endpoint_attempts_partition(principal, endpoint, s)))
            .collect();
        // A page of each key is a key's share of what is wanted, and at least a small page.
        let page = i32::try_from((max + 1).div_ceil(keys.len()).max(50)).unwrap_or(i32::MAX);
        let mut heads: Vec<KeyPager> = keys.into_iter().map(|key| KeyPager { key, items: Default::default(), next: None, done: false }).collect();
        let mut found = EndpointAttempts::default();
        loop {
            // Every key that has nothing read ahead but may have more reads its next page (at once).
            let reads = heads.iter_mut().filter(|h| h.items.is_empty() && !h.done).map(|h| self.attempts_page(h, from_ms, to_ms, page));
            for r in join_all(reads).await {
                r?;
            }
            // The newest attempt at the head of any key.
            let Some(newest) = heads.iter_mut().filter(|h| !h.items.is_empty()).max_by(|a, b| a.items[0].attempt_id.cmp(&b.items[0].attempt_id)) else {
                return Ok(found);
            };
            if found.attempts.len() == max {
                found.has_more = true;
                return Ok(found);
            }
            let item = newest.items.pop_front().expect("a head");
            let at_ms = item.attempt_id.parse::<ulid::Ulid>().map(|u| u.timestamp_ms()).unwrap_or_default();
            let f = item.fields;
            found.attempts.push(AttemptSummary {
                at_ms,
                event_id: f.event_id,
                attempt: f.attempt_number,
                succeeded: f.ok,
                latency_ms: f.latency_ms,
                http_status: f.http_status,
                error: f.error,
            });
        }
    }

    /// The next page of one `ByEndpoint` key's attempts in `[from_ms, to_ms)`, newest first.
    pub(super) async fn attempts_page(&self, pager: &mut KeyPager, from_ms: u64, to_ms: u64, limit: i32) -> Result<(), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ENDPOINT_INDEX)
            .key_condition_expression("endpoint_pk = :e AND attempt_id BETWEEN :from AND :to")
            .expression_attribute_values(":e", s(pager.key.clone()))
            .expression_attribute_values(":from", s(ulid::Ulid::from_parts(from_ms, 0).to_string()))
            // The greatest ULID of the millisecond before `to_ms`.
            .expression_attribute_values(":to", s(ulid::Ulid::from_parts(to_ms.saturating_sub(1), u128::MAX).to_string()))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(pager.next.take())
            .send()
            .await?;
        for i in out.items.unwrap_or_default() {
            pager.items.push_back(serde_dynamo::from_item(i)?);
        }
        pager.next = out.last_evaluated_key;
        pager.done = pager.next.is_none();
        Ok(())
    }
}
