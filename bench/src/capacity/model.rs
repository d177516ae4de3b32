//! From measured units to ceilings: which partition key each table's and index's units land on,
//! the units the hottest key takes per event and per delivery, and what that allows per second
//! (1,000 write units and 3,000 read units per partition key, whatever the table's mode).

use std::collections::BTreeMap;

use paygate::store::deliveries::ENDPOINT_SHARDS;

use super::recorder::Units;
use super::workload::{DELIVER_FAILING, DELIVER_OK, Measured, PUBLISH, Per};

pub const KEY_WRITE_LIMIT: f64 = 1000.0;
pub const KEY_READ_LIMIT: f64 = 3000.0;

/// What a partition key stands for, and so how many of them share the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyClass {
    /// `{account}#{mode}`: every event of a merchant.
    Merchant,
    /// `{account}#{mode}#{type}`: a merchant's events of one type.
    MerchantType,
    /// `{account}#{mode}#{family}`: a merchant's events of one family.
    MerchantFamily,
    /// One event's delivery states and attempts: written a few times, never hot.
    Event,
    /// One endpoint: its failures (`ByFailed`), health and throttle items, and its delivery copy.
    Endpoint,
    /// One of an endpoint's `ByEndpoint` keys (its attempts, spread over `ENDPOINT_SHARDS`).
    EndpointShard,
    /// One of the `ByDue` shards, shared by every merchant of the platform.
    DueShard,
    /// One API key (and what is stored by key).
    Key,
}

impl KeyClass {
    pub fn describe(self) -> &'static str {
        match self {
            KeyClass::Merchant => "one merchant and mode",
            KeyClass::MerchantType => "one merchant's type",
            KeyClass::MerchantFamily => "one merchant's family",
            KeyClass::Event => "one event",
            KeyClass::Endpoint => "one endpoint",
            KeyClass::EndpointShard => "one of an endpoint's ByEndpoint shards",
            KeyClass::DueShard => "one ByDue shard (all merchants)",
            KeyClass::Key => "one API key",
        }
    }
}

/// The class of the partition key a table's (or index's) item lives under; `pk` tells the
/// per-endpoint items (`{account}#{mode}#we_…`: in the Deliveries table, and the endpoints'
/// delivery copies in WebhookEndpoints) from the per-event and per-merchant ones.
pub fn class(table: &str, index: Option<&str>, pk: Option<&str>) -> KeyClass {
    match (table, index) {
        ("Events", Some("ByType")) => KeyClass::MerchantType,
        ("Events", Some("ByFamily")) => KeyClass::MerchantFamily,
        ("WebhookEndpoints", None) if pk.is_some_and(|k| k.contains("#we_")) => KeyClass::Endpoint,
        ("Events" | "WebhookEndpoints", _) => KeyClass::Merchant,
        ("Deliveries", Some("ByDue")) => KeyClass::DueShard,
        ("Deliveries", Some("ByEndpoint")) => KeyClass::EndpointShard,
        ("Deliveries", Some(_)) => KeyClass::Endpoint,
        ("Deliveries", None) if pk.is_some_and(|k| k.contains("#we_")) => KeyClass::Endpoint,
        ("Deliveries", None) => KeyClass::Event,
        _ => KeyClass::Key,
    }
}

/// A table or index, by its logical name: `Events`, `Events.ByType`.
pub fn place(table: &str, index: Option<&str>) -> String {
    match index {
        Some(i) => format!("{table}.{i}"),
        None => table.to_owned(),
    }
}

/// Units of one phase, per unit of its count, by place and key class, write and read apart.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Cost {
    /// (place, key class) → (write units, read units) per event, delivery or request.
    #[serde(serialize_with = "as_rows")]
    pub by_place: BTreeMap<(String, KeyClass), (f64, f64)>,
}

/// `[{"place","key","write","read"}]`: JSON objects take string keys only.
fn as_rows<S: serde::Serializer>(m: &BTreeMap<(String, KeyClass), (f64, f64)>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(m.len()))?;
    for ((place, key), (write, read)) in m {
        seq.serialize_element(&serde_json::json!({"place": place, "key": key, "write": write, "read": read}))?;
    }
    seq.end()
}

