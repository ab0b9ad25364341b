//! Token buckets by key (a peer, a source address): a burst, then one more per refill period.
//! The number of keys is bounded, so a flood from many sources cannot grow the daemon.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Buckets<K> {
    burst: u32,
    refill: Duration,
    max_keys: usize,
    /// Tokens left, and when the last one was earned.
    map: HashMap<K, (u32, Instant)>,
}

impl<K: Hash + Eq> Buckets<K> {
    pub fn new(burst: u32, refill: Duration, max_keys: usize) -> Self {
        Self {
            burst: burst.max(1),
            refill: refill.max(Duration::from_micros(1)),
            max_keys: max_keys.max(1),
            map: HashMap::new(),
        }
    }

    /// Takes one token of `key` at `now`; `false` when it has none left, or when it is new and
    /// every slot holds a key still refilling.
    pub fn take(&mut self, now: Instant, key: K) -> bool {
        if !self.map.contains_key(&key) && self.map.len() >= self.max_keys {
            // A full bucket says nothing a new one would not: forget those.
            let (burst, refill) = (self.burst, self.refill);
            self.map
                .retain(|_, b| Self::refilled(burst, refill, *b, now).0 < burst);
            if self.map.len() >= self.max_keys {
                return false;
            }
        }
        let bucket = self.map.entry(key).or_insert((self.burst, now));
        *bucket = Self::refilled(self.burst, self.refill, *bucket, now);
        if bucket.0 == 0 {
            return false;
        }
        bucket.0 -= 1;
        true
    }

    fn refilled(
        burst: u32,
        refill: Duration,
        (left, since): (u32, Instant),
        now: Instant,
    ) -> (u32, Instant) {
        let earned = now.saturating_duration_since(since).as_nanos() / refill.as_nanos();
        if earned == 0 {
            return (left, since);
        }
        let left = (u128::from(left) + earned).min(u128::from(burst)) as u32;
        (
            left,
            since + refill * earned.min(u128::from(u32::MAX)) as u32,
        )
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_refill() {
        let mut b = Buckets::new(3, Duration::from_millis(100), 8);
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| b.take(t0, 'a')).count(), 3);
        assert!(!b.take(t0 + Duration::from_millis(99), 'a'));
        assert!(b.take(t0 + Duration::from_millis(100), 'a'));
        assert!(!b.take(t0 + Duration::from_millis(150), 'a'));
        assert!(
            b.take(t0 + Duration::from_millis(200), 'a'),
            "partial periods add up"
        );
        // A long pause earns back the burst only.
        let later = t0 + Duration::from_secs(100);
        assert_eq!((0..10).filter(|_| b.take(later, 'a')).count(), 3);
        // Another key has its own bucket.
        assert!(b.take(t0, 'b'));
    }

    #[test]
    fn keys_are_bounded_and_idle_ones_make_room() {
        let mut b = Buckets::new(2, Duration::from_secs(1), 4);
        let t0 = Instant::now();
        for k in 0..4 {
            assert!(b.take(t0, k));
        }
        assert!(!b.take(t0, 99), "every slot is still refilling");
        assert_eq!(b.len(), 4);
        // Once the first four are full again they are forgotten for the newcomer.
        assert!(b.take(t0 + Duration::from_secs(2), 99));
        assert!(b.len() <= 4);
    }
}
