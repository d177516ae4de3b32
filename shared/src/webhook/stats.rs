//! An endpoint's health over a time window (`GET /v1/webhook_endpoints/{id}/stats`): success rate,
//! p50/p95 latency, the same per hour or day, and its most recent failures. Computed from the
//! attempts `DeliveryStore::endpoint_attempts` reads with key-condition Queries on the endpoint's
//! `ByEndpoint` keys, merged newest first, at most [`MAX_ATTEMPTS`] per call.

use serde::Serialize;

use crate::model::Invalid;
use crate::model::delivery::{AttemptSummary, EndpointAttempts};
use crate::model::ids::{EventId, Timestamp};

/// Attempts read per call, newest first; beyond it the answer says `has_more` and its counts cover
/// the newest this many.
pub const MAX_ATTEMPTS: usize = 10_000;
/// How far back a window may start: attempts are kept 30 days.
pub const MAX_WINDOW_SECS: u64 = 30 * 86_400;
/// Failures listed in `recent_failures`.
pub const RECENT_FAILURES: usize = 10;
/// The window when `since` is not given: the last 24 hours.
const DEFAULT_WINDOW_SECS: u64 = 86_400;

/// The width of one point of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Hour,
    Day,
}

impl Interval {
    pub fn secs(self) -> u64 {
        match self {
            Interval::Hour => 3_600,
            Interval::Day => 86_400,
        }
    }
}

/// A validated window: `since` ≤ `until` (inclusive unix seconds), within the retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: Timestamp,
    pub until: Timestamp,
    pub interval: Interval,
}

impl Window {
    /// From the request's `since`, `until` and `interval` at `now`: the last 24 hours by default;
    /// hourly points up to two days, daily beyond, unless `interval` says.
    pub fn parse(since: Option<Timestamp>, until: Option<Timestamp>, interval: Option<&str>, now: u64) -> Result<Window, Invalid> {
        let given_since = since.is_some();
        let until = until.map_or(now, |u| u.0.min(now));
        let since = since.map_or(until.saturating_sub(DEFAULT_WINDOW_SECS), |s| s.0);
        if since > until {
            return Err(Invalid::parameter("since", "since must not be after until (or now)."));
        }
        if since < now.saturating_sub(MAX_WINDOW_SECS) {
            // Without a `since`, the window starts a day before `until`: name what was given.
            let param = if given_since { "since" } else { "until" };
            return Err(Invalid::parameter(param, format!("{param} must be within the last {} days: attempts are kept that long.", MAX_WINDOW_SECS / 86_400)));
        }
        let interval = match interval {
            None if until - since <= 2 * 86_400 => Interval::Hour,
            None => Interval::Day,
            Some("hour") => Interval::Hour,
            Some("day") => Interval::Day,
            Some(_) => return Err(Invalid::parameter("interval", "interval must be hour or day.")),
        };
        Ok(Window { since: Timestamp(since), until: Timestamp(until), interval })
    }

    /// The window in unix milliseconds, `[from, to)`.
    pub fn millis(&self) -> (u64, u64) {
        (self.since.0 * 1000, (self.until.0 + 1) * 1000)
    }

    /// An endpoint's stats over this window, from the attempts read in it.
    pub fn summarise(&self, found: &EndpointAttempts) -> Stats {
        let step = self.interval.secs();
        let first = self.since.0 / step * step;
        // Each attempt into its point once (a 30-day hourly window has 721 points and up to
        // 10,000 attempts: not every attempt for every point).
        let points = ((self.until.0 - first) / step + 1) as usize;
        let mut buckets: Vec<Vec<&AttemptSummary>> = vec![Vec::new(); points];
        for a in &found.attempts {
            let at = a.at_ms / 1000;
            if let Some(bucket) = at.checked_sub(first).and_then(|d| buckets.get_mut((d / step) as usize)) {
                bucket.push(a);
            }
        }
        let series = buckets
            .into_iter()
            .enumerate()
            .map(|(i, inside)| Point { totals: Totals::of(inside.into_iter()), start: Timestamp(first + i as u64 * step) })
            .collect();
        let recent_failures = found
            .attempts
            .iter()
            .filter(|a| !a.succeeded)
            .take(RECENT_FAILURES)
            .map(|a| Failure {
                event: a.event_id,
                attempt: a.attempt,
                created: Timestamp(a.at_ms / 1000),
                http_status: a.http_status,
                error: a.error.clone(),
                latency_ms: a.latency_ms,
            })
            .collect();
        Stats {
            since: self.since,
            until: self.until,
            interval: self.interval,
            totals: Totals::of(found.attempts.iter()),
            series,
            recent_failures,
            has_more: found.has_more,
        }
    }
}