impl Cost {
    pub fn write(&self) -> f64 {
        self.by_place.values().map(|(w, _)| w).sum()
    }

    pub fn read(&self) -> f64 {
        self.by_place.values().map(|(_, r)| r).sum()
    }

    /// Write and read units per unit on every key of a class (over all places where it appears).
    pub fn on(&self, place: &str, class: KeyClass) -> (f64, f64) {
        self.by_place.get(&(place.to_owned(), class)).copied().unwrap_or_default()
    }
}

/// Sums `units` per place and key class, divided by `count`. A request's table units are shared
/// equally by the keys it named, each under its own class.
pub fn cost(units: &[Units], logical: &dyn Fn(&str) -> String, count: usize) -> Cost {
    let mut by_place: BTreeMap<(String, KeyClass), (f64, f64)> = BTreeMap::new();
    let per = 1.0 / count.max(1) as f64;
    for u in units {
        let table = logical(&u.table);
        let shares: Vec<Option<&str>> = if u.keys.is_empty() || u.index.is_some() { vec![None] } else { u.keys.iter().map(|k| Some(k.as_str())).collect() };
        let each = u.units * per / shares.len() as f64;
        for key in shares {
            let entry = by_place.entry((place(&table, u.index.as_deref()), class(&table, u.index.as_deref(), key))).or_default();
            if u.write { entry.0 += each } else { entry.1 += each }
        }
    }
    Cost { by_place }
}

/// Every phase's cost, by phase name.
pub fn costs(m: &Measured) -> BTreeMap<&'static str, (Per, Cost)> {
    let logical = |physical: &str| m.tables.iter().find(|(p, _)| p == physical).map(|(_, l)| (*l).to_owned()).unwrap_or_else(|| physical.to_owned());
    m.phases.iter().map(|p| (p.name, (p.per, cost(&p.units, &logical, p.count)))).collect()
}

/// The units the hottest key of a place takes per event of one merchant with `endpoints`
/// endpoints (publishing, then delivering each), and per delivery: `(place, class, write, read)`.
/// One merchant, one type, `endpoints` endpoints sharing the deliveries evenly and `due_shards`
/// shards sharing `ByDue` evenly (the shard is a hash of the event id).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HotKey {
    pub place: String,
    pub class: KeyClass,
    pub write_per_event: f64,
    pub read_per_event: f64,
    pub write_per_delivery: f64,
    /// The same two, when the deliveries fail (three attempts and the final failure).
    pub write_per_event_failing: f64,
    pub write_per_delivery_failing: f64,
}

pub fn hot_keys(m: &Measured, due_shards: u32) -> Vec<HotKey> {
    let costs = costs(m);
    let n = m.endpoints.max(1) as f64;
    let empty = (Per::Event, Cost::default());
    let publish = &costs.get(PUBLISH).unwrap_or(&empty).1;
    let deliver = &costs.get(DELIVER_OK).unwrap_or(&empty).1;
    let failing = &costs.get(DELIVER_FAILING).unwrap_or(&empty).1;
    let mut places: Vec<(String, KeyClass)> = [publish, deliver, failing].iter().flat_map(|c| c.by_place.keys().cloned()).collect();
    places.sort();
    places.dedup();
    let sharing = |class: KeyClass| match class {
        KeyClass::Endpoint => n,
        KeyClass::EndpointShard => n * f64::from(ENDPOINT_SHARDS),
        KeyClass::DueShard => f64::from(due_shards),
        _ => 1.0,
    };
    places
        .into_iter()
        .filter(|(_, c)| *c != KeyClass::Key)
        .map(|(place, class)| {
            let (pw, pr) = publish.on(&place, class);
            let (dw, dr) = deliver.on(&place, class);
            let (fw, _) = failing.on(&place, class);
            // Per event: the publish, and each of its deliveries, over the keys that share them.
            let per_event = |d: f64| (pw + d * m.endpoints as f64) / sharing(class);
            // Per delivery, on its key: an endpoint's key takes each of its deliveries whole, its
            // share of the publish included; a shared key, its share.
            let per_delivery = |d: f64| match class {
                KeyClass::Endpoint => pw / n + d,
                KeyClass::EndpointShard => (pw / n + d) / f64::from(ENDPOINT_SHARDS),
                KeyClass::DueShard => (pw / n + d) / f64::from(due_shards),
                _ => per_event(d) / n,
            };
            HotKey {
                place,
                class,
                write_per_event: per_event(dw),
                read_per_event: (pr + dr * m.endpoints as f64) / sharing(class),
                write_per_delivery: per_delivery(dw),
                write_per_event_failing: per_event(fw),
                write_per_delivery_failing: per_delivery(fw),
            }
        })
        .collect()
}

