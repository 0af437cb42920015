//! Per-worker statistics: plain data that each worker fills on its own and returns when it ends;
//! main merges them with `+=` (nothing is shared while the load runs, so nothing is locked); the
//! report serializes their summaries. Batch latencies go into one hdrhistogram per worker.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Counts and latencies of one worker, or of all of them merged.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub rows: u64,
    pub bytes: u64,
    pub batches: u64,
    /// Rows rejected for their data (by the source or the target).
    pub rejected: u64,
    /// Rows sent and acknowledged that the server did not store ([`Written::skipped`]).
    ///
    /// [`Written::skipped`]: crate::engine::Written::skipped
    pub skipped: u64,
    /// Retried failures by kind.
    pub retries: BTreeMap<&'static str, u64>,
    /// Failures that were not retried, or whose retries ran out, by kind.
    pub errors: BTreeMap<&'static str, u64>,
    /// Time from the start of a batch's first attempt to its acknowledgement.
    pub batch_latency: Latency,
    /// Rows by the index of the target's host that stored them.
    pub rows_by_host: Vec<u64>,
}

impl Stats {
    /// Counts one acknowledged batch, stored by the target's host `host`.
    pub(crate) fn record_batch(&mut self, rows: u64, bytes: u64, latency: Duration, host: usize) {
        self.rows += rows;
        self.bytes += bytes;
        self.batches += 1;
        self.batch_latency.record(latency);
        add_at(&mut self.rows_by_host, host, rows);
    }

    pub(crate) fn record_retry(&mut self, kind: &'static str) {
        *self.retries.entry(kind).or_default() += 1;
    }

    pub(crate) fn record_error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }
}

impl AddAssign<&Stats> for Stats {
    fn add_assign(&mut self, other: &Stats) {
        self.rows += other.rows;
        self.bytes += other.bytes;
        self.batches += other.batches;
        self.rejected += other.rejected;
        self.skipped += other.skipped;
        for (kind, count) in &other.retries {
            *self.retries.entry(kind).or_default() += count;
        }
        for (kind, count) in &other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.batch_latency += &other.batch_latency;
        for (host, &rows) in other.rows_by_host.iter().enumerate() {
            add_at(&mut self.rows_by_host, host, rows);
        }
    }
}

/// Adds `value` to `counts[index]`, growing `counts` as needed.
pub(crate) fn add_at(counts: &mut Vec<u64>, index: usize, value: u64) {
    if counts.len() <= index {
        counts.resize(index + 1, 0);
    }
    counts[index] += value;
}

/// A latency histogram in microseconds. It grows with the largest value recorded, so that many
/// of them (one per probe user and timing) stay small.
#[derive(Debug, Clone)]
pub(crate) struct Latency(Histogram<u32>);

impl Default for Latency {
    /// Three significant digits.
    fn default() -> Latency {
        Latency::with_digits(3)
    }
}

impl Latency {
    /// A histogram that keeps values to `digits` significant digits (1 to 5).
    pub(crate) fn with_digits(digits: u8) -> Latency {
        Latency(Histogram::new(digits).expect("1 to 5 significant digits are valid"))
    }

    pub(crate) fn record(&mut self, latency: Duration) {
        // Beyond an hour the figure is an hour: a stuck request, not a measurement.
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_MICROS);
        if self.0.record(micros).is_err() {
            self.0.saturating_record(micros);
        }
    }

    /// Percentiles and extremes in milliseconds.
    pub(crate) fn summary(&self) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let histogram = &self.0;
        LatencySummary {
            count: histogram.len(),
            mean: histogram.mean() / 1000.0,
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }

    /// The distribution as at most `buckets` log-spaced buckets from the smallest latency recorded
    /// to the largest (fewer when that range is narrow), with the batches in each; empty when
    /// nothing was recorded.
    pub(crate) fn buckets(&self, buckets: usize) -> Vec<LatencyBucket> {
        let histogram = &self.0;
        if histogram.is_empty() {
            return Vec::new();
        }
        // Values are whole microseconds: the range ends past the largest value's unit, and no
        // bucket is narrower than the histogram's unit at the smallest (or gaps would show).
        let min = histogram.min_nz();
        let low = min as f64;
        let span = ((histogram.max() + 1) as f64 / low).ln();
        let narrowest = MIN_BUCKET_RATIO.max(1.0 + histogram.equivalent_range(min) as f64 / low);
        let count = ((span / narrowest.ln() - 1e-9).ceil() as usize).clamp(1, buckets.max(1));
        let edge = |i: usize| low * (span * i as f64 / count as f64).exp() / 1000.0;
        let mut out: Vec<LatencyBucket> = (0..count)
            .map(|i| LatencyBucket {
                from_ms: edge(i),
                to_ms: edge(i + 1),
                batches: 0,
            })
            .collect();
        for value in histogram.iter_recorded() {
            let from = histogram.lowest_equivalent(value.value_iterated_to()) as f64;
            let at = (from / low).ln() / span * count as f64;
            out[(at as usize).min(count - 1)].batches += u64::from(value.count_at_value());
        }
        out
    }
}

