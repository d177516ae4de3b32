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
//!
//! Failed authentications are limited per source address ([`FailedAuths`]): at most
//! `PAYGATE_FAILED_AUTH_LIMIT` (default 30) a minute from one address, with the same per-instance
//! bound. Past it, the address is answered 429 without the key being looked up, unless the key is
//! one the instance already knows is valid (a merchant's server whose one bad key tripped it keeps
//! working with its good one).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::ids::{Mode, Principal};

/// The limits, requests per second per account and mode, and failed authentications per minute per
/// source address (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub live: u32,
    pub test: u32,
    pub failed_auths: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits { live: 100, test: 25, failed_auths: 30 }
    }
}

impl RateLimits {
    /// `PAYGATE_RATE_LIMIT_LIVE`, `PAYGATE_RATE_LIMIT_TEST` and `PAYGATE_FAILED_AUTH_LIMIT`, each
    /// defaulting to [`RateLimits::default`]; a value that is not a whole number is an error.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut limits = RateLimits::default();
        for (var, slot) in [
            ("PAYGATE_RATE_LIMIT_LIVE", &mut limits.live),
            ("PAYGATE_RATE_LIMIT_TEST", &mut limits.test),
            ("PAYGATE_FAILED_AUTH_LIMIT", &mut limits.failed_auths),
        ] {
            if let Some(v) = get(var).filter(|v| !v.trim().is_empty()) {
                *slot = v.trim().parse().map_err(|_| format!("{var}: {v:?} is not a whole number"))?;
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

/// Tokens left (`burst` at most) and when they were counted.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key, refilled at `rate` a second up to `burst`; at most [`MAX_TRACKED`] keys.
#[derive(Debug)]
struct Buckets<K> {
    rate: f64,
    burst: f64,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(rate: f64, burst: f64) -> Self {
        Buckets { rate, burst, map: Mutex::new(HashMap::new()) }
    }

    /// Refills `key`'s bucket to `now`, then takes `cost` tokens if a whole one is there
    /// (`cost` 0: only looks). `Err(seconds)` until one is back: at least 1, as Retry-After counts.
    fn take(&self, key: &K, cost: f64, now: Instant) -> Result<(), u64> {
        let (rate, burst) = (self.rate, self.burst);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(key) {
            // Full buckets are no different from absent ones.
            map.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = map.entry(key.clone()).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= cost;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// One token bucket per account and mode.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    live: Buckets<Principal>,
    test: Buckets<Principal>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        let buckets = |rate: u32| Buckets::new(f64::from(rate), f64::from(rate));
        RateLimiter { limits, live: buckets(limits.live), test: buckets(limits.test) }
    }

    /// Requests a second allowed in `mode` (0: no limit).
    pub fn limit(&self, mode: Mode) -> u32 {
        self.limits.of(mode)
    }

    /// Takes one request of `principal`'s at `now`: `Err(seconds)` to wait when over its limit.
    pub fn take(&self, principal: &Principal, now: Instant) -> Result<(), u64> {
        if self.limits.of(principal.mode) == 0 {
            return Ok(());
        }
        match principal.mode {
            Mode::Live => &self.live,
            Mode::Test => &self.test,
        }
        .take(principal, 1.0, now)
    }
}

/// Failed authentications per source address: `limit` a minute, a minute's worth at once.
#[derive(Debug)]
pub struct FailedAuths {
    limit: u32,
    buckets: Buckets<IpAddr>,
}

impl FailedAuths {
    pub fn new(limit: u32) -> Self {
        FailedAuths { limit, buckets: Buckets::new(f64::from(limit) / 60.0, f64::from(limit)) }
    }

    /// `Err(seconds)` while `source` has failed `limit` times within the last minute's refill.
    pub fn check(&self, source: IpAddr, now: Instant) -> Result<(), u64> {
        if self.limit == 0 { Ok(()) } else { self.buckets.take(&source, 0.0, now) }
    }

    /// Counts one failed authentication from `source`.
    pub fn failed(&self, source: IpAddr, now: Instant) {
        if self.limit > 0 {
            let _ = self.buckets.take(&source, 1.0, now);
        }
    }

    /// The 429 for an address past its limit.
    pub fn refusal(&self, retry_after: u64) -> crate::error::ApiError {
        crate::error::ApiError::RateLimited {
            message: format!("Too many requests with invalid API keys from this address: at most {} a minute. Please retry after {retry_after} s.", self.limit),
            retry_after: Some(retry_after),
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
        let limiter = RateLimiter::new(RateLimits { live: 10, test: 2, failed_auths: 0 });
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
        let limiter = RateLimiter::new(RateLimits { live: 0, test: 0, failed_auths: 0 });
        let a = p(Mode::Test);
        assert!((0..1000).all(|_| limiter.take(&a, Instant::now()).is_ok()));
        assert_eq!(RateLimits::from_lookup(|_| None).unwrap(), RateLimits::default());
        let set = RateLimits::from_lookup(|k| (k == "PAYGATE_RATE_LIMIT_TEST").then(|| "7".into())).unwrap();
        assert_eq!(set, RateLimits { test: 7, ..RateLimits::default() });
        assert!(RateLimits::from_lookup(|_| Some("lots".into())).is_err());
    }

    #[test]
    fn failed_authentications_are_limited_per_address_a_minute() {
        let f = FailedAuths::new(3);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(f.check(a, t0).is_ok());
            f.failed(a, t0);
        }
        assert_eq!(f.check(a, t0), Err(20), "3 a minute: one back every 20 s");
        assert!(f.check(b, t0).is_ok(), "another address is not refused");
        assert!(f.check(a, t0 + Duration::from_secs(20)).is_ok());
        assert!(FailedAuths::new(0).check(a, t0).is_ok(), "0: no limit");
    }
}
