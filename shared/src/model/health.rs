//! An endpoint's delivery health as it is stored, and a change to it. The rules that move it (its
//! circuit breaker) are `webhook::breaker`'s; where it is kept, `store::health`'s.

use serde::{Deserialize, Serialize};

/// An endpoint's delivery health, as stored (absent: healthy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Unix seconds of the first failure of the current run of failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<u64>,
    /// Set while the breaker is open: the time of the next probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_probe_at: Option<u64>,
    /// Seconds between the last probe and the next.
    #[serde(default)]
    pub probe_interval: u64,
    /// A `429`'s `Retry-After`: no attempt before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<u64>,
    /// Why the breaker disabled the endpoint, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The endpoint's `rate_limit` state: the theoretical arrival time of its next send, unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tat_ms: Option<u64>,
    /// Set while its attempts are slow: each one then takes a lease (`webhook::throttle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_since: Option<u64>,
    /// Set while its attempts take `throttle::SLOW_LANE_MS` or more: its deliveries then go through
    /// the slow lane (`webhook::deliver`), without a lease unless it is slow too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_lane_since: Option<u64>,
    /// The leases of a slow endpoint: lease number → expiry (unix ms).
    #[serde(default)]
    pub leases: std::collections::BTreeMap<String, u64>,
    /// How long the last leased attempt took (ms): a slow endpoint's pace (`webhook::throttle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_ms: Option<u64>,
    /// The end of the endpoint's waiting line, unix ms: when the last delivery that could not go
    /// (over its `rate_limit` or its concurrency) comes back (`webhook::throttle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_ms: Option<u64>,
}

/// What the delivery of a batch changes in one endpoint's health: written in one update, only when
/// something changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthUpdate {
    /// Back to healthy: a success after failures (a probe's, say).
    pub reset: bool,
    /// Failures to add to the run (when nothing succeeded).
    pub failures: u32,
    /// Open the breaker (unless it is open already): the first probe's time and interval.
    pub open: Option<(u64, u64)>,
    /// Pause the endpoint until this time.
    pub paused_until: Option<u64>,
    /// Disable the endpoint, with this reason.
    pub disable: Option<String>,
    /// Mark the endpoint slow (`Some(true)`) or fast again (`Some(false)`).
    pub slow: Option<bool>,
    /// Send its deliveries through the slow lane (`Some(true)`) or the delivery queue again
    /// (`Some(false)`).
    pub slow_lane: Option<bool>,
}

/// What an attempt found of its endpoint (`store::health`'s `mark`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mark {
    /// It takes `throttle::SLOW_MS` or more: its attempts take leases.
    Slow,
    /// It takes `throttle::SLOW_LANE_MS` or more: its deliveries go through the slow lane.
    SlowLane,
}
