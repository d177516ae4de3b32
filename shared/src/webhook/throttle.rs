//! How fast and how wide one endpoint is sent to, across every deliverer: pure rules, stored in the
//! endpoint's health item (`store::health`) and applied by `deliver` to the deliveries of a batch.
//!
//! - **`rate_limit`** (deliveries per second, set on the endpoint): a generic cell rate algorithm
//!   over one stored time, `tat_ms` (the theoretical arrival time). A batch takes the slots due
//!   within the next second, one every `1000 / rate_limit` ms, with one conditional write (the time
//!   it read → the new one; a deliverer that lost the race takes none), and sends each delivery at
//!   its slot. Deliveries without a slot wait in DynamoDB for about when one frees, spread out. So
//!   the sends are at least `1000 / rate_limit` ms apart: at most `10 × rate_limit + 1` in any 10 s.
//! - **Concurrency** (`BreakerConfig::max_concurrency`, 10 by default): an endpoint whose attempts
//!   take long (≥ [`SLOW_MS`]) is marked slow, and each attempt to a slow endpoint first takes one of
//!   its `max_concurrency` leases (a conditional write of its expiry; an expired lease is free
//!   again). A delivery that finds none waits in DynamoDB without holding a delivery slot. Fast
//!   endpoints are never leased: they cost nothing, and cannot hold many slots for long.
//! - **The waiting line.** A delivery that cannot go now (no slot, no lease) waits in DynamoDB for
//!   its place in the endpoint's line (`line_ms`, the line's end): each batch joins it with one
//!   write, its deliveries one pace apart, the pace being what the endpoint is served at
//!   (`1000 / rate_limit` ms, or a slow endpoint's last attempt time over its leases). So a backlog
//!   of any size comes back at about the rate it can go, each delivery about once, instead of every
//!   waiting delivery asking again every few seconds.

use std::collections::BTreeMap;

/// An attempt that takes this long marks its endpoint slow.
pub const SLOW_MS: u64 = 2_000;
/// An attempt from the delivery queue that takes this long is withdrawn there, and its endpoint's
/// deliveries go through the slow lane (`deliver`'s module docs) until its attempts take less than
/// [`FAST_AGAIN_MS`]: the most a batch of the delivery queue waits for an endpoint.
pub const SLOW_LANE_MS: u64 = 500;
/// An endpoint in the slow lane whose batch's attempts all take less than this goes back to the
/// delivery queue (half of [`SLOW_LANE_MS`], so that one answering at about that time does not go
/// back and forth, a withdrawn attempt each time).
pub const FAST_AGAIN_MS: u64 = SLOW_LANE_MS / 2;
/// For this long after an endpoint's first attempt that took [`SLOW_LANE_MS`], nothing says yet
/// whether it answers at all: its deliveries cross to the slow lane only as many as it would have
/// leases free, and the others join its line in DynamoDB, which starts this long later. By then its
/// attempts in the slow lane have taken [`SLOW_MS`] (it is slow: leases from then on) or answered
/// (it is not: they all cross).
pub const NEW_IN_LANE_SECS: u64 = SLOW_MS / 1000 + 1;
/// Slots a batch may take ahead of now.
pub const HORIZON_MS: u64 = 1_000;

/// The slots one batch takes for `wanted` deliveries to an endpoint limited to `rate` per second,
/// from the stored `tat_ms` (none: never sent to) at `now_ms`: each taken slot's time, and the new
/// `tat_ms` to write. Slots within [`HORIZON_MS`] only; the rest take none.
pub fn take_slots(tat_ms: Option<u64>, now_ms: u64, rate: u32, wanted: usize) -> (Vec<u64>, u64) {
    let interval = 1000 / u64::from(rate.max(1));
    let start = tat_ms.unwrap_or(0).max(now_ms);
    let mut slots = Vec::new();
    let mut next = start;
    while slots.len() < wanted && next <= now_ms + HORIZON_MS {
        slots.push(next);
        next += interval.max(1);
    }
    let tat = if slots.is_empty() { start } else { next };
    (slots, tat)
}

