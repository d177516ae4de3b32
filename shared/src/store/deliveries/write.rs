//! Writing delivery records: opening states with their event, the state machine's changes (alone
//! or a batch in one transaction, each with its event's `pending_webhooks`), re-opening, postponing.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use futures::future::join_all;

use crate::model::ids::{EndpointId, EventId, Principal, unix_now};
use crate::store::{StoreError, conditional, transact_write};

use super::items::*;
use super::*;

/// The writes of one state change, and the event whose `pending_webhooks` it releases (if any).
pub(super) type ChangeItems = (Vec<TransactWriteItem>, Option<(Principal, EventId)>);

impl DeliveryStore {
    pub(super) async fn pending_change(&self, principal: &Principal, event: EventId, delta: i32) -> Result<TransactWriteItem, StoreError> {
        self.events.pending_change(principal, event, delta).await
    }

    pub(super) fn new_state(&self, principal: &Principal, event: EventId, endpoint: &EndpointId, now: u64) -> StateItem {
        StateItem {
            pk: pk(principal, event),
            sk: format!("{endpoint}#state"),
            event_id: event,
            endpoint_id: *endpoint,
            status: DeliveryStatus::Pending,
            updated_at: now,
            expires_at: now + RETENTION_SECS,
            attempts: 0,
            next_attempt_at: 0,
            opened_at: Some(now),
            due_shard: Some(due_shard(event, self.due_shards)),
            due_at: Some(now + self.redrive_after),
            failed_pk: None,
        }
    }

    /// The puts that open the pending states of a new event, one per subscribed endpoint, for the
    /// event's own transaction (the event item counts them in its `pending_webhooks`).
    pub fn opening(&self, principal: &Principal, event: EventId, endpoints: &[EndpointId]) -> Result<Vec<TransactWriteItem>, StoreError> {
        let now = unix_now();
        endpoints
            .iter()
            .map(|ep| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(serde_dynamo::to_item(self.new_state(principal, event, ep, now))?))
                    .condition_expression("attribute_not_exists(sk)")
                    .build()?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect()
    }

