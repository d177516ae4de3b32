//! The platform at the goals, in a model: a day's peak hour of traffic replayed second by second
//! over 10,000 merchants (Zipf-distributed, the top one at 2,000 events/s of 20,000), 2.5 endpoints
//! per event, 5 % of endpoints failing, with the per-operation units `make capacity` measured. It
//! prints the peak units per partition key per second of every table and index, against its limit.
//!
//! Arrivals are Poisson per second; the load of a key is the sum of the units its events and
//! deliveries cost it that second. Merchants beyond the busiest `TRACKED` are not tracked one by one
//! (a key of theirs is far below the top merchant's); their traffic still counts on the shared keys.

use super::model::{GOAL_EVENT_SHARDS, HotKey, KEY_READ_LIMIT, KEY_WRITE_LIMIT, KeyClass, sharded_by_plan};

/// The traffic to replay.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Traffic {
    pub events_per_second: f64,
    pub merchants: usize,
    /// The busiest merchant's events/s; the Zipf exponent is fitted to it.
    pub top_merchant: f64,
    pub endpoints_per_event: f64,
    /// Share of endpoints that fail (each of their deliveries makes the failing path's attempts).
    pub failing_endpoints: f64,
    pub seconds: usize,
    pub due_shards: u32,
    /// The keys of the busiest merchant's shard plan (1: one Events key per merchant and mode).
    pub event_shards: u16,
}

impl Traffic {
    pub fn goal() -> Traffic {
        Traffic {
            events_per_second: 20_000.0,
            merchants: 10_000,
            top_merchant: 2_000.0,
            endpoints_per_event: 2.5,
            failing_endpoints: 0.05,
            seconds: 3_600,
            due_shards: 512,
            event_shards: GOAL_EVENT_SHARDS,
        }
    }
}

/// Peak write (and read) units per second on the hottest key of a place.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Peak {
    pub place: String,
    pub class: KeyClass,
    pub peak_write_units: f64,
    pub peak_read_units: f64,
    /// The limit over the peak: above 1, the key holds.
    pub headroom: f64,
}

/// The Zipf exponent `s` for which the top of `n` merchants has `share` of the traffic.
pub fn zipf_exponent(n: usize, share: f64) -> f64 {
    let top_share = |s: f64| 1.0 / (1..=n).map(|k| (k as f64).powf(-s)).sum::<f64>();
    let (mut lo, mut hi) = (0.0_f64, 4.0_f64);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if top_share(mid) < share { lo = mid } else { hi = mid }
    }
    (lo + hi) / 2.0
}

/// A small deterministic generator (xorshift) and Poisson draws, so that a run is repeatable.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Poisson(mean): Knuth's method for small means, the normal approximation for large ones.
    fn poisson(&mut self, mean: f64) -> f64 {
        if mean <= 0.0 {
            return 0.0;
        }
        if mean > 50.0 {
            let (u1, u2) = (self.next_f64().max(1e-12), self.next_f64());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            return (mean + z * mean.sqrt()).round().max(0.0);
        }
        let (limit, mut k, mut p) = ((-mean).exp(), 0.0, 1.0);
        loop {
            p *= self.next_f64();
            if p <= limit {
                return k;
            }
            k += 1.0;
        }
    }
}