/// The narrowest bucket of [`Latency::buckets`], as the ratio of its bounds.
const MIN_BUCKET_RATIO: f64 = 1.02;

/// Batches whose latency was in `from_ms..to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct LatencyBucket {
    pub from_ms: f64,
    pub to_ms: f64,
    pub batches: u64,
}

/// The largest latency recorded: one hour.
const MAX_MICROS: u64 = 3_600_000_000;

impl AddAssign<&Latency> for Latency {
    fn add_assign(&mut self, other: &Latency) {
        self.0
            .add(&other.0)
            .expect("an auto-resizing histogram takes any other");
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct LatencySummary {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// What one worker did.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkerStats {
    pub worker: usize,
    /// The core the worker was pinned to, if it was.
    pub core: Option<usize>,
    pub stats: Stats,
    /// From the start barrier to the worker's end.
    pub elapsed: Duration,
    /// Of that, the time spent getting batches from the source: generating, parsing, waiting
    /// for input or for `--rate`.
    pub producing: Duration,
    /// And the time spent writing them to the target, retries and commits included.
    pub writing: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_kinds_and_histograms() {
        let mut a = Stats::default();
        a.record_batch(1000, 10, Duration::from_millis(2), 0);
        a.record_retry("connection");
        let mut b = Stats::default();
        b.record_batch(500, 5, Duration::from_millis(8), 1);
        b.record_retry("connection");
        b.record_error("authentication");
        a += &b;
        assert_eq!((a.rows, a.bytes, a.batches), (1500, 15, 2));
        assert_eq!(a.rows_by_host, [1000, 500]);
        assert_eq!(a.retries["connection"], 2);
        assert_eq!(a.errors["authentication"], 1);
        let summary = a.batch_latency.summary();
        assert_eq!(summary.count, 2);
        assert!((summary.max - 8.0).abs() < 0.01, "{summary:?}");
        assert!((summary.p50 - 2.0).abs() < 0.01, "{summary:?}");
    }

    #[test]
    fn buckets_are_log_spaced_over_the_recorded_range() {
        assert!(Latency::default().buckets(40).is_empty());
        let mut latency = Latency::default();
        for (millis, times) in [(1, 50), (10, 30), (100, 20)] {
            for _ in 0..times {
                latency.record(Duration::from_millis(millis));
            }
        }
        let buckets = latency.buckets(40);
        assert_eq!(buckets.len(), 40);
        assert_eq!(buckets.iter().map(|b| b.batches).sum::<u64>(), 100);
        assert!((buckets[0].from_ms - 1.0).abs() < 0.01, "{:?}", buckets[0]);
        assert!((buckets[39].to_ms - 100.0).abs() < 0.2, "{:?}", buckets[39]);
        let ratio = buckets[0].to_ms / buckets[0].from_ms;
        for bucket in &buckets {
            assert!(
                (bucket.to_ms / bucket.from_ms - ratio).abs() < 1e-9,
                "{bucket:?}"
            );
        }
        let at = |millis: f64| {
            buckets
                .iter()
                .find(|b| b.from_ms <= millis && millis < b.to_ms)
                .unwrap()
                .batches
        };
        assert_eq!((at(1.0), at(10.0), at(100.0)), (50, 30, 20));

        // One value recorded: one bucket one microsecond wide.
        let mut single = Latency::default();
        single.record(Duration::from_micros(5));
        let buckets = single.buckets(40);
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets[0].batches, 1);
        assert!((buckets[0].from_ms - 0.005).abs() < 1e-12);
        assert!((buckets[0].to_ms - 0.006).abs() < 1e-12);
    }
}