/// A ceiling: what one merchant or the platform can do before a key (or a setting) is at its limit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ceiling {
    pub ceiling: String,
    pub set_by: String,
    pub value: f64,
    pub unit: &'static str,
    pub goal: f64,
    pub met: bool,
}

impl Ceiling {
    pub fn new(ceiling: impl Into<String>, set_by: impl Into<String>, value: f64, unit: &'static str, goal: f64) -> Ceiling {
        Ceiling { ceiling: ceiling.into(), set_by: set_by.into(), value, unit, goal, met: value >= goal }
    }
}

/// The goals of issue 23.
pub const GOAL_MERCHANT_EVENTS: f64 = 2000.0;
pub const GOAL_PLATFORM_EVENTS: f64 = 20_000.0;
pub const GOAL_PLATFORM_DELIVERIES: f64 = 50_000.0;
pub const GOAL_ENDPOINTS_PER_EVENT: f64 = 2.5;
/// The shard plan a merchant at the goal runs with (`paygate accounts shards --events 16`).
pub const GOAL_EVENT_SHARDS: u16 = 16;

/// Whether a place's key of `class` is one of a merchant's Events keys, which its shard plan
/// spreads (`store/event_shards.rs`): the table's and its indexes', not the endpoint list's.
pub fn sharded_by_plan(place: &str, class: KeyClass) -> bool {
    place.starts_with("Events") && matches!(class, KeyClass::Merchant | KeyClass::MerchantType | KeyClass::MerchantFamily)
}

