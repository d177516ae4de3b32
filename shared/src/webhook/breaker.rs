//! An endpoint's circuit breaker: its delivery health and the rules that move it. Pure: the health
//! is stored by `store::health` and read with every delivery batch; nothing here does I/O.
//!
//! - **Closed** (healthy): deliveries are attempted. Each failed attempt (any answer but a 2xx, a
//!   timeout, a refused connection) adds one to `consecutive_failures`; a success resets it.
//! - **Open**, after [`BreakerConfig::threshold`] failures in a row: deliveries are not attempted.
//!   They stay pending (counted in `pending_webhooks`) and wait in DynamoDB until the next probe,
//!   each at its own moment of the probe interval, so they come back spread out, never at once.
//! - **Probe**: at `next_probe_at`, one delivery (whichever claims the probe first, across every
//!   deliverer) is attempted; the next probe is an interval later, the interval doubling from
//!   [`BreakerConfig::first_probe`] to [`BreakerConfig::max_probe`]. A success closes the breaker.
//! - A delivery that has waited past its own schedule's time is attempted whatever the breaker
//!   says, through its remaining attempts one first wait apart (`decision::after`): none is finally
//!   failed only because the breaker was open, nor without its schedule's attempts, nor much later
//!   than its schedule's time.
//! - An endpoint failing continuously for [`BreakerConfig::disable_after`] (5 days, as Svix and
//!   Stripe do) is disabled, with the reason on its health. Enabling it again resets the breaker.
//! - A `429` pauses the endpoint until its `Retry-After` (at least a second, 60 s without one): no
//!   other delivery to it is attempted meanwhile. It is not a failure of the breaker.
//!
//! Writes happen only when the health changes (a failure, a success after failures, a probe, a
//! pause), so a healthy endpoint's deliveries cost nothing extra.

pub use crate::model::health::{Health, HealthUpdate};
use crate::model::ids::Timestamp;
use crate::webhook::throttle::{FAST_AGAIN_MS, NEW_IN_LANE_SECS, SLOW_LANE_MS, SLOW_MS};

/// The breaker's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed attempts that open the breaker.
    pub threshold: u32,
    /// Seconds from opening to the first probe; the interval doubles after each failed probe.
    pub first_probe: u64,
    /// The longest interval between two probes.
    pub max_probe: u64,
    /// Seconds of continuous failure after which the endpoint is disabled.
    pub disable_after: u64,
    /// Attempts at once to a slow endpoint, across every deliverer (`webhook::throttle`).
    pub max_concurrency: u32,
}

impl Default for BreakerConfig {
    /// 5 failures in a row; probes 30 s apart at first, then 1, 2, 4, 8 and 10 minutes; disabled
    /// after 5 days of failing.
    fn default() -> Self {
        BreakerConfig { threshold: 5, first_probe: 30, max_probe: 600, disable_after: 5 * 86_400, max_concurrency: 10 }
    }
}

impl BreakerConfig {
    /// `PAYGATE_BREAKER_THRESHOLD`, `PAYGATE_BREAKER_PROBE_SECONDS` (`first,max`),
    /// `PAYGATE_DISABLE_AFTER_SECONDS` and `PAYGATE_ENDPOINT_CONCURRENCY`, each defaulting to
    /// [`BreakerConfig::default`].
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut c = BreakerConfig::default();
        let number = |var: &str, v: &str| v.trim().parse::<u64>().map_err(|_| format!("{var}: {v:?} is not a whole number"));
        if let Some(v) = get("PAYGATE_BREAKER_THRESHOLD").filter(|v| !v.trim().is_empty()) {
            c.threshold = u32::try_from(number("PAYGATE_BREAKER_THRESHOLD", &v)?.max(1)).unwrap_or(u32::MAX);
        }
        if let Some(v) = get("PAYGATE_BREAKER_PROBE_SECONDS").filter(|v| !v.trim().is_empty()) {
            let (first, max) = v.split_once(',').ok_or_else(|| format!("PAYGATE_BREAKER_PROBE_SECONDS: {v:?} is not `first,max`"))?;
            c.first_probe = number("PAYGATE_BREAKER_PROBE_SECONDS", first)?.max(1);
            c.max_probe = number("PAYGATE_BREAKER_PROBE_SECONDS", max)?.max(c.first_probe);
        }
        if let Some(v) = get("PAYGATE_DISABLE_AFTER_SECONDS").filter(|v| !v.trim().is_empty()) {
            c.disable_after = number("PAYGATE_DISABLE_AFTER_SECONDS", &v)?.max(1);
        }
        if let Some(v) = get("PAYGATE_ENDPOINT_CONCURRENCY").filter(|v| !v.trim().is_empty()) {
            c.max_concurrency = u32::try_from(number("PAYGATE_ENDPOINT_CONCURRENCY", &v)?.clamp(1, 100)).unwrap_or(100);
        }
        Ok(c)
    }
}