/// The pace of an endpoint's waiting line (ms between two places): its `rate_limit`'s interval,
/// and for a slow endpoint at least the time one lease takes over the number of leases (the last
/// leased attempt's time, or the attempt timeout before one has ended).
pub fn line_pace_ms(rate: Option<u32>, slow: Option<(Option<u64>, u64)>, max_concurrency: u32) -> u64 {
    let by_rate = rate.map_or(0, |r| 1000 / u64::from(r.max(1)));
    let by_leases = slow.map_or(0, |(last_ms, timeout_ms)| last_ms.unwrap_or(timeout_ms).max(SLOW_MS) / u64::from(max_concurrency.max(1)));
    by_rate.max(by_leases).max(1)
}

/// When each of `n` deliveries whose places start at `start_ms`, `pace_ms` apart, comes back (unix
/// seconds).
pub fn places(start_ms: u64, n: usize, pace_ms: u64) -> Vec<u64> {
    (0..n as u64).map(|i| (start_ms + i * pace_ms).div_ceil(1000)).collect()
}

/// The leases of a slow endpoint that are free at `now_ms` (absent or expired), of `max` in all.
pub fn free_leases(leases: &BTreeMap<String, u64>, max: u32, now_ms: u64) -> Vec<String> {
    (0..max).map(|i| i.to_string()).filter(|i| leases.get(i).is_none_or(|until| *until < now_ms)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_and_never_beyond_the_horizon() {
        // 4 per second, never sent to: 0, 250, 500, 750, 1000 ms are within the second ahead.
        let (slots, tat) = take_slots(None, 10_000, 4, 10);
        assert_eq!(slots, [10_000, 10_250, 10_500, 10_750, 11_000]);
        assert_eq!(tat, 11_250);
        // Another batch right after: no slot left until then.
        let (slots, tat) = take_slots(Some(11_250), 10_010, 4, 3);
        assert_eq!((slots, tat), (vec![], 11_250));
        // Two wanted, plenty of room.
        assert_eq!(take_slots(Some(9_000), 10_000, 1, 2), (vec![10_000, 11_000], 12_000));
    }

    #[test]
    fn in_any_ten_seconds_at_most_ten_times_the_rate_plus_one() {
        // Batches of 10 arriving every 100 ms for a minute, rate 5/s: count sends per 10 s window.
        let (rate, mut tat, mut sends) = (5, None, Vec::new());
        for step in 0..600u64 {
            let now = 1_000_000 + step * 100;
            let (slots, next) = take_slots(tat, now, rate, 10);
            sends.extend(slots);
            tat = Some(next);
        }
        for w in sends.windows(2) {
            assert!(w[1] - w[0] >= 200, "spaced by the interval");
        }
        let most = sends.iter().map(|s| sends.iter().filter(|t| **t >= *s && **t < s + 10_000).count()).max().unwrap();
        assert!(most <= 10 * rate as usize + 1, "{most}");
        assert!(most >= 10 * rate as usize, "and it is used: {most}");
    }

    #[test]
    fn the_line_goes_at_the_endpoints_pace() {
        // rate_limit 4/s: 250 ms apart; a slow endpoint: its last attempt over 10 leases (15 s → 1.5 s).
        assert_eq!(line_pace_ms(Some(4), None, 10), 250);
        assert_eq!(line_pace_ms(None, Some((Some(15_000), 15_000)), 10), 1_500);
        assert_eq!(line_pace_ms(None, Some((None, 15_000)), 10), 1_500, "before an attempt ends: the timeout");
        assert_eq!(line_pace_ms(None, Some((Some(100), 15_000)), 10), 200, "never under SLOW_MS per lease");
        assert_eq!(line_pace_ms(Some(1), Some((Some(3_000), 15_000)), 10), 1_000, "the slower of the two");
        assert_eq!(places(10_000, 4, 1_500), [10, 12, 13, 15]);
    }

    #[test]
    fn leases_free_when_absent_or_expired() {
        let leases = BTreeMap::from([("0".to_owned(), 5_000), ("1".to_owned(), 20_000)]);
        assert_eq!(free_leases(&leases, 3, 10_000), ["0", "2"]);
        assert!(free_leases(&leases, 2, 1_000).is_empty());
    }
}