/// Replays `t` with the units of `hot` (measured with `measured_due_shards` shards and one event
/// key per merchant); returns each place's peak.
pub fn simulate(t: &Traffic, hot: &[HotKey], measured_due_shards: u32) -> Vec<Peak> {
    const TRACKED: usize = 50;
    let s = zipf_exponent(t.merchants, t.top_merchant / t.events_per_second);
    let h: f64 = (1..=t.merchants).map(|k| (k as f64).powf(-s)).sum();
    let rates: Vec<f64> = (1..=TRACKED.min(t.merchants)).map(|k| t.events_per_second * (k as f64).powf(-s) / h).collect();
    // A key's units: the succeeding path's, or the failing path's for the failing share.
    let f = t.failing_endpoints;
    let mix = |ok: f64, failing: f64| (1.0 - f) * ok + f * failing;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    hot.iter()
        .map(|k| {
            let mut peak_w: f64 = 0.0;
            let mut peak_r: f64 = 0.0;
            for _ in 0..t.seconds {
                let (w, r) = match k.class {
                    // A merchant's keys: the busiest merchant's events this second, over the keys
                    // of its shard plan (the Events table's and indexes'; its endpoints are one key).
                    KeyClass::Merchant | KeyClass::MerchantType | KeyClass::MerchantFamily => {
                        let keys = if sharded_by_plan(&k.place, k.class) { f64::from(t.event_shards) } else { 1.0 };
                        let events = rng.poisson(rates[0] / keys);
                        (events * mix(k.write_per_event, k.write_per_event_failing), events * k.read_per_event)
                    }
                    // The busiest endpoint: one of the top merchant's, receiving all its events (its
                    // reads: per event, one delivery to it).
                    KeyClass::Endpoint => {
                        let deliveries = rng.poisson(rates[0]);
                        (deliveries * mix(k.write_per_delivery, k.write_per_delivery_failing), deliveries * k.read_per_event)
                    }
                    // One of that endpoint's ByEndpoint shards: its share of those deliveries
                    // (measured per delivery over the shards: back to per delivery on one).
                    KeyClass::EndpointShard => {
                        let shards = f64::from(paygate::store::deliveries::ENDPOINT_SHARDS);
                        let deliveries = rng.poisson(rates[0] / shards);
                        (deliveries * mix(k.write_per_delivery, k.write_per_delivery_failing) * shards, 0.0)
                    }
                    // One ByDue shard: every delivery of the platform, spread over the shards.
                    KeyClass::DueShard => {
                        let per_shard = t.events_per_second * t.endpoints_per_event / f64::from(t.due_shards);
                        let deliveries = rng.poisson(per_shard);
                        // Measured per delivery on one of `measured_due_shards`: back to per delivery.
                        let per_delivery = mix(k.write_per_delivery, k.write_per_delivery_failing) * f64::from(measured_due_shards);
                        (deliveries * per_delivery, 0.0)
                    }
                    KeyClass::Event | KeyClass::Key => (k.write_per_event, k.read_per_event),
                };
                peak_w = peak_w.max(w);
                peak_r = peak_r.max(r);
            }
            let headroom = (KEY_WRITE_LIMIT / peak_w.max(f64::MIN_POSITIVE)).min(KEY_READ_LIMIT / peak_r.max(f64::MIN_POSITIVE));
            Peak { place: k.place.clone(), class: k.class, peak_write_units: peak_w, peak_read_units: peak_r, headroom }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zipf_exponent_gives_the_top_merchant_its_share() {
        let s = zipf_exponent(10_000, 0.1);
        let h: f64 = (1..=10_000).map(|k| (k as f64).powf(-s)).sum();
        assert!((1.0 / h - 0.1).abs() < 1e-6, "{s}");
    }

    #[test]
    fn a_key_over_its_limit_at_the_goal_has_less_than_no_headroom() {
        let key = |place: &str, class, per_event, per_delivery| HotKey {
            place: place.into(),
            class,
            write_per_event: per_event,
            read_per_event: 0.0,
            write_per_delivery: per_delivery,
            write_per_event_failing: per_event,
            write_per_delivery_failing: per_delivery,
        };
        let hot = [key("Events", KeyClass::Merchant, 3.6, 1.8), key("Deliveries.ByDue", KeyClass::DueShard, 1.0, 0.5)];
        let t = Traffic { seconds: 60, due_shards: 4, event_shards: 1, ..Traffic::goal() };
        let peaks = simulate(&t, &hot, 4);
        // 2,000 events/s × 3.6 WCU: about 7,200 units on the merchant's key, 7 times its limit.
        assert!(peaks[0].peak_write_units > 7_000.0 && peaks[0].headroom < 0.2, "{:?}", peaks[0]);
        // 50,000 deliveries/s × 2 WCU over 4 shards: 25,000 on each.
        assert!(peaks[1].peak_write_units > 24_000.0, "{:?}", peaks[1]);
        // Sixteen event shards and 128 due shards bring both under their limits, peaks included.
        let t = Traffic { seconds: 60, due_shards: 128, event_shards: 16, ..Traffic::goal() };
        let peaks = simulate(&t, &hot, 4);
        assert!(peaks.iter().all(|p| p.headroom > 1.0), "{peaks:?}");
    }
}