/// What one attempt says of its endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Succeeded,
    Failed,
    /// A `429`: pause the endpoint until then.
    Throttled {
        until: u64,
    },
}

impl Health {
    pub fn is_open(&self) -> bool {
        self.next_probe_at.is_some()
    }

    /// Whether its deliveries go through the slow lane: it is slow, or its attempts take
    /// [`SLOW_LANE_MS`] or more.
    pub fn in_slow_lane(&self) -> bool {
        self.slow_since.is_some() || self.slow_lane_since.is_some()
    }

    /// Whether its deliveries cross to the slow lane only as many as it has leases free: it is
    /// slow, or it came to the slow lane less than [`NEW_IN_LANE_SECS`] before `now`.
    pub fn crossing_bounded(&self, now: u64) -> bool {
        self.slow_since.is_some() || self.slow_lane_since.is_some_and(|since| now < since + NEW_IN_LANE_SECS)
    }

    /// The probe a deliverer claims at `now`: the next probe's time and interval after this one.
    pub fn claim(&self, config: &BreakerConfig, now: u64) -> (u64, u64) {
        let interval = (self.probe_interval.max(config.first_probe) * 2).min(config.max_probe);
        (now + interval, interval)
    }

    /// What one batch's attempts to the endpoint change: a success resets a failing or open
    /// breaker; otherwise failures add to the run, open the breaker at the threshold and disable
    /// the endpoint after `disable_after` of failing; a `429` pauses it. `None` when nothing changes
    /// (a healthy endpoint that succeeded).
    /// `latencies_ms`: how long the batch's attempts took, which marks the endpoint slow (any at
    /// [`SLOW_MS`] or more) or fast again (all under it), and sends it through the slow lane (any
    /// at [`SLOW_LANE_MS`] or more) or back to the delivery queue (all under [`FAST_AGAIN_MS`]).
    pub fn update(&self, signals: &[Signal], latencies_ms: &[u64], config: &BreakerConfig, now: u64) -> Option<HealthUpdate> {
        let mut u = HealthUpdate {
            paused_until: signals
                .iter()
                .filter_map(|s| match s {
                    Signal::Throttled { until } => Some(*until),
                    _ => None,
                })
                .max(),
            ..HealthUpdate::default()
        };
        if signals.contains(&Signal::Succeeded) {
            u.reset = self.consecutive_failures > 0 || self.is_open() || self.failing_since.is_some();
        } else {
            u.failures = signals.iter().filter(|s| **s == Signal::Failed).count() as u32;
            if u.failures > 0 {
                if !self.is_open() && self.consecutive_failures + u.failures >= config.threshold {
                    u.open = Some((now + config.first_probe, config.first_probe));
                }
                let since = self.failing_since.unwrap_or(now);
                if now.saturating_sub(since) >= config.disable_after {
                    u.disable = Some(format!("failing since {} (more than {} seconds)", Timestamp(since), config.disable_after));
                }
            }
        }
        let slow = latencies_ms.iter().any(|l| *l >= SLOW_MS);
        if !latencies_ms.is_empty() && slow != self.slow_since.is_some() {
            u.slow = Some(slow);
        }
        let lane = if latencies_ms.iter().any(|l| *l >= SLOW_LANE_MS) {
            Some(true)
        } else if !latencies_ms.is_empty() && latencies_ms.iter().all(|l| *l < FAST_AGAIN_MS) {
            Some(false)
        } else {
            None
        };
        if lane.is_some_and(|l| l != self.slow_lane_since.is_some()) {
            u.slow_lane = lane;
        }
        (u != HealthUpdate::default()).then_some(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: BreakerConfig = BreakerConfig { threshold: 5, first_probe: 30, max_probe: 600, disable_after: 1000, max_concurrency: 10 };

    #[test]
    fn failures_open_the_breaker_at_the_threshold_and_a_success_closes_it() {
        let healthy = Health::default();
        assert_eq!(healthy.update(&[Signal::Succeeded], &[], &C, 100), None, "a healthy success writes nothing");
        let four = healthy.update(&[Signal::Failed; 4], &[], &C, 100).unwrap();
        assert_eq!((four.failures, four.open, four.reset), (4, None, false));
        let failing = Health { consecutive_failures: 4, failing_since: Some(100), ..Health::default() };
        let fifth = failing.update(&[Signal::Failed], &[], &C, 110).unwrap();
        assert_eq!(fifth.open, Some((140, 30)));
        let open = Health { consecutive_failures: 5, failing_since: Some(100), next_probe_at: Some(140), probe_interval: 30, ..Health::default() };
        assert_eq!(open.update(&[Signal::Failed], &[], &C, 150).unwrap().open, None, "open already");
        // A success among failures: the endpoint works.
        let u = open.update(&[Signal::Failed, Signal::Succeeded], &[], &C, 150).unwrap();
        assert!(u.reset && u.failures == 0);
    }

    #[test]
    fn probes_grow_apart_up_to_the_cap() {
        let mut h = Health { next_probe_at: Some(0), probe_interval: 30, ..Health::default() };
        let mut intervals = Vec::new();
        for _ in 0..7 {
            let (_, i) = h.claim(&C, 0);
            intervals.push(i);
            h.probe_interval = i;
        }
        assert_eq!(intervals, [60, 120, 240, 480, 600, 600, 600]);
    }

    #[test]
    fn a_long_failure_disables_and_a_429_pauses_without_counting() {
        let h = Health { consecutive_failures: 50, failing_since: Some(100), next_probe_at: Some(2000), probe_interval: 600, ..Health::default() };
        assert_eq!(h.update(&[Signal::Failed], &[], &C, 1099).unwrap().disable, None);
        assert!(h.update(&[Signal::Failed], &[], &C, 1100).unwrap().disable.unwrap().starts_with("failing since"));
        let u = Health::default().update(&[Signal::Throttled { until: 160 }, Signal::Throttled { until: 130 }], &[], &C, 100).unwrap();
        assert_eq!((u.paused_until, u.failures, u.open), (Some(160), 0, None));
    }

    #[test]
    fn slow_attempts_mark_the_endpoint_slow_and_fast_ones_clear_it() {
        let fast = Health::default();
        let u = fast.update(&[Signal::Succeeded], &[30, 2_500], &C, 100).unwrap();
        assert_eq!((u.slow, u.slow_lane), (Some(true), Some(true)), "slow, and so in the slow lane");
        assert_eq!(fast.update(&[Signal::Succeeded], &[30, 40], &C, 100), None);
        let slow = Health { slow_since: Some(90), slow_lane_since: Some(90), ..Health::default() };
        let u = slow.update(&[Signal::Succeeded], &[30], &C, 100).unwrap();
        assert_eq!((u.slow, u.slow_lane), (Some(false), Some(false)));
        assert_eq!(slow.update(&[Signal::Succeeded], &[3_000], &C, 100), None, "slow already");
        let u = slow.update(&[Signal::Succeeded], &[900], &C, 100).unwrap();
        assert_eq!((u.slow, u.slow_lane), (Some(false), None), "no longer slow, still in the slow lane");
    }

    #[test]
    fn attempts_of_half_a_second_send_the_endpoint_through_the_slow_lane_until_they_take_under_a_quarter() {
        let fast = Health::default();
        let u = fast.update(&[Signal::Succeeded], &[30, 600], &C, 100).unwrap();
        assert_eq!((u.slow_lane, u.slow), (Some(true), None));
        assert_eq!(fast.update(&[Signal::Succeeded], &[30, 499], &C, 100), None);
        let lane = Health { slow_lane_since: Some(90), ..Health::default() };
        assert!(lane.in_slow_lane());
        assert!(lane.crossing_bounded(90 + NEW_IN_LANE_SECS - 1) && !lane.crossing_bounded(90 + NEW_IN_LANE_SECS), "bounded while new in the lane");
        assert!(Health { slow_since: Some(10), ..lane.clone() }.crossing_bounded(1_000), "bounded while slow");
        assert_eq!(lane.update(&[Signal::Succeeded], &[700], &C, 100), None, "in the slow lane already");
        assert_eq!(lane.update(&[Signal::Succeeded], &[40, 300], &C, 100), None, "not all under FAST_AGAIN_MS: it stays");
        assert_eq!(lane.update(&[Signal::Succeeded], &[40, 249], &C, 100).unwrap().slow_lane, Some(false));
        assert_eq!(lane.update(&[Signal::Failed], &[], &C, 100).unwrap().slow_lane, None, "no attempt's time, no change");
    }

    #[test]
    fn settings_come_from_the_environment() {
        assert_eq!(BreakerConfig::from_lookup(|_| None).unwrap(), BreakerConfig::default());
        let c = BreakerConfig::from_lookup(|k| match k {
            "PAYGATE_BREAKER_THRESHOLD" => Some("3".into()),
            "PAYGATE_BREAKER_PROBE_SECONDS" => Some("1,4".into()),
            "PAYGATE_DISABLE_AFTER_SECONDS" => Some("20".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c, BreakerConfig { threshold: 3, first_probe: 1, max_probe: 4, disable_after: 20, max_concurrency: 10 });
        assert!(BreakerConfig::from_lookup(|k| (k == "PAYGATE_BREAKER_PROBE_SECONDS").then(|| "30".into())).is_err());
    }
}