    /// Opens the state of (event, endpoint) again after it settled (a resend, a recover, a message
    /// moved back from the dead-letter queue), or for the first time, and counts it in
    /// `pending_webhooks`. Its attempts start again from 1. False when it is pending already.
    pub async fn reopen(&self, principal: &Principal, event: EventId, endpoint: &EndpointId) -> Result<bool, StoreError> {
        let now = unix_now();
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(state_key(principal, event, endpoint)))
            .update_expression(
                "SET #s = :pending, updated_at = :now, opened_at = :now, attempts = :zero, next_attempt_at = :zero, due_shard = :shard, due_at = :due REMOVE failed_pk",
            )
            .condition_expression("attribute_exists(sk) AND #s <> :pending")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":shard", s(due_shard(event, self.due_shards)))
            .expression_attribute_values(":due", n(now + self.redrive_after))
            .build()?;
        if transact_write(&self.client, vec![TransactWriteItem::builder().update(update).build(), self.pending_change(principal, event, 1).await?]).await? {
            return Ok(true);
        }
        // No state at all (an endpoint the event never went to): open one.
        let mut items = self.opening(principal, event, std::slice::from_ref(endpoint))?;
        items.push(self.pending_change(principal, event, 1).await?);
        transact_write(&self.client, items).await
    }

    pub(super) fn attempt_put(&self, principal: &Principal, attempt: &Attempt) -> Result<TransactWriteItem, StoreError> {
        let id = ulid::Ulid::generate();
        let item = AttemptItem {
            pk: pk(principal, attempt.event_id),
            sk: format!("{}#attempt#{id}", attempt.endpoint_id),
            expires_at: attempt.created_at + RETENTION_SECS,
            attempt: attempt.clone(),
            endpoint_pk: Some(endpoint_attempts_partition(principal, &attempt.endpoint_id, attempt_shard(&id))),
            attempt_id: Some(id.to_string()),
            summary: Some(SummaryFields {
                event_id: attempt.event_id,
                attempt_number: attempt.attempt,
                ok: attempt.succeeded,
                latency_ms: attempt.latency_ms,
                http_status: attempt.http_status,
                error: attempt.error.clone(),
            }),
        };
        let put = Put::builder().table_name(&self.table).set_item(Some(serde_dynamo::to_item(item)?)).build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The writes of one change, and the event whose `pending_webhooks` it releases (if any).
    pub(super) fn change_items(&self, change: &StateChange) -> Result<ChangeItems, StoreError> {
        match change {
            StateChange::Settle { principal, event, endpoint, status, attempt, event_exists } => {
                let mut update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(state_key(principal, *event, endpoint)))
                    .condition_expression("#s = :pending")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":final", s(status.as_str()))
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":now", n(unix_now()))
                    .expression_attribute_values(":one", n(u64::from(attempt.is_some())));
                // A final failure stays findable (`ByFailed`) for `recover`.
                update = if *status == DeliveryStatus::Failed {
                    update
                        .update_expression("SET #s = :final, updated_at = :now, failed_pk = :failed ADD attempts :one REMOVE due_shard, due_at")
                        .expression_attribute_values(":failed", s(endpoint_partition(principal, endpoint)))
                } else {
                    update.update_expression("SET #s = :final, updated_at = :now ADD attempts :one REMOVE due_shard, due_at")
                };
                let mut items = vec![TransactWriteItem::builder().update(update.build()?).build()];
                if let Some(a) = attempt {
                    items.push(self.attempt_put(principal, a)?);
                }
                // The event may be gone (TTL); the state still settles.
                Ok((items, event_exists.then(|| (principal.clone(), *event))))
            }
            StateChange::RetryLater { principal, attempt } => {
                let next_attempt_at = attempt.next_retry_at.unwrap_or_else(unix_now);
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(state_key(principal, attempt.event_id, &attempt.endpoint_id)))
                    .update_expression("SET updated_at = :now, next_attempt_at = :next, due_at = :due ADD attempts :one")
                    .condition_expression("#s = :pending")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":now", n(unix_now()))
                    .expression_attribute_values(":next", n(next_attempt_at))
                    // Due for the scheduler at the next attempt itself: it enqueues the state then.
                    .expression_attribute_values(":due", n(next_attempt_at))
                    .expression_attribute_values(":one", n(1))
                    .build()?;
                Ok((vec![TransactWriteItem::builder().update(update).build(), self.attempt_put(principal, attempt)?], None))
            }
            StateChange::Hold { principal, event, endpoint, until } => {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(state_key(principal, *event, endpoint)))
                    .update_expression("SET updated_at = :now, next_attempt_at = :until, due_at = :until")
                    .condition_expression("#s = :pending")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":now", n(unix_now()))
                    .expression_attribute_values(":until", n(*until))
                    .build()?;
                Ok((vec![TransactWriteItem::builder().update(update).build()], None))
            }
        }
    }

    /// Writes one change in one transaction, with the release of its event's `pending_webhooks`.
    /// False when the state was no longer pending (nothing written: the release happens once).
    pub async fn apply(&self, change: &StateChange) -> Result<bool, StoreError> {
        let (mut items, released) = self.change_items(change)?;
        if let Some((principal, event)) = released {
            items.push(self.pending_change(&principal, event, -1).await?);
        }
        transact_write(&self.client, items).await
    }

    /// Writes the changes of one batch together: one transaction per [`CHANGES_PER_TRANSACTION`],
    /// in which each event's `pending_webhooks` moves once, by the sum of its releases. A
    /// transaction that cannot be written whole (a state a duplicate settled meanwhile, an error)
    /// is written again change by change, as [`DeliveryStore::apply`] writes them. One result per
    /// change, in order.
    pub async fn apply_all(&self, changes: &[StateChange]) -> Vec<Result<bool, StoreError>> {
        let mut results = Vec::with_capacity(changes.len());
        for chunk in changes.chunks(CHANGES_PER_TRANSACTION) {
            if chunk.len() > 1 {
                match self.apply_together(chunk).await {
                    Ok(true) => {
                        results.extend(chunk.iter().map(|_| Ok(true)));
                        continue;
                    }
                    Ok(false) => tracing::info!("a state of the batch had changed meanwhile; writing each change alone"),
                    Err(e) => tracing::warn!(error = %e, "the batch's transaction failed; writing each change alone"),
                }
            }
            results.extend(join_all(chunk.iter().map(|c| self.apply(c))).await);
        }
        results
    }

    pub(super) async fn apply_together(&self, changes: &[StateChange]) -> Result<bool, StoreError> {
        let mut items = Vec::new();
        let mut released: Vec<(Principal, EventId, i32)> = Vec::new();
        for change in changes {
            let (writes, release) = self.change_items(change)?;
            items.extend(writes);
            if let Some((principal, event)) = release {
                match released.iter_mut().find(|(p, e, _)| *p == principal && *e == event) {
                    Some((_, _, delta)) => *delta -= 1,
                    None => released.push((principal, event, -1)),
                }
            }
        }
        for (principal, event, delta) in released {
            items.push(self.pending_change(&principal, event, delta).await?);
        }
        transact_write(&self.client, items).await
    }

    /// Moves a pending state's due time to `until` (the sweeper, after enqueueing it), unless it
    /// changed since the sweeper read it: the message may have been handled already, and its new
    /// due time (a retry, a hold) stands. False when it is no longer pending, or changed.
    pub async fn postpone(&self, o: &Overdue, until: u64) -> Result<bool, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(state_key(&o.principal, o.event_id, &o.endpoint_id)))
            .update_expression("SET due_at = :until")
            .condition_expression("#s = :pending AND due_at = :seen")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":seen", n(o.due_at))
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        conditional(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::Mode;

    fn attempt(error: Option<&str>) -> Attempt {
        Attempt {
            event_id: EventId::generate(),
            endpoint_id: EndpointId::generate(),
            attempt: 3,
            succeeded: error.is_none(),
            http_status: error.map(|_| 502),
            latency_ms: 41,
            error: error.map(str::to_owned),
            response_body: Some("bad gateway".into()),
            created_at: 1_780_000_000,
            next_retry_at: None,
        }
    }

    #[test]
    fn an_attempt_item_carries_what_by_endpoint_projects_and_reads_back() {
        let config = aws_sdk_dynamodb::Config::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let client = Client::from_conf(config);
        let store = DeliveryStore::new(client.clone(), "d", EventStore::new(client, "e", Duration::from_secs(60)), Duration::from_secs(60));
        let principal = Principal { account: crate::model::ids::AccountId::generate(), mode: Mode::Test };
        for a in [attempt(None), attempt(Some("HTTP 502"))] {
            let put = store.attempt_put(&principal, &a).unwrap().put.unwrap();
            let item = put.item;
            // One of the endpoint's ByEndpoint keys: its partition and a shard.
            let (key, shard) = item["endpoint_pk"].as_s().unwrap().rsplit_once('#').unwrap();
            assert_eq!(key, endpoint_partition(&principal, &a.endpoint_id));
            assert!(shard.parse::<u32>().unwrap() < ENDPOINT_SHARDS);
            assert_eq!(item["attempt_number"].as_n().unwrap(), "3");
            assert_eq!(item["ok"].as_bool().unwrap(), &a.succeeded);
            // What `attempts` reads back is the attempt as written.
            let back: AttemptItem = serde_dynamo::from_item(item.clone()).unwrap();
            assert_eq!(back.attempt.error, a.error);
            // What the index holds (its keys and projection only) reads as a summary.
            let projected: HashMap<_, _> = item
                .into_iter()
                .filter(|(k, _)| {
                    ["pk", "sk", "endpoint_pk", "attempt_id", "event_id", "attempt_number", "ok", "latency_ms", "http_status", "error"].contains(&k.as_str())
                })
                .collect();
            let s: SummaryItem = serde_dynamo::from_item(projected).unwrap();
            assert_eq!(
                (s.fields.event_id, s.fields.attempt_number, s.fields.ok, s.fields.latency_ms, s.fields.http_status),
                (a.event_id, 3, a.succeeded, 41, a.http_status)
            );
        }
    }

    #[test]
    fn an_attempt_written_before_the_index_still_reads() {
        let a = attempt(None);
        let old = serde_json::json!({"pk": "p", "sk": "s", "expires_at": 1, "attempt": serde_json::to_value(&a).unwrap()});
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(old).unwrap();
        let back: AttemptItem = serde_dynamo::from_item(item).unwrap();
        assert!(back.summary.is_none() && back.endpoint_pk.is_none());
        assert_eq!(back.attempt.latency_ms, 41);
    }
}
