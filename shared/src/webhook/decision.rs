//! What the deliverer decides for one delivery, as pure functions of what it read: [`decide`]
//! (before: attempt it, probe, hold it, cancel it, or nothing) and [`after`] (a response → what
//! becomes of the delivery, and what it says of the endpoint). `deliver` does the I/O around them.

use crate::model::delivery::{DeliveryState, DeliveryStatus};
use crate::model::endpoint::{Endpoint, EndpointStatus};
use crate::model::ids::Mode;
use crate::webhook::breaker::{Health, Signal};

/// SQS's longest visibility timeout; the longest wait between two attempts.
pub const MAX_DELAY_SECS: u64 = 12 * 3600;
/// A message may come back this much before its state's next attempt and still be that attempt.
const SCHEDULE_SLACK_SECS: u64 = 2;
/// How long a `429` without `Retry-After` pauses its endpoint.
pub const DEFAULT_PAUSE_SECS: u64 = 60;
/// The longest pause a `Retry-After` may ask for.
const MAX_PAUSE_SECS: u64 = 3600;

/// Seconds to wait before each retry: entry `n` follows attempt `n + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    pub live: Vec<u64>,
    pub test: Vec<u64>,
}

impl Default for RetrySchedule {
    /// Live: about three days (1 m, 5 m, 30 m, 2 h, 5 h, 10 h, then 12 h). Test: 3 retries in about an hour.
    fn default() -> Self {
        let h = 3600;
        RetrySchedule { live: vec![60, 300, 1800, 2 * h, 5 * h, 10 * h, 12 * h, 12 * h, 12 * h, 12 * h, 12 * h], test: vec![300, 900, 2400] }
    }
}

impl RetrySchedule {
    /// `PAYGATE_RETRY_SCHEDULE=1,2,4` (seconds) sets both schedules, so tests finish in seconds.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("PAYGATE_RETRY_SCHEDULE") {
            Ok(v) if !v.trim().is_empty() => {
                let s = v
                    .split(',')
                    .map(|x| x.trim().parse::<u64>().map_err(|_| format!("PAYGATE_RETRY_SCHEDULE: {x:?} is not a number of seconds")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RetrySchedule { live: s.clone(), test: s })
            }
            _ => Ok(RetrySchedule::default()),
        }
    }

    pub fn for_mode(&self, mode: Mode) -> &[u64] {
        match mode {
            Mode::Live => &self.live,
            Mode::Test => &self.test,
        }
    }
}

/// The wait after failed attempt `attempt` (1-based): the schedule's entry scaled by `jitter` (drawn
/// from 0.8 to 1.2, so ±20 %), or the receiver's `Retry-After` within [1 s, 12 h]. `None` when the
/// schedule is exhausted.
pub fn next_delay(schedule: &[u64], attempt: u32, retry_after: Option<u64>, jitter: f64) -> Option<u64> {
    let base = *schedule.get(attempt.saturating_sub(1) as usize)?;
    if let Some(ra) = retry_after {
        return Some(ra.clamp(1, MAX_DELAY_SECS));
    }
    Some(((base as f64 * jitter).round() as u64).min(MAX_DELAY_SECS))
}

/// What the deliverer read of one delivery.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub state: Option<&'a DeliveryState>,
    pub event_exists: bool,
    /// `None` when the endpoint was deleted.
    pub endpoint: Option<&'a Endpoint>,
    pub health: &'a Health,
    /// The message came back from the dead-letter queue (it carries the deliverer's reason).
    pub redriven: bool,
}

/// What to do with one delivery now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: acknowledge the message.
    Skip(Skip),
    /// A finally failed delivery moved back from the dead-letter queue: re-open it (attempts from
    /// 1), then decide again.
    Reopen,
    /// Settle it as canceled (the event or the endpoint went away); `event_exists` says whether its
    /// count in `pending_webhooks` is released.
    Cancel { event_exists: bool },
    /// Not now: it waits in DynamoDB until `until` (breaker open, endpoint paused).
    Hold { until: u64 },
    /// The breaker is open and its probe is due: attempt it if this delivery wins the probe.
    Probe { attempt: u32 },
    /// Attempt it.
    Attempt { attempt: u32 },
}

