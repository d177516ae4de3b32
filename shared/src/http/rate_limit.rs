//! Per-account rate limits, as Stripe's: each account and mode may make `PAYGATE_RATE_LIMIT_LIVE`
//! (default 100) live or `PAYGATE_RATE_LIMIT_TEST` (default 25) test requests a second; over it, a
//! `429 rate_limit_error` with `Retry-After`. One merchant's burst then costs the others nothing.
//!
//! Two parts, neither a read or write per request (a GET stays one DynamoDB request):
//!
//! - A token bucket per account and mode in each function instance's memory ([`RateLimiter`]):
//!   exact for the requests one instance serves (`paygate dev` is one instance), a second's burst.
//! - A count per account, mode and second that the instances share ([`SharedWindows`], kept by
//!   `store::rate_windows`): an instance adds its requests to it once it has served a tenth of the
//!   limit ([`batch`]) in that second, and learns the sum of every instance's; once the sum reaches
//!   the limit, it refuses the account for the rest of the second. An account that stays under a
//!   tenth of its limit per instance never causes a write; one at its limit, one write per tenth.
//!
//! The bound: in any second, an account's allowed requests are at most its limit plus, for each
//! instance serving it, its last addition (made before it learned the sum) and what it allowed
//! since, under two tenths of the limit: the limit × (1 + 0.2 n) for `n` instances, against n ×
//! the limit with the buckets alone. API Gateway's
//! stage throttle (`ApiThrottleRate`) bounds every merchant together. If the count cannot be
//! written (DynamoDB failing), the buckets alone apply.
//!
//! Failed authentications are limited per source address ([`FailedAuths`]): at most
//! `PAYGATE_FAILED_AUTH_LIMIT` (default 30) a minute from one address, with the per-instance
//! bound. Past it, the address is answered 429 without the key being looked up, unless the key is
//! one the instance already knows is valid (a merchant's server whose one bad key tripped it keeps
//! working with its good one).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::model::ids::{Mode, Principal};

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

/// One token bucket per account and mode, and this instance's view of the counts instances share.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    live: Buckets<Principal>,
    test: Buckets<Principal>,
    pub shared: SharedWindows,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        let buckets = |rate: u32| Buckets::new(f64::from(rate), f64::from(rate));
        RateLimiter { limits, live: buckets(limits.live), test: buckets(limits.test), shared: SharedWindows::default() }
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

/// Requests an instance serves for an account in one second before it adds them to the shared
/// count: a tenth of the limit, at least 1.
pub fn batch(limit: u32) -> u32 {
    (limit / 10).max(1)
}

/// What counting one request in its account's shared second says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Allowed; nothing to add yet.
    Allow,
    /// Allowed; add this many to the shared count now, then report the sum ([`SharedWindows::synced`]).
    Add(u32),
    /// The account's limit for this second is used up (as far as this instance knows).
    Over,
}

/// This instance's view of each account's shared count for the current second.
#[derive(Debug, Clone, Copy)]
struct Window {
    second: u64,
    /// Allowed here and not yet added.
    unsynced: u32,
    /// Every instance's count as last read, with what this instance added since: the second is
    /// over for the account once this and what is not yet added reach the limit.
    known: u64,
}

/// Each account's requests this second across instances, as far as this instance knows (see the
/// module docs). Pure: the caller does the addition ([`Count::Add`]) and reports its answer.
#[derive(Debug, Default)]
pub struct SharedWindows {
    map: Mutex<HashMap<Principal, Window>>,
}

impl SharedWindows {
    /// Counts one request of `principal` in the unix second `second` against `limit` (0: none).
    pub fn count(&self, principal: &Principal, second: u64, limit: u32) -> Count {
        if limit == 0 {
            return Count::Allow;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(principal) {
            map.retain(|_, w| w.second >= second);
        }
        let fresh = Window { second, unsynced: 0, known: 0 };
        let w = map.entry(principal.clone()).or_insert(fresh);
        if w.second != second {
            *w = fresh;
        }
        if w.known + u64::from(w.unsynced) >= u64::from(limit) {
            return Count::Over;
        }
        w.unsynced += 1;
        if w.unsynced < batch(limit) {
            return Count::Allow;
        }
        let n = std::mem::take(&mut w.unsynced);
        w.known += u64::from(n);
        Count::Add(n)
    }

    /// The shared count of `principal`'s `second` after this instance's addition.
    pub fn synced(&self, principal: &Principal, second: u64, total: u64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = map.get_mut(principal).filter(|w| w.second == second) {
            w.known = w.known.max(total);
        }
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
    use crate::model::ids::AccountId;

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
    fn the_shared_count_is_added_to_every_tenth_of_the_limit_and_closes_the_second_at_the_limit() {
        let w = SharedWindows::default();
        let a = p(Mode::Live);
        // A tenth of 100 is 10: nine allowed, the tenth adds all ten.
        let counts: Vec<Count> = (0..10).map(|_| w.count(&a, 7, 100)).collect();
        assert_eq!(counts[..9], [Count::Allow; 9]);
        assert_eq!(counts[9], Count::Add(10));
        // Other instances had made 85 meanwhile: 95 in all, so five more, then the second is over.
        w.synced(&a, 7, 95);
        assert_eq!((0..5).map(|_| w.count(&a, 7, 100)).filter(|c| *c != Count::Over).count(), 5);
        assert_eq!(w.count(&a, 7, 100), Count::Over);
        // A sum at the limit closes the second at once; the next second starts afresh.
        let b = p(Mode::Test);
        assert_eq!(w.count(&b, 7, 2), Count::Add(1), "a tenth of 2 is less than one: each request adds");
        w.synced(&b, 7, 2);
        assert_eq!(w.count(&b, 7, 2), Count::Over);
        assert_eq!(w.count(&a, 8, 100), Count::Allow);
        assert_eq!(w.count(&b, 8, 0), Count::Allow, "0: no limit");
        // A sum read for a second that has passed changes nothing.
        w.synced(&a, 7, 1_000);
        assert_eq!(w.count(&a, 8, 100), Count::Allow);
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
