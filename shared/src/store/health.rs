//! Each endpoint's delivery health (`webhook::breaker::Health`) in the Deliveries table: pk
//! `{account}#{mode}#{endpoint id}`, sk `health`, beside nothing else (delivery partitions are
//! `…#{event id}`). The deliverer reads it with every batch, in the batch's one BatchGetItem, and
//! writes it only when it changes; an absent item is a healthy endpoint. Each write keeps it 30 more
//! days (`expires_at`, the table's TTL), so a deleted endpoint's health goes by itself.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::model::health::{Health, HealthUpdate, Mark};
use crate::model::ids::{EndpointId, Principal, unix_now};
use crate::store::deliveries::endpoint_partition;
use crate::store::{Item, ItemRef, SortKey, StoreError, conditional, get_many, key_item};

/// The health item's sort key.
const SK: &str = "health";
/// A health item not written for this long goes (the table's TTL): a deleted endpoint's, say.
const KEPT_SECS: u64 = 30 * 86_400;

#[derive(Debug, Clone)]
pub struct HealthStore {
    client: Client,
    table: String,
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl HealthStore {
    /// `table`: the Deliveries table.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        HealthStore { client, table: table.into() }
    }

    fn key(principal: &Principal, endpoint: &EndpointId) -> Item {
        key_item(&SortKey { pk: endpoint_partition(principal, endpoint), sk: SK.to_owned() })
    }

    /// Where the endpoint's health lives (for [`crate::store::get_many`]).
    pub fn item_ref(&self, principal: &Principal, endpoint: &EndpointId) -> ItemRef {
        ItemRef { table: self.table.clone(), key: Self::key(principal, endpoint) }
    }

    /// A health item → the health.
    pub fn health_of(item: Item) -> Result<Health, StoreError> {
        Ok(serde_dynamo::from_item(item)?)
    }

