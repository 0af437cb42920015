//! Live counters: one cache-padded shard per worker, written with relaxed atomic adds once per
//! batch and read by the reporter and the metrics endpoint. No lock and no shared cache line on
//! the hot path. Each shard also counts its batches' latencies in fixed buckets, which is what a
//! Prometheus histogram needs while the load runs.

use std::ops::Sub;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;

/// One worker's counters.
#[derive(Debug, Default)]
pub(crate) struct CounterShard {
    rows: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
    /// Batches per latency bucket ([`LATENCY_BUCKETS_S`], then the overflow), and their sum.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_S.len() + 1],
    latency_sum_micros: AtomicU64,
}

/// Upper bounds of the batch-latency buckets, in seconds.
pub(crate) const LATENCY_BUCKETS_S: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A shard's batch latencies: the count in each bucket (not cumulative; the last is above every
/// bound) and the sum in seconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyBuckets {
    pub counts: Vec<u64>,
    pub sum_s: f64,
}

impl CounterShard {
    /// Counts one acknowledged batch and how long it took.
    pub(crate) fn add_batch(&self, rows: u64, bytes: u64, latency: Duration) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS_S
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS_S.len());
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            rows: self.rows.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// The batch latencies so far.
    pub(crate) fn latency(&self) -> LatencyBuckets {
        LatencyBuckets {
            counts: self
                .latency_buckets
                .iter()
                .map(|count| count.load(Ordering::Relaxed))
                .collect(),
            sum_s: self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    pub(crate) fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_rejected(&self, rows: u64) {
        self.rejected.fetch_add(rows, Ordering::Relaxed);
    }
}

/// All workers' shards.
#[derive(Debug)]
pub(crate) struct Counters {
    shards: Box<[CachePadded<CounterShard>]>,
}

/// The sum of every shard at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub rows: u64,
    pub bytes: u64,
    pub batches: u64,
    pub retries: u64,
    pub errors: u64,
    pub rejected: u64,
}

impl Counters {
    pub(crate) fn new(workers: usize) -> Counters {
        Counters {
            shards: (0..workers)
                .map(|_| CachePadded::new(CounterShard::default()))
                .collect(),
        }
    }

    /// Worker `worker`'s shard.
    pub(crate) fn shard(&self, worker: usize) -> &CounterShard {
        &self.shards[worker]
    }

    /// Every worker's shard, in worker order.
    pub(crate) fn shards(&self) -> impl Iterator<Item = &CounterShard> {
        self.shards.iter().map(|shard| &**shard)
    }

    /// Sums the shards.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.shards().fold(Snapshot::default(), |sum, shard| {
            let shard = shard.snapshot();
            Snapshot {
                rows: sum.rows + shard.rows,
                bytes: sum.bytes + shard.bytes,
                batches: sum.batches + shard.batches,
                retries: sum.retries + shard.retries,
                errors: sum.errors + shard.errors,
                rejected: sum.rejected + shard.rejected,
            }
        })
    }
}

impl Sub for Snapshot {
    type Output = Snapshot;

    fn sub(self, earlier: Snapshot) -> Snapshot {
        Snapshot {
            rows: self.rows - earlier.rows,
            bytes: self.bytes - earlier.bytes,
            batches: self.batches - earlier.batches,
            retries: self.retries - earlier.retries,
            errors: self.errors - earlier.errors,
            rejected: self.rejected - earlier.rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_sum_the_shards() {
        let counters = Counters::new(3);
        counters
            .shard(0)
            .add_batch(10, 100, Duration::from_millis(3));
        counters.shard(2).add_batch(5, 50, Duration::from_secs(60));
        counters.shard(2).add_retry();
        counters.shard(1).add_error();
        let snapshot = counters.snapshot();
        assert_eq!(
            snapshot,
            Snapshot {
                rows: 15,
                bytes: 150,
                batches: 2,
                retries: 1,
                errors: 1,
                rejected: 0
            }
        );
        counters.shard(0).add_batch(1, 7, Duration::from_millis(1));
        let later = counters.snapshot() - snapshot;
        assert_eq!((later.rows, later.bytes, later.batches), (1, 7, 1));
        // 1 ms falls in the first bucket (le 0.001), 3 ms in le 0.005, a minute above them all.
        let latency = counters.shard(0).latency();
        assert_eq!((latency.counts[0], latency.counts[2]), (1, 1));
        assert!((latency.sum_s - 0.004).abs() < 1e-9);
        assert_eq!(
            counters.shard(2).latency().counts[LATENCY_BUCKETS_S.len()],
            1
        );
    }
}
