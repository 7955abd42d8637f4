//! Per-worker counters and latency samples, merged at the end of a phase.

use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
pub struct WorkerStats {
    /// Latency of every request completed inside the measured window, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Requests that returned the expected payload and no `Response.Error`.
    pub ok: u64,
    /// Player sessions returned by successful requests.
    pub player_sessions: u64,
    /// Failed requests in the measured window, by `Error.Code` or transport failure kind.
    pub errors: BTreeMap<String, u64>,
    /// Failed requests during warm-up (reported separately, not part of the result).
    pub warmup_errors: BTreeMap<String, u64>,
    /// Requests completed during warm-up.
    pub warmup_requests: u64,
}

impl WorkerStats {
    pub fn merge(&mut self, other: WorkerStats) {
        self.latencies_us.extend(other.latencies_us);
        self.ok += other.ok;
        self.player_sessions += other.player_sessions;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.warmup_errors {
            *self.warmup_errors.entry(k).or_default() += v;
        }
        self.warmup_requests += other.warmup_requests;
    }
}

/// Nearest-rank percentile of an ascending slice (`p` in 0..=100); 0 for an empty slice.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Summary of one measured phase.
#[derive(Debug, Clone)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub rps: f64,
    pub player_sessions_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: BTreeMap<String, u64>,
    pub warmup_requests: u64,
    pub warmup_errors: BTreeMap<String, u64>,
}

impl Summary {
    pub fn from_stats(mut stats: WorkerStats, window_secs: f64) -> Summary {
        stats.latencies_us.sort_unstable();
        let lat = &stats.latencies_us;
        let ms = |us: u32| f64::from(us) / 1000.0;
        let window = window_secs.max(1e-9);
        Summary {
            requests: lat.len() as u64,
            ok: stats.ok,
            rps: stats.ok as f64 / window,
            player_sessions_per_s: stats.player_sessions as f64 / window,
            p50_ms: ms(percentile(lat, 50.0)),
            p99_ms: ms(percentile(lat, 99.0)),
            max_ms: ms(lat.last().copied().unwrap_or(0)),
            errors: stats.errors,
            warmup_requests: stats.warmup_requests,
            warmup_errors: stats.warmup_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 99.9), 100);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&v, 1.0), 1);
        assert_eq!(percentile(&v, 1.5), 2);
    }

    #[test]
    fn percentile_small_and_empty() {
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2], 50.0), 1);
        assert_eq!(percentile(&[1, 2], 51.0), 2);
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 99.0), 990);
        assert_eq!(percentile(&v, 50.0), 500);
    }

    #[test]
    fn summary_rates_and_merge() {
        let mut a = WorkerStats {
            latencies_us: vec![1000, 3000],
            ok: 2,
            player_sessions: 50,
            ..Default::default()
        };
        let mut b = WorkerStats {
            latencies_us: vec![2000, 9000],
            ok: 1,
            player_sessions: 25,
            ..Default::default()
        };
        b.errors.insert("RequestLimitExceeded".into(), 1);
        a.merge(b);
        let s = Summary::from_stats(a, 2.0);
        assert_eq!(s.requests, 4);
        assert_eq!(s.ok, 3);
        assert!((s.rps - 1.5).abs() < 1e-9);
        assert!((s.player_sessions_per_s - 37.5).abs() < 1e-9);
        assert!((s.p50_ms - 2.0).abs() < 1e-9);
        assert!((s.max_ms - 9.0).abs() < 1e-9);
        assert_eq!(s.errors.get("RequestLimitExceeded"), Some(&1));
    }
}