    /// Writes what one batch changed, in one UpdateItem.
    pub async fn record(&self, principal: &Principal, endpoint: &EndpointId, u: &HealthUpdate) -> Result<(), StoreError> {
        let now = unix_now();
        let mut set = vec!["updated_at = :now", "expires_at = :expires"];
        let mut add = Vec::new();
        let mut remove = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(principal, endpoint)))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":expires", n(now + KEPT_SECS));
        if u.reset {
            set.push("consecutive_failures = :zero");
            // A line formed while it failed is over: waiting deliveries compete afresh.
            remove.extend(["failing_since", "next_probe_at", "probe_interval", "line_ms"]);
            req = req.expression_attribute_values(":zero", n(0));
        } else if u.failures > 0 {
            add.push("consecutive_failures :failures");
            set.push("failing_since = if_not_exists(failing_since, :now)");
            req = req.expression_attribute_values(":failures", n(u64::from(u.failures)));
            if let Some((probe, interval)) = u.open {
                // Not if another deliverer opened it meanwhile: its probe time stands.
                set.extend(["next_probe_at = if_not_exists(next_probe_at, :probe)", "probe_interval = if_not_exists(probe_interval, :interval)"]);
                req = req.expression_attribute_values(":probe", n(probe)).expression_attribute_values(":interval", n(interval));
            }
        }
        if let Some(until) = u.paused_until {
            set.push("paused_until = :paused");
            req = req.expression_attribute_values(":paused", n(until));
        }
        match u.slow {
            Some(true) => {
                set.extend(["slow_since = if_not_exists(slow_since, :now)", "leases = if_not_exists(leases, :no_leases)"]);
                req = req.expression_attribute_values(":no_leases", AttributeValue::M(Default::default()));
            }
            // Fast again: its line, paced for a slow endpoint, starts afresh.
            Some(false) => remove.extend(["slow_since", "slow_ms", "line_ms"]),
            None => {}
        }
        match u.slow_lane {
            Some(true) => set.push("slow_lane_since = if_not_exists(slow_lane_since, :now)"),
            Some(false) => remove.push("slow_lane_since"),
            None => {}
        }
        if let Some(reason) = &u.disable {
            set.push("disabled_reason = :reason");
            req = req.expression_attribute_values(":reason", AttributeValue::S(reason.clone()));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !add.is_empty() {
            expression += &format!(" ADD {}", add.join(", "));
        }
        if !remove.is_empty() {
            expression += &format!(" REMOVE {}", remove.join(", "));
        }
        req.update_expression(expression).send().await?;
        Ok(())
    }

    /// Claims the probe that was due at `seen` for this deliverer: the next one moves to `next`,
    /// `interval` later. False when another deliverer claimed it first (or the breaker closed).
    pub async fn claim_probe(&self, principal: &Principal, endpoint: &EndpointId, seen: u64, next: u64, interval: u64) -> Result<bool, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(principal, endpoint)))
            .update_expression("SET next_probe_at = :next, probe_interval = :interval")
            .condition_expression("next_probe_at = :seen")
            .expression_attribute_values(":seen", n(seen))
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":interval", n(interval))
            .return_values(ReturnValue::None)
            .send()
            .await;
        conditional(out)
    }

    /// Takes `rate_limit` slots: moves the endpoint's `tat_ms` from `seen` (what the batch read)
    /// to `next`. False when another deliverer moved it first (this batch then takes none).
    pub async fn take_slots(&self, principal: &Principal, endpoint: &EndpointId, seen: Option<u64>, next: u64) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(principal, endpoint)))
            .update_expression("SET tat_ms = :next, expires_at = :expires")
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":expires", n(unix_now() + KEPT_SECS));
        req = match seen {
            Some(seen) => req.condition_expression("tat_ms = :seen").expression_attribute_values(":seen", n(seen)),
            None => req.condition_expression("attribute_not_exists(tat_ms)"),
        };
        conditional(req.send().await)
    }

    /// Marks the endpoint slow (with room for its leases) or for the slow lane, if it is not
    /// already.
    pub async fn mark(&self, principal: &Principal, endpoint: &EndpointId, mark: Mark) -> Result<(), StoreError> {
        let now = unix_now();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(principal, endpoint)))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":expires", n(now + KEPT_SECS));
        req = match mark {
            Mark::Slow => req
                .update_expression("SET slow_since = if_not_exists(slow_since, :now), leases = if_not_exists(leases, :none), expires_at = :expires")
                .expression_attribute_values(":none", AttributeValue::M(Default::default())),
            Mark::SlowLane => req.update_expression("SET slow_lane_since = if_not_exists(slow_lane_since, :now), expires_at = :expires"),
        };
        req.send().await?;
        Ok(())
    }

    /// Takes lease `id` of a slow endpoint until `until_ms`, if it is free (absent or expired at
    /// `now_ms`).
    pub async fn acquire_lease(&self, principal: &Principal, endpoint: &EndpointId, id: &str, until_ms: u64, now_ms: u64) -> Result<bool, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(principal, endpoint)))
            .update_expression("SET leases.#i = :until")
            .condition_expression("attribute_exists(leases) AND (attribute_not_exists(leases.#i) OR leases.#i < :now)")
            .expression_attribute_names("#i", id)
            .expression_attribute_values(":until", n(until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        conditional(out)
    }

    /// Gives lease `id` back, if it is still the one taken until `until_ms`, with how long its
    /// attempt took (the endpoint's pace, `slow_ms`), in the same write.
    pub async fn release_lease(&self, principal: &Principal, endpoint: &EndpointId, id: &str, until_ms: u64, took_ms: u64) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(principal, endpoint)))
            .update_expression("REMOVE leases.#i SET slow_ms = :took")
            .condition_expression("leases.#i = :until")
            .expression_attribute_names("#i", id)
            .expression_attribute_values(":until", n(until_ms))
            .expression_attribute_values(":took", n(took_ms))
            .send()
            .await;
        conditional(out).map(|_| ())
    }

    /// Puts `count` deliveries at the end of the endpoint's waiting line, `pace_ms` apart, in one write:
    /// the time of their first place (unix ms). `seen` is the line's end as the batch read it: a
    /// line that has passed starts again now (unless another deliverer restarted it meanwhile);
    /// otherwise the line grows by their span (an atomic `ADD`, so concurrent batches never share a
    /// place).
    pub async fn join_line(
        &self,
        principal: &Principal,
        endpoint: &EndpointId,
        seen: Option<u64>,
        now_ms: u64,
        count: usize,
        pace_ms: u64,
    ) -> Result<u64, StoreError> {
        let span = count as u64 * pace_ms;
        let expires = n(unix_now() + KEPT_SECS);
        if seen.is_none_or(|end| end < now_ms) {
            let restarted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(principal, endpoint)))
                .update_expression("SET line_ms = :end, expires_at = :expires")
                .condition_expression("attribute_not_exists(line_ms) OR line_ms < :now")
                .expression_attribute_values(":end", n(now_ms + span))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":expires", expires.clone())
                .send()
                .await;
            if conditional(restarted)? {
                return Ok(now_ms);
            }
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(principal, endpoint)))
            .update_expression("ADD line_ms :span SET expires_at = :expires")
            .expression_attribute_values(":span", n(span))
            .expression_attribute_values(":expires", expires)
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await?;
        let end = out.attributes.and_then(|a| a.get("line_ms").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok())).unwrap_or(now_ms + span);
        Ok(end.saturating_sub(span).max(now_ms))
    }

    /// The health of each endpoint, in order (healthy when none is stored): one BatchGetItem.
    pub async fn get_all(&self, principal: &Principal, endpoints: &[EndpointId]) -> Result<Vec<Health>, StoreError> {
        let refs: Vec<ItemRef> = endpoints.iter().map(|id| self.item_ref(principal, id)).collect();
        get_many(&self.client, &refs).await?.into_iter().map(|i| Ok(i.map(Self::health_of).transpose()?.unwrap_or_default())).collect()
    }

    /// The endpoint's health (healthy when none is stored).
    pub async fn get(&self, principal: &Principal, endpoint: &EndpointId) -> Result<Health, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(Self::key(principal, endpoint))).consistent_read(true).send().await?;
        Ok(out.item.map(Self::health_of).transpose()?.unwrap_or_default())
    }

    /// Forgets the endpoint's health: healthy again (an endpoint enabled again through the API).
    pub async fn clear(&self, principal: &Principal, endpoint: &EndpointId) -> Result<(), StoreError> {
        self.client.delete_item().table_name(&self.table).set_key(Some(Self::key(principal, endpoint))).send().await?;
        Ok(())
    }
}
