//! How an account's events spread over the Events table's partition keys: its **shard plan**.
//!
//! DynamoDB takes at most 1,000 write units a second on one partition key. An account and mode
//! whose events all share `{account}#{mode}` (and `…#{type}`, `…#{family}` in the indexes) tops
//! out at about 250 events/s (`make capacity`). An account can have its events written over `n`
//! keys instead, `{account}#{mode}#{s}` with `s` = the event id's random bits mod `n`.
//!
//! - **The plan is a list of steps** (`from_ms`, `shards`), kept in one item of the Events table
//!   under the account's unsharded key (`id` = [`PLAN_ID`], which no event id or query range
//!   reaches). An event's key follows from its id alone and the step in force at the id's time:
//!   one step of 1 shard (or none) is the unsharded key, so every event written before a plan, and
//!   every account that never has one, keeps today's key. A GET stays one read.
//! - **A change takes effect in the future** ([`PLAN_NOTICE`] by default), longer than any
//!   process caches a plan ([`ShardPlans`]: the key cache bound, at most [`MAX_PLAN_CACHE`]). By the time
//!   the first event is written under a new step, every reader knows the step. Nothing is moved
//!   and nothing is lost: each event stays where its own step put it, so the count can go up or
//!   down.
//! - **A list page reads every key the plan's steps give for its id range** (one Query each, in
//!   parallel, `Limit = limit + 1`, merged by id; see `store/event_list.rs`). An account without a plan pays
//!   one Query, as before.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::cache::TtlCache;
use crate::model::ids::{EventId, Principal, unix_now_ms};
use crate::store::{IdKey, StoreError, key_item};

/// The plan item's `id`, under the account's unsharded key (`"shards"` sorts after every `evt_…`).
pub const PLAN_ID: &str = "shards";
/// The most keys an account's events can be spread over: 32 × 250 = 8,000 events/s.
pub const MAX_EVENT_SHARDS: u16 = 32;
/// How far ahead a change takes effect: well past the longest a plan is cached (60 s), with room
/// for clocks that disagree.
pub const PLAN_NOTICE: Duration = Duration::from_secs(300);
/// The longest a process keeps a plan.
pub const MAX_PLAN_CACHE: Duration = Duration::from_secs(60);
/// Plans a process remembers at once; past it, the cache starts again (each miss is one read).
const CACHED_PLANS: usize = 10_000;

/// From `from_ms` (unix milliseconds, compared with event ids' time) on, events are written over
/// `shards` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub from_ms: u64,
    pub shards: u16,
}

/// An account and mode's steps, oldest first. Before the first step, and for an account with no
/// plan, events are written under one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlan {
    pub steps: Vec<Step>,
}

impl ShardPlan {
    /// The shard count in force at `ms`.
    pub fn shards_at(&self, ms: u64) -> u16 {
        self.steps.iter().rev().find(|s| s.from_ms <= ms).map_or(1, |s| s.shards)
    }

    /// The Events table's partition key of the event `id`: `{account}#{mode}` when its step has one
    /// shard, else `{account}#{mode}#{s}`.
    pub fn partition(&self, principal: &Principal, id: EventId) -> String {
        match self.shards_at(id.created_ms()) {
            1 => principal.partition(),
            n => format!("{}#{}", principal.partition(), id.ulid().random() % u128::from(n)),
        }
    }

    /// Every partition key an event with an id time in `lo_ms..=hi_ms` can have, the unsharded key
    /// first: the union of the keys of the steps in force in that span.
    pub fn partitions(&self, principal: &Principal, lo_ms: u64, hi_ms: u64) -> Vec<String> {
        // The count before the first step (1), then each step's, for the steps that overlap the span.
        let mut counts = vec![(0, 1u16)];
        counts.extend(self.steps.iter().map(|s| (s.from_ms, s.shards)));
        let mut unsharded = false;
        let mut most = 0;
        for (i, &(from, n)) in counts.iter().enumerate() {
            let until = counts.get(i + 1).map_or(u64::MAX, |&(next, _)| next);
            if from > hi_ms || until <= lo_ms {
                continue;
            }
            if n == 1 {
                unsharded = true;
            } else {
                most = most.max(n);
            }
        }
        let base = principal.partition();
        let sharded = (0..most).map(|s| format!("{base}#{s}"));
        if unsharded { std::iter::once(base.clone()).chain(sharded).collect() } else { sharded.collect() }
    }
}

/// `{account}#{mode}` or `{account}#{mode}#{s}` (an Events key) → the principal.
pub fn principal_of_events_key(pk: &str) -> Option<Principal> {
    let base = match pk.rsplit_once('#') {
        Some((base, s)) if s.parse::<u16>().is_ok() => base,
        _ => pk,
    };
    crate::store::principal_of_partition(base)
}

/// Reads and changes shard plans, and remembers what it read for `ttl`.
#[derive(Debug, Clone)]
pub struct ShardPlans {
    client: Client,
    table: String,
    /// Each plan read, for `ttl` (shared by the clones).
    cache: Arc<TtlCache<Principal, Arc<ShardPlan>>>,
}

#[derive(Debug, Deserialize)]
struct PlanItem {
    #[serde(default)]
    steps: Vec<Step>,
}

