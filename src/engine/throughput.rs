//! The throughput series of a load: the rows loaded so far, sampled by the reporter thread at
//! every `--progress-every` tick (with `--quiet` too) and once more at the end. It keeps at most
//! [`MAX_SAMPLES`]: when full it merges adjacent intervals, halving its resolution, and from then
//! on keeps every other tick. The report carries it as `[seconds, rows, rows/s]` triples.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::figures::per_second;

/// The most samples a series keeps: an hour of one-second ticks.
pub(crate) const MAX_SAMPLES: usize = 3600;

/// Rows loaded by the end of each kept interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Throughput {
    /// (seconds since the start, rows loaded by then), in time order.
    samples: Vec<(f64, u64)>,
    /// Ticks seen.
    ticks: u64,
    /// How often the series was halved: it keeps every `2^halvings`-th tick.
    halvings: u32,
}

/// One kept interval, from the end of the one before (or the start) to `seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// Seconds since the start at the end of the interval.
    pub seconds: f64,
    /// Rows loaded by then.
    pub rows: u64,
    /// Rows per second over the interval.
    pub rows_per_s: f64,
}

impl Throughput {
    /// One reporter tick: `rows` were loaded `at` after the start.
    pub(crate) fn tick(&mut self, at: Duration, rows: u64) {
        self.ticks += 1;
        if self.ticks % (1 << self.halvings) != 0 {
            return;
        }
        self.samples.push((at.as_secs_f64(), rows));
        if self.samples.len() >= MAX_SAMPLES {
            // The samples are cumulative: merging two adjacent intervals keeps the later sample.
            let mut odd = false;
            self.samples.retain(|_| {
                odd = !odd;
                !odd
            });
            self.halvings += 1;
        }
    }

    /// The load's end: `rows` in all, `at` after the start. A sample less than half an interval
    /// earlier is merged into this one, so the last interval is no sliver with a noisy rate.
    pub(crate) fn finish(&mut self, at: Duration, rows: u64) {
        let at = at.as_secs_f64();
        if let Some(&(last, _)) = self.samples.last() {
            let before = match self.samples.len() {
                1 => 0.0,
                len => self.samples[len - 2].0,
            };
            if at - last < (last - before) / 2.0 {
                self.samples.pop();
            }
        }
        self.samples.push((at, rows));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The kept intervals, with their rates.
    pub(crate) fn points(&self) -> impl Iterator<Item = Point> + '_ {
        let mut previous = (0.0, 0);
        self.samples.iter().map(move |&(seconds, rows)| {
            let rows_per_s = per_second(rows.saturating_sub(previous.1), seconds - previous.0);
            previous = (seconds, rows);
            Point {
                seconds,
                rows,
                rows_per_s,
            }
        })
    }
}

/// `[[seconds, rows, rows/s], …]`, seconds to the millisecond and rates to a tenth.
impl Serialize for Throughput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.points().map(|point| {
            (
                (point.seconds * 1e3).round() / 1e3,
                point.rows,
                (point.rows_per_s * 10.0).round() / 10.0,
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(value: f64) -> Duration {
        Duration::from_secs_f64(value)
    }

    #[test]
    fn points_carry_the_rate_of_their_interval() {
        let mut series = Throughput::default();
        series.tick(seconds(1.0), 1000);
        series.tick(seconds(2.0), 3000);
        series.finish(seconds(3.0), 3500);
        let points: Vec<Point> = series.points().collect();
        let rates: Vec<f64> = points.iter().map(|point| point.rows_per_s).collect();
        assert_eq!(rates, [1000.0, 2000.0, 500.0]);
        assert_eq!(points[2].rows, 3500);
        assert_eq!(
            serde_json::to_string(&series).unwrap(),
            "[[1.0,1000,1000.0],[2.0,3000,2000.0],[3.0,3500,500.0]]"
        );
    }

    #[test]
    fn a_last_sliver_is_merged_into_the_end() {
        let mut series = Throughput::default();
        series.tick(seconds(1.0), 1000);
        series.tick(seconds(2.0), 2000);
        series.finish(seconds(2.2), 2100);
        let points: Vec<(f64, u64)> = series.points().map(|p| (p.seconds, p.rows)).collect();
        assert_eq!(points, [(1.0, 1000), (2.2, 2100)]);

        // A load shorter than a tick has one point: its end.
        let mut short = Throughput::default();
        short.finish(seconds(0.3), 600);
        assert_eq!(short.points().next().unwrap().rows_per_s, 2000.0);
    }

    #[test]
    fn a_full_series_halves_its_resolution_and_stays_bounded() {
        let mut series = Throughput::default();
        let ticks = 5 * MAX_SAMPLES as u64;
        for tick in 1..=ticks {
            series.tick(seconds(tick as f64), tick * 10);
            assert!(series.samples.len() < MAX_SAMPLES);
        }
        series.finish(seconds(ticks as f64 + 0.5), ticks * 10 + 5);
        assert!(series.samples.len() <= MAX_SAMPLES);
        assert!(series.samples.len() > MAX_SAMPLES / 4);
        // Every point still has the steady rate, and the intervals are evenly spread.
        let points: Vec<Point> = series.points().collect();
        for point in &points {
            assert!((point.rows_per_s - 10.0).abs() < 1e-9, "{point:?}");
        }
        let step = points[1].seconds - points[0].seconds;
        assert_eq!(step, f64::from(1 << series.halvings));
        for pair in points[..points.len() - 1].windows(2) {
            assert_eq!(pair[1].seconds - pair[0].seconds, step);
        }
        assert_eq!(points.last().unwrap().rows, ticks * 10 + 5);
    }
}