/// The key ceilings that the hot keys imply: per key, the write or the read limit, whichever it
/// reaches first (keys that take no units are left out). A merchant's Events keys are `event_shards`
/// keys (its shard plan; the measured units are per key of an unsharded merchant, and the plan
/// spreads its events evenly by their ids' random bits).
pub fn key_ceilings(hot: &[HotKey], event_shards: u16) -> Vec<Ceiling> {
    let mut out = Vec::new();
    // (ceiling, what sets it) from write and read units per item.
    let limit = |place: &str, write: f64, read: f64, per: &str| {
        let (w, r) = (if write > 0.0 { KEY_WRITE_LIMIT / write } else { f64::INFINITY }, if read > 0.0 { KEY_READ_LIMIT / read } else { f64::INFINITY });
        if w <= r { (w, format!("{place} key: {write:.2} WCU per {per}")) } else { (r, format!("{place} key: {read:.2} RCU per {per}")) }
    };
    for h in hot {
        let (merchant_value, merchant_set_by) = limit(&h.place, h.write_per_event, h.read_per_event, "event");
        let (delivery_value, delivery_set_by) = limit(&h.place, h.write_per_delivery, 0.0, "delivery");
        match h.class {
            KeyClass::Merchant | KeyClass::MerchantType | KeyClass::MerchantFamily if merchant_value.is_finite() => {
                let (value, set_by) = if sharded_by_plan(&h.place, h.class) && event_shards > 1 {
                    (merchant_value * f64::from(event_shards), format!("{merchant_set_by}, over the {event_shards} keys of its shard plan"))
                } else {
                    (merchant_value, merchant_set_by)
                };
                out.push(Ceiling::new(format!("events/s of {} ({})", h.class.describe(), h.place), set_by, value, "events/s", GOAL_MERCHANT_EVENTS))
            }
            KeyClass::Endpoint | KeyClass::EndpointShard if delivery_value.is_finite() => out.push(Ceiling::new(
                format!("deliveries/s to one endpoint ({})", h.place),
                delivery_set_by,
                delivery_value,
                "deliveries/s",
                GOAL_MERCHANT_EVENTS,
            )),
            KeyClass::DueShard => {
                out.push(Ceiling::new(
                    "deliveries/s of the platform",
                    format!("{} shards: {:.3} WCU per delivery on each", h.place, h.write_per_delivery),
                    delivery_value,
                    "deliveries/s",
                    GOAL_PLATFORM_DELIVERIES,
                ));
                out.push(Ceiling::new(
                    "events/s of the platform (2.5 endpoints per event)",
                    format!("{} shards", h.place),
                    delivery_value / GOAL_ENDPOINTS_PER_EVENT,
                    "events/s",
                    GOAL_PLATFORM_EVENTS,
                ));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(table: &str, index: Option<&str>, write: bool, units: f64, keys: &[&str]) -> Units {
        Units {
            phase: "p".into(),
            operation: "TransactWriteItems",
            table: table.into(),
            index: index.map(Into::into),
            write,
            units,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    #[test]
    fn units_go_to_the_class_of_the_key_they_land_on() {
        let units = [
            u("Events", None, true, 4.0, &["acct_1#test"]),
            u("Events", Some("ByType"), true, 2.0, &["acct_1#test"]),
            // A transaction that wrote a delivery state and the endpoint's health item.
            u("Deliveries", None, true, 4.0, &["acct_1#test#evt_1", "acct_1#test#we_1"]),
            u("Deliveries", Some("ByDue"), true, 2.0, &[]),
            u("Deliveries", Some("ByEndpoint"), true, 2.0, &[]),
            // A batch's read of an endpoint's delivery copy, and a publish's of the endpoint list.
            u("WebhookEndpoints", None, false, 2.0, &["acct_1#test#we_1"]),
            u("WebhookEndpoints", None, false, 2.0, &["acct_1#test"]),
        ];
        let c = cost(&units, &|t| t.to_owned(), 2);
        assert_eq!(c.on("Events", KeyClass::Merchant), (2.0, 0.0));
        assert_eq!(c.on("Events.ByType", KeyClass::MerchantType), (1.0, 0.0));
        assert_eq!(c.on("Deliveries", KeyClass::Event), (1.0, 0.0));
        assert_eq!(c.on("Deliveries", KeyClass::Endpoint), (1.0, 0.0));
        assert_eq!(c.on("Deliveries.ByDue", KeyClass::DueShard), (1.0, 0.0));
        assert_eq!(c.on("Deliveries.ByEndpoint", KeyClass::EndpointShard), (1.0, 0.0));
        assert_eq!(c.on("WebhookEndpoints", KeyClass::Endpoint), (0.0, 1.0));
        assert_eq!(c.on("WebhookEndpoints", KeyClass::Merchant), (0.0, 1.0));
        assert_eq!(c.write(), 7.0);
    }

    #[test]
    fn a_ceiling_is_the_key_limit_over_the_units_per_item() {
        let hot = [HotKey {
            place: "Events".into(),
            class: KeyClass::Merchant,
            write_per_event: 4.0,
            read_per_event: 0.0,
            write_per_delivery: 2.0,
            write_per_event_failing: 4.0,
            write_per_delivery_failing: 2.0,
        }];
        let c = key_ceilings(&hot, 1);
        assert_eq!(c[0].value, 250.0);
        assert!(!c[0].met);
        // Over a plan of 16 keys, each takes a sixteenth.
        let c = key_ceilings(&hot, 16);
        assert_eq!(c[0].value, 4000.0);
        assert!(c[0].met);
    }
}