impl ShardPlans {
    /// Plans are kept `ttl` (the wiring passes the key cache bound), at most [`MAX_PLAN_CACHE`]:
    /// well within [`PLAN_NOTICE`] whatever the configuration says.
    pub fn new(client: Client, table: impl Into<String>, ttl: Duration) -> Self {
        ShardPlans { client, table: table.into(), cache: Arc::new(TtlCache::new(ttl.min(MAX_PLAN_CACHE), CACHED_PLANS)) }
    }

    fn key(principal: &Principal) -> HashMap<String, AttributeValue> {
        key_item(&IdKey::of(principal, PLAN_ID))
    }

    /// The plan of `principal`, from the cache while it is younger than the ttl.
    pub async fn get(&self, principal: &Principal) -> Result<Arc<ShardPlan>, StoreError> {
        if let Some(plan) = self.cache.get(principal) {
            return Ok(plan);
        }
        let plan = Arc::new(self.read(principal).await?);
        self.cache.insert(principal.clone(), plan.clone());
        Ok(plan)
    }

    /// The stored plan, uncached (strongly consistent).
    pub async fn read(&self, principal: &Principal) -> Result<ShardPlan, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(Self::key(principal))).consistent_read(true).send().await?;
        Ok(match out.item {
            Some(item) => ShardPlan { steps: serde_dynamo::from_item::<_, PlanItem>(item)?.steps },
            None => ShardPlan::default(),
        })
    }

    /// Adds a step: from `from_ms` on, `principal`'s events are written over `shards` keys
    /// (1 to [`MAX_EVENT_SHARDS`]). A step must not start before the last one (`Conflict`), and
    /// should start at least [`PLAN_NOTICE`] from now (the caller's choice, for tests).
    pub async fn add_step(&self, principal: &Principal, step: Step) -> Result<ShardPlan, StoreError> {
        if !(1..=MAX_EVENT_SHARDS).contains(&step.shards) {
            return Err(StoreError::Malformed(format!("shards must be 1 to {MAX_EVENT_SHARDS}, not {}", step.shards)));
        }
        let added = serde_dynamo::to_attribute_value(vec![step])?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(principal)))
            .update_expression("SET steps = list_append(if_not_exists(steps, :none), :step), last_from = :from")
            .condition_expression("attribute_not_exists(last_from) OR last_from <= :from")
            .expression_attribute_values(":none", AttributeValue::L(vec![]))
            .expression_attribute_values(":step", added)
            .expression_attribute_values(":from", AttributeValue::N(step.from_ms.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await?;
        let steps = out.attributes.map(serde_dynamo::from_item::<_, PlanItem>).transpose()?.map(|p| p.steps).unwrap_or_default();
        self.cache.remove(principal);
        Ok(ShardPlan { steps })
    }

    /// [`Self::add_step`] from [`PLAN_NOTICE`] from now.
    pub async fn change(&self, principal: &Principal, shards: u16) -> Result<ShardPlan, StoreError> {
        self.add_step(principal, Step { from_ms: unix_now_ms() + PLAN_NOTICE.as_millis() as u64, shards }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{AccountId, Mode};
    use ulid::Ulid;

    fn p() -> Principal {
        Principal { account: AccountId::generate(), mode: Mode::Test }
    }

    fn id(ms: u64, random: u128) -> EventId {
        EventId::from_ulid(Ulid::from_parts(ms, random))
    }

    #[test]
    fn no_plan_is_the_unsharded_key() {
        let p = p();
        let plan = ShardPlan::default();
        assert_eq!(plan.partition(&p, id(5, 7)), p.partition());
        assert_eq!(plan.partitions(&p, 0, u64::MAX), vec![p.partition()]);
    }

    #[test]
    fn each_event_keeps_the_key_of_the_step_at_its_time() {
        let p = p();
        let plan = ShardPlan { steps: vec![Step { from_ms: 100, shards: 4 }, Step { from_ms: 200, shards: 1 }, Step { from_ms: 300, shards: 8 }] };
        let base = p.partition();
        assert_eq!(plan.partition(&p, id(99, 7)), base);
        assert_eq!(plan.partition(&p, id(100, 7)), format!("{base}#3"));
        assert_eq!(plan.partition(&p, id(250, 7)), base);
        assert_eq!(plan.partition(&p, id(300, 7)), format!("{base}#7"));
        assert_eq!(plan.partition(&p, id(300, 9)), format!("{base}#1"));
        // A span reads the keys of every step it overlaps, and only those.
        let keys = |lo, hi| plan.partitions(&p, lo, hi);
        assert_eq!(keys(0, 99), vec![base.clone()]);
        assert_eq!(keys(100, 199), (0..4).map(|s| format!("{base}#{s}")).collect::<Vec<_>>());
        assert_eq!(keys(150, 250), std::iter::once(base.clone()).chain((0..4).map(|s| format!("{base}#{s}"))).collect::<Vec<_>>());
        assert_eq!(keys(0, u64::MAX).len(), 1 + 8);
        // Every event's key is among its span's keys.
        for ms in [0, 99, 100, 199, 200, 299, 300, 10_000] {
            for r in 0..20 {
                assert!(keys(ms, ms).contains(&plan.partition(&p, id(ms, r))), "{ms} {r}");
            }
        }
    }

    #[test]
    fn events_keys_name_their_principal() {
        let p = p();
        assert_eq!(principal_of_events_key(&p.partition()), Some(p.clone()));
        assert_eq!(principal_of_events_key(&format!("{}#12", p.partition())), Some(p.clone()));
        assert_eq!(principal_of_events_key(&format!("{}#x", p.partition())), None);
    }
}