/// Why a message needed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// No delivery state (expired, or never opened).
    NoState,
    /// Its next attempt is later: an early duplicate (the scheduler brings the one that is due).
    NotDue,
    /// Settled already: a duplicate.
    Settled,
}

/// Decides from what was read, at `now`. `jitter` (0 to 1) spreads held deliveries over the probe
/// interval, so that they come back one by one, not together.
pub fn decide(f: &Facts, schedule: &[u64], now: u64, jitter: f64) -> Decision {
    let Some(state) = f.state else { return Decision::Skip(Skip::NoState) };
    match state.status {
        DeliveryStatus::Pending if state.next_attempt_at > now + SCHEDULE_SLACK_SECS => return Decision::Skip(Skip::NotDue),
        DeliveryStatus::Pending => {}
        DeliveryStatus::Failed if f.redriven => return Decision::Reopen,
        _ => return Decision::Skip(Skip::Settled),
    }
    if !f.event_exists {
        return Decision::Cancel { event_exists: false };
    }
    if !f.endpoint.is_some_and(|e| e.status == EndpointStatus::Enabled) {
        return Decision::Cancel { event_exists: true };
    }
    let attempt = state.attempts + 1;
    // Its own schedule's time has run out while it waited: attempted whatever the breaker says (each
    // of its remaining attempts, close together: see [`after`]).
    if now >= deadline(state.opened_at, schedule) && f.health.is_open() {
        return Decision::Attempt { attempt };
    }
    if let Some(until) = f.health.paused_until.filter(|u| *u > now) {
        return Decision::Hold { until: until + (jitter * 2.0) as u64 };
    }
    match f.health.next_probe_at {
        Some(probe) if now >= probe => Decision::Probe { attempt },
        Some(probe) => Decision::Hold { until: probe + 1 + (jitter * f.health.probe_interval.max(1) as f64) as u64 },
        None => Decision::Attempt { attempt },
    }
}

/// What one attempt's answer makes of its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// `410 Gone`: the delivery finally fails and the endpoint is disabled.
    Gone,
    /// Failed; the next attempt at this time.
    RetryAt(u64),
    /// Failed, and the schedule is exhausted: the final failure.
    Exhausted,
}

/// When a delivery opened at `opened_at` has had its schedule's time: the sum of its waits at the
/// most jitter can make them (+20 %), and two seconds each for the scheduler's lateness. A delivery
/// that was never held ends before then.
pub fn deadline(opened_at: u64, schedule: &[u64]) -> u64 {
    opened_at + schedule.iter().sum::<u64>() * 6 / 5 + 2 * schedule.len() as u64
}

