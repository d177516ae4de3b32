//! What a warm function remembers for a bounded time and size: a map whose entries expire `ttl`
//! after they were written, and which starts again when full (each miss then costs one read). The
//! valid and refused API keys (`auth`) and the accounts' shard plans (`store::event_shards`) are
//! kept in one each.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    max: usize,
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// Entries live `ttl` (zero: nothing is kept); at most `max` of them.
    pub fn new(ttl: Duration, max: usize) -> Self {
        TtlCache { ttl, max, map: Mutex::new(HashMap::new()) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The value of `key` while it is younger than the ttl.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(v, _)| v.clone())
    }

    /// Keeps `value` for `key` from now on (nothing when the ttl is zero).
    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_a_full_cache_starts_again() {
        let c: TtlCache<String, u32> = TtlCache::new(Duration::from_millis(50), 2);
        c.insert("a".into(), 1);
        assert_eq!(c.get("a"), Some(1));
        c.insert("b".into(), 2);
        c.insert("c".into(), 3);
        assert_eq!((c.get("a"), c.get("b"), c.get("c")), (None, None, Some(3)), "full: forgotten, then the new one kept");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("c"), None, "expired");
        c.insert("d".into(), 4);
        c.remove("d");
        assert_eq!(c.get("d"), None);
        let off: TtlCache<String, u32> = TtlCache::new(Duration::ZERO, 2);
        off.insert("a".into(), 1);
        assert_eq!(off.get("a"), None, "a zero ttl keeps nothing");
    }
}
