//! Per-credential, per-action token buckets. A bucket holds one second of requests, so a client
//! that stays at or below the limit is never throttled.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

struct Bucket {
    tokens: f64,
    last: Instant,
}

const SHARDS: usize = 16;

pub struct RateLimiter {
    shards: Vec<Mutex<HashMap<(String, &'static str), Bucket>>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl RateLimiter {
    /// Takes one token from the (key, action) bucket refilling at `per_second`; false if empty.
    pub fn allow(&self, key: &str, action: &'static str, per_second: u32) -> bool {
        self.allow_at(key, action, per_second, Instant::now())
    }

    fn allow_at(&self, key: &str, action: &'static str, per_second: u32, now: Instant) -> bool {
        if per_second == 0 {
            return false;
        }
        let shard = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (key, action).hash(&mut h);
            h.finish() as usize % SHARDS
        };
        let capacity = f64::from(per_second);
        let mut buckets = self.shards[shard].lock();
        let bucket = buckets.entry((key.to_string(), action)).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * capacity).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_the_limit_per_second_then_refuses_then_refills() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..20 {
            assert!(limiter.allow_at("k", "A", 20, t0));
        }
        assert!(!limiter.allow_at("k", "A", 20, t0));
        // Other keys and actions have their own buckets.
        assert!(limiter.allow_at("k", "B", 20, t0));
        assert!(limiter.allow_at("k2", "A", 20, t0));
        assert!(limiter.allow_at("k", "A", 20, t0 + Duration::from_millis(50)));
        assert!(!limiter.allow_at("k", "A", 20, t0 + Duration::from_millis(50)));
    }

    #[test]
    fn steady_rate_at_the_limit_is_never_throttled() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..1000u64 {
            let t = t0 + Duration::from_micros(i * 50_000);
            assert!(limiter.allow_at("k", "A", 20, t), "request {i}");
        }
    }
}