/// The verdict on attempt `attempt` of a delivery opened at `opened_at`, which got `status`
/// (`None`: no answer) and `retry_after`, and what it says of the endpoint's health. `jitter` as
/// [`next_delay`] takes it. A delivery past its schedule's time (held by an open breaker, a pause or
/// a line) makes its remaining attempts the schedule's first wait apart, not at its growing waits:
/// it ends with every attempt of its schedule, a few of the first wait after its time, not up to a
/// whole schedule later.
pub fn after(status: Option<u16>, retry_after: Option<u64>, attempt: u32, schedule: &[u64], opened_at: u64, now: u64, jitter: f64) -> (Verdict, Signal) {
    match status {
        Some(s) if (200..300).contains(&s) => return (Verdict::Delivered, Signal::Succeeded),
        Some(410) => return (Verdict::Gone, Signal::Failed),
        _ => {}
    }
    let signal = match status {
        Some(429) => Signal::Throttled { until: now + retry_after.unwrap_or(DEFAULT_PAUSE_SECS).clamp(1, MAX_PAUSE_SECS) },
        _ => Signal::Failed,
    };
    let late = now >= deadline(opened_at, schedule);
    let verdict = match next_delay(schedule, attempt, retry_after, jitter) {
        Some(delay) if late && retry_after.is_none() => Verdict::RetryAt(now + delay.min(next_delay(schedule, 1, None, jitter).unwrap_or(delay))),
        Some(delay) => Verdict::RetryAt(now + delay),
        None => Verdict::Exhausted,
    };
    (verdict, signal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::endpoint::{EnabledEvents, new_endpoint};
    use crate::model::ids::{EndpointId, EventId};

    const NOW: u64 = 1_800_000_000;

    fn state(status: DeliveryStatus, attempts: u32, next_attempt_at: u64) -> DeliveryState {
        DeliveryState { event_id: EventId::generate(), endpoint_id: EndpointId::generate(), status, attempts, next_attempt_at, opened_at: NOW - 100 }
    }

    fn endpoint(status: EndpointStatus) -> Endpoint {
        let mut e = new_endpoint(Mode::Test, "https://example.com/h".parse().unwrap(), EnabledEvents::All, None);
        e.status = status;
        e
    }

    fn facts<'a>(s: Option<&'a DeliveryState>, ep: Option<&'a Endpoint>, h: &'a Health) -> Facts<'a> {
        Facts { state: s, event_exists: true, endpoint: ep, health: h, redriven: false }
    }

    #[test]
    fn every_branch_of_decide() {
        let schedule = [60, 60];
        let (ok, off) = (endpoint(EndpointStatus::Enabled), endpoint(EndpointStatus::Disabled));
        let healthy = Health::default();
        let pending = state(DeliveryStatus::Pending, 1, NOW);
        let d = |f: Facts| decide(&f, &schedule, NOW, 0.5);

        assert_eq!(d(facts(None, Some(&ok), &healthy)), Decision::Skip(Skip::NoState));
        let later = state(DeliveryStatus::Pending, 1, NOW + 30);
        assert_eq!(d(facts(Some(&later), Some(&ok), &healthy)), Decision::Skip(Skip::NotDue), "not due");
        let soon = state(DeliveryStatus::Pending, 1, NOW + 2);
        assert_eq!(d(facts(Some(&soon), Some(&ok), &healthy)), Decision::Attempt { attempt: 2 }, "within the slack");
        let failed = state(DeliveryStatus::Failed, 3, 0);
        assert_eq!(d(facts(Some(&failed), Some(&ok), &healthy)), Decision::Skip(Skip::Settled));
        assert_eq!(d(Facts { redriven: true, ..facts(Some(&failed), Some(&ok), &healthy) }), Decision::Reopen, "redriven");
        let done = state(DeliveryStatus::Succeeded, 1, 0);
        assert_eq!(d(Facts { redriven: true, ..facts(Some(&done), Some(&ok), &healthy) }), Decision::Skip(Skip::Settled));
        assert_eq!(d(Facts { event_exists: false, ..facts(Some(&pending), Some(&ok), &healthy) }), Decision::Cancel { event_exists: false }, "event gone");
        assert_eq!(d(facts(Some(&pending), Some(&off), &healthy)), Decision::Cancel { event_exists: true }, "endpoint disabled");
        assert_eq!(d(facts(Some(&pending), None, &healthy)), Decision::Cancel { event_exists: true }, "endpoint deleted");
        assert_eq!(d(facts(Some(&pending), Some(&ok), &healthy)), Decision::Attempt { attempt: 2 });

        let open = Health { consecutive_failures: 5, next_probe_at: Some(NOW + 10), probe_interval: 40, ..Health::default() };
        assert_eq!(d(facts(Some(&pending), Some(&ok), &open)), Decision::Hold { until: NOW + 10 + 1 + 20 }, "breaker open: spread over the interval");
        let probe = Health { next_probe_at: Some(NOW), ..open.clone() };
        assert_eq!(d(facts(Some(&pending), Some(&ok), &probe)), Decision::Probe { attempt: 2 }, "probe due");
        let old = DeliveryState { opened_at: NOW - 148, ..pending.clone() };
        let not_yet = DeliveryState { opened_at: NOW - 147, ..pending.clone() };
        assert_eq!(
            d(facts(Some(&not_yet), Some(&ok), &open)),
            Decision::Hold { until: NOW + 10 + 1 + 20 },
            "120 s of waits, jitter and lateness included: 148 s"
        );
        assert_eq!(d(facts(Some(&old), Some(&ok), &open)), Decision::Attempt { attempt: 2 }, "its schedule ran out while held: a last attempt");
        let paused = Health { paused_until: Some(NOW + 30), ..Health::default() };
        assert_eq!(d(facts(Some(&pending), Some(&ok), &paused)), Decision::Hold { until: NOW + 31 }, "paused by a 429");
        let paused_out = Health { paused_until: Some(NOW), ..Health::default() };
        assert_eq!(d(facts(Some(&pending), Some(&ok), &paused_out)), Decision::Attempt { attempt: 2 }, "the pause is over");
    }

    #[test]
    fn every_branch_of_after() {
        let s = [10, 20];
        assert_eq!(after(Some(204), None, 1, &s, NOW - 1, NOW, 1.0), (Verdict::Delivered, Signal::Succeeded));
        assert_eq!(after(Some(410), None, 1, &s, NOW - 1, NOW, 1.0), (Verdict::Gone, Signal::Failed));
        assert_eq!(after(Some(500), None, 1, &s, NOW - 1, NOW, 1.0), (Verdict::RetryAt(NOW + 10), Signal::Failed), "retry");
        assert_eq!(after(None, None, 2, &s, NOW - 1, NOW, 1.2), (Verdict::RetryAt(NOW + 24), Signal::Failed), "no answer: retry, jittered");
        assert_eq!(after(Some(500), None, 3, &s, NOW - 1, NOW, 1.0), (Verdict::Exhausted, Signal::Failed), "exhausted");
        assert_eq!(
            after(Some(429), Some(30), 1, &s, NOW - 1, NOW, 1.0),
            (Verdict::RetryAt(NOW + 30), Signal::Throttled { until: NOW + 30 }),
            "429 + Retry-After"
        );
        assert_eq!(after(Some(429), None, 1, &s, NOW - 1, NOW, 1.0), (Verdict::RetryAt(NOW + 10), Signal::Throttled { until: NOW + DEFAULT_PAUSE_SECS }));
        assert_eq!(after(Some(429), Some(99_999), 3, &s, NOW - 1, NOW, 1.0).1, Signal::Throttled { until: NOW + 3600 }, "a pause is an hour at most");
        // Held past its schedule's time (opened 40 s ago; waits of 30 s, jitter and lateness included: 40): its
        // remaining attempts the first wait apart, every one of them still made.
        assert_eq!(after(Some(500), None, 1, &s, NOW - 40, NOW, 1.0), (Verdict::RetryAt(NOW + 10), Signal::Failed));
        assert_eq!(after(Some(500), None, 2, &s, NOW - 40, NOW, 1.0), (Verdict::RetryAt(NOW + 10), Signal::Failed), "10 s, not 20");
        assert_eq!(after(Some(500), None, 3, &s, NOW - 40, NOW, 1.0), (Verdict::Exhausted, Signal::Failed));
        assert_eq!(after(Some(503), Some(15), 2, &s, NOW - 40, NOW, 1.0).0, Verdict::RetryAt(NOW + 15), "a Retry-After stands");
    }

    #[test]
    fn delays_follow_the_schedule_with_jitter_and_retry_after() {
        let s = RetrySchedule::default();
        assert_eq!(s.live.len(), 11);
        assert!(s.live.iter().sum::<u64>() > 3 * 86_400 - 86_400 / 2, "about three days");
        assert_eq!(s.test.len(), 3);
        assert!((3000..=4000).contains(&s.test.iter().sum::<u64>()), "about an hour");
        assert_eq!(next_delay(&[100, 200], 1, None, 0.8), Some(80));
        assert_eq!(next_delay(&[100, 200], 1, None, 1.2), Some(120));
        assert_eq!(next_delay(&[100, 200], 2, None, 1.0), Some(200));
        assert_eq!(next_delay(&[100, 200], 3, None, 1.0), None, "exhausted");
        assert_eq!(next_delay(&[100], 1, Some(30), 1.0), Some(30));
        assert_eq!(next_delay(&[100], 1, Some(0), 1.0), Some(1));
        assert_eq!(next_delay(&[100], 1, Some(10_000_000), 1.0), Some(MAX_DELAY_SECS));
    }
}
