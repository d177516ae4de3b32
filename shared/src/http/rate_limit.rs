//! Per-account rate limits, as Stripe's: each account and mode may make `PAYGATE_RATE_LIMIT_LIVE`
//! (default 100) live or `PAYGATE_RATE_LIMIT_TEST` (default 25) test requests a second; over it, a
//! `429 rate_limit_error` with `Retry-After`. One merchant's burst then costs the others nothing.
//!
//! A token bucket per account and mode, in each function instance's memory: no read or write per
//! request, so a GET stays one DynamoDB request. The bound is per instance: a merchant spread over
//! `n` warm instances of a function may make up to `n` times the limit (each bucket also holds a
//! second's burst), so deployed, the limit holds exactly for a merchant served by one instance and
//! within `n`× across `n`; the function's concurrency bounds `n`, and API Gateway's stage throttle
//! (`ApiThrottleRate`) bounds the sum. `paygate dev` is one instance: there the limit is exact.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::ids::{Mode, Principal};

/// The limits, requests per second per account and mode (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub live: u32,
    pub test: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits { live: 100, test: 25 }
    }
}

impl RateLimits {
    /// `PAYGATE_RATE_LIMIT_LIVE` and `PAYGATE_RATE_LIMIT_TEST`, each defaulting to
    /// [`RateLimits::default`]; a value that is not a whole number is an error.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut limits = RateLimits::default();
        for (var, slot) in [("PAYGATE_RATE_LIMIT_LIVE", &mut limits.live), ("PAYGATE_RATE_LIMIT_TEST", &mut limits.test)] {
            if let Some(v) = get(var).filter(|v| !v.trim().is_empty()) {
                *slot = v.trim().parse().map_err(|_| format!("{var}: {v:?} is not a whole number of requests a second"))?;
            }
        }
        Ok(limits)
    }

    fn of(&self, mode: Mode) -> u32 {
        match mode {
            Mode::Live => self.live,
            Mode::Test => self.test,
        }
    }
}

/// The most accounts a limiter tracks; past it, it forgets the idle ones.
const MAX_TRACKED: usize = 10_000;

/// One token bucket per account and mode.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<Principal, Bucket>>,
}

/// Tokens left (a second's worth at most) and when they were counted.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter { limits, buckets: Mutex::new(HashMap::new()) }
    }

    /// Requests a second allowed in `mode` (0: no limit).
    pub fn limit(&self, mode: Mode) -> u32 {
        self.limits.of(mode)
    }

    /// Takes one request of `principal`'s at `now`: `Err(seconds)` to wait when over its limit.
    pub fn take(&self, principal: &Principal, now: Instant) -> Result<(), u64> {
        let rate = self.limits.of(principal.mode);
        if rate == 0 {
            return Ok(());
        }
        let rate = f64::from(rate);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(principal) {
            // Full buckets are no different from absent ones.
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < rate);
        }
        let bucket = buckets.entry(principal.clone()).or_insert(Bucket { tokens: rate, at: now });
        bucket.tokens = (bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            // The whole seconds until a token is back: at least 1, as Retry-After counts.
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ids::AccountId;

    fn p(mode: Mode) -> Principal {
        Principal { account: AccountId::generate(), mode }
    }

    #[test]
    fn a_second_of_burst_then_the_rate_and_each_account_its_own() {
        let limiter = RateLimiter::new(RateLimits { live: 10, test: 2 });
        let (a, b) = (p(Mode::Test), p(Mode::Test));
        let t0 = Instant::now();
        assert!(limiter.take(&a, t0).is_ok() && limiter.take(&a, t0).is_ok());
        assert_eq!(limiter.take(&a, t0), Err(1), "over 2 a second");
        assert!(limiter.take(&b, t0).is_ok(), "another account is not slowed");
        assert!(limiter.take(&a, t0 + Duration::from_millis(500)).is_ok(), "a token back after half a second at 2/s");
        assert!(limiter.take(&a, t0 + Duration::from_millis(510)).is_err());
        // Live has its own, higher limit; idle time never banks more than a second's burst.
        let live = p(Mode::Live);
        let allowed = (0..30).filter(|_| limiter.take(&live, t0 + Duration::from_secs(60)).is_ok()).count();
        assert_eq!(allowed, 10);
    }

    #[test]
    fn zero_is_no_limit_and_settings_come_from_the_environment() {
        let limiter = RateLimiter::new(RateLimits { live: 0, test: 0 });
        let a = p(Mode::Test);
        assert!((0..1000).all(|_| limiter.take(&a, Instant::now()).is_ok()));
        assert_eq!(RateLimits::from_lookup(|_| None).unwrap(), RateLimits::default());
        let set = RateLimits::from_lookup(|k| (k == "PAYGATE_RATE_LIMIT_TEST").then(|| "7".into())).unwrap();
        assert_eq!(set, RateLimits { live: 100, test: 7 });
        assert!(RateLimits::from_lookup(|_| Some("lots".into())).is_err());
    }
}