/// An endpoint's stats over a window (the API's `webhook_endpoint_stats` object, less its
/// `object`, `endpoint` and `health`, which `http::objects` adds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub since: Timestamp,
    pub until: Timestamp,
    pub interval: Interval,
    #[serde(flatten)]
    pub totals: Totals,
    pub series: Vec<Point>,
    pub recent_failures: Vec<Failure>,
    /// More attempts fell in the window than were read.
    pub has_more: bool,
}

/// Counts and latency percentiles of some attempts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub attempts: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// To four decimals; `None` without attempts.
    pub success_rate: Option<f64>,
    pub latency_ms: Percentiles,
}

/// Nearest-rank latency percentiles, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
}

/// One hour or day of the series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    #[serde(flatten)]
    pub totals: Totals,
    pub start: Timestamp,
}

/// A failed attempt, as `recent_failures` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub event: EventId,
    pub attempt: u32,
    pub created: Timestamp,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
}

impl Totals {
    fn of<'a>(attempts: impl Iterator<Item = &'a AttemptSummary>) -> Totals {
        let (mut n, mut succeeded, mut latencies) = (0, 0, Vec::new());
        for a in attempts {
            n += 1;
            succeeded += usize::from(a.succeeded);
            latencies.push(a.latency_ms);
        }
        latencies.sort_unstable();
        // The nearest-rank percentile `p` (0–100) of the latencies, `None` without attempts.
        let percentile = |p: usize| (n > 0).then(|| latencies[(n * p).div_ceil(100).max(1) - 1]);
        Totals {
            attempts: n,
            succeeded,
            failed: n - succeeded,
            success_rate: (n > 0).then(|| (succeeded as f64 / n as f64 * 10_000.0).round() / 10_000.0),
            latency_ms: Percentiles { p50: percentile(50), p95: percentile(95) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_780_000_000;

    fn attempt(at: u64, ok: bool, latency_ms: u64) -> AttemptSummary {
        AttemptSummary {
            at_ms: at * 1000 + 5,
            event_id: EventId::generate(),
            attempt: 1,
            succeeded: ok,
            latency_ms,
            http_status: Some(if ok { 200 } else { 500 }),
            error: None,
        }
    }

    #[test]
    fn windows_default_to_a_day_by_the_hour_and_refuse_nonsense() {
        let w = Window::parse(None, None, None, NOW).unwrap();
        assert_eq!((w.since.0, w.until.0, w.interval), (NOW - 86_400, NOW, Interval::Hour));
        let w = Window::parse(Some(Timestamp(NOW - 7 * 86_400)), None, None, NOW).unwrap();
        assert_eq!(w.interval, Interval::Day);
        assert_eq!(Window::parse(Some(Timestamp(NOW - 7 * 86_400)), None, Some("hour"), NOW).unwrap().interval, Interval::Hour);
        // A `until` in the future is now.
        assert_eq!(Window::parse(None, Some(Timestamp(NOW + 50)), None, NOW).unwrap().until.0, NOW);
        for (since, until, interval, param) in [
            (Some(NOW), Some(NOW - 1), None, "since"),
            (Some(NOW - 31 * 86_400), None, None, "since"),
            (None, None, Some("minute"), "interval"),
            (None, Some(NOW - 40 * 86_400), None, "until"),
        ] {
            let e = Window::parse(since.map(Timestamp), until.map(Timestamp), interval, NOW).unwrap_err();
            assert_eq!(e.param, param);
        }
    }

    #[test]
    fn totals_percentiles_series_and_failures() {
        let w = Window::parse(Some(Timestamp(NOW - 3 * 3_600)), None, None, NOW).unwrap();
        // Newest first, as the index is read.
        let mut attempts: Vec<_> = (1..=20).map(|i| attempt(NOW - 60 * i, i % 5 != 0, i * 10)).collect();
        attempts.push(attempt(NOW - 2 * 3_600 - 30, false, 900));
        let found = EndpointAttempts { attempts, has_more: false };
        let s = serde_json::to_value(w.summarise(&found)).unwrap();
        assert_eq!((s["attempts"].as_u64(), s["succeeded"].as_u64(), s["failed"].as_u64()), (Some(21), Some(16), Some(5)));
        assert_eq!(s["success_rate"], serde_json::json!(0.7619));
        // Latencies 10..200 and 900: the 11th and the 20th of 21.
        assert_eq!(s["latency_ms"], serde_json::json!({"p50": 110, "p95": 200}));
        let series = s["series"].as_array().unwrap();
        assert_eq!(series.len(), 4, "{series:?}");
        let total: u64 = series.iter().map(|p| p["attempts"].as_u64().unwrap()).sum();
        assert_eq!(total, 21);
        assert!(series.iter().any(|p| p["attempts"] == 0 && p["success_rate"].is_null() && p["latency_ms"]["p50"].is_null()));
        let failures = s["recent_failures"].as_array().unwrap();
        assert_eq!(failures.len(), 5);
        assert_eq!(failures.last().unwrap()["latency_ms"], 900);
    }
}
