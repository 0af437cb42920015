//! Live counters: one cache-padded shard per worker, written with relaxed atomic adds once per
//! batch and summed by the reporter. No lock and no shared cache line on the hot path.

use std::ops::Sub;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// One worker's counters.
#[derive(Debug, Default)]
pub struct CounterShard {
    rows: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
}

impl CounterShard {
    /// Counts one acknowledged batch.
    pub fn add_batch(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_rejected(&self, rows: u64) {
        self.rejected.fetch_add(rows, Ordering::Relaxed);
    }
}

/// All workers' shards.
#[derive(Debug)]
pub struct Counters {
    shards: Box<[CachePadded<CounterShard>]>,
}

/// The sum of every shard at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub rows: u64,
    pub bytes: u64,
    pub batches: u64,
    pub retries: u64,
    pub errors: u64,
    pub rejected: u64,
}

impl Counters {
    pub fn new(workers: usize) -> Counters {
        Counters {
            shards: (0..workers)
                .map(|_| CachePadded::new(CounterShard::default()))
                .collect(),
        }
    }

    /// Worker `worker`'s shard.
    pub fn shard(&self, worker: usize) -> &CounterShard {
        &self.shards[worker]
    }

    /// Sums the shards.
    pub fn snapshot(&self) -> Snapshot {
        self.shards
            .iter()
            .fold(Snapshot::default(), |sum, shard| Snapshot {
                rows: sum.rows + shard.rows.load(Ordering::Relaxed),
                bytes: sum.bytes + shard.bytes.load(Ordering::Relaxed),
                batches: sum.batches + shard.batches.load(Ordering::Relaxed),
                retries: sum.retries + shard.retries.load(Ordering::Relaxed),
                errors: sum.errors + shard.errors.load(Ordering::Relaxed),
                rejected: sum.rejected + shard.rejected.load(Ordering::Relaxed),
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
        counters.shard(0).add_batch(10, 100);
        counters.shard(2).add_batch(5, 50);
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
        counters.shard(0).add_batch(1, 7);
        let later = counters.snapshot() - snapshot;
        assert_eq!((later.rows, later.bytes, later.batches), (1, 7, 1));
    }
}
