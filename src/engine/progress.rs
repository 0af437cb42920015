//! The reporter thread: every tick it sums the counter shards and shows progress — one line
//! redrawn in place on a terminal, fitted to its width, plain lines otherwise, nothing with
//! `--quiet`; with a share, a bar and the time left when the load's goal is known. For
//! the report it keeps the throughput series (rows at every tick, `--quiet` or not) and samples
//! the process's thread count.

use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::counters::{Counters, Snapshot};
use super::throughput::Throughput;
use crate::figures::{self, count};
use crate::process::threads_now;
use crate::progress_line::{clock, eta, megabytes, percent, share, stderr_width, ProgressLine};

/// How progress is shown.
#[derive(Clone, Copy)]
pub(crate) struct ProgressOptions<'a> {
    pub every: Duration,
    pub quiet: bool,
    /// What the load is to reach, when known: enables the share, the bar and the time left.
    pub goal: Option<Goal<'a>>,
    /// The mode's stages in front of the workers, shown after the rows.
    pub stages: Option<&'a dyn Stages>,
}

/// What a load is to reach, for its progress.
#[derive(Clone, Copy)]
pub(crate) enum Goal<'a> {
    /// This many rows (gen `--rows`, copy `--limit`).
    Rows(u64),
    /// An amount the mode measures itself, read at every tick: copy's bytes of the input files
    /// (compressed ones as stored), ingest's documents done with (`--limit`).
    Measured {
        total: u64,
        unit: Unit,
        done: &'a (dyn Fn() -> u64 + Sync),
    },
    /// Running this long (`--duration`).
    Time(Duration),
}

/// What a [`Goal::Measured`] counts.
#[derive(Clone, Copy)]
pub(crate) enum Unit {
    Bytes,
    Documents,
}

/// A mode's pipeline stages in front of the workers (ingest: fetching, chunking, embedding):
/// their live status for the progress line, and their figures for the report.
pub(crate) trait Stages: Sync {
    /// A short status, such as `docs 120 fetched (queue 3)  chunks 4,500`.
    fn status(&self) -> String;
    /// The figures for the report's `stages`, and the lines the summary prints.
    fn report(&self) -> (serde_json::Value, Vec<String>);
}

/// A running reporter; `finish` stops it and returns what it observed.
pub(crate) struct Reporter<'scope> {
    /// Sends the load's elapsed time once the workers are done.
    done: Sender<Duration>,
    handle: ScopedJoinHandle<'scope, Observed>,
}

/// What the reporter saw while the workers ran.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// The most threads the process had.
    pub peak_threads: u64,
    /// Rows loaded over time, ending with every row at the load's end.
    pub throughput: Throughput,
}

impl<'scope> Reporter<'scope> {
    pub(crate) fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        counters: &'env Counters,
        started: Instant,
        options: ProgressOptions<'env>,
    ) -> Reporter<'scope> {
        let (done, ticks_until_done) = crossbeam_channel::bounded(1);
        let handle = scope.spawn(move || report(counters, started, options, &ticks_until_done));
        Reporter { done, handle }
    }

    /// Stops the reporter once the workers are done, `elapsed` after the start.
    pub(crate) fn finish(self, elapsed: Duration) -> Observed {
        let _ = self.done.send(elapsed);
        self.handle.join().unwrap_or_default()
    }
}

fn report(
    counters: &Counters,
    started: Instant,
    options: ProgressOptions<'_>,
    done: &Receiver<Duration>,
) -> Observed {
    let mut display = Display::new(&options);
    let mut observed = Observed {
        peak_threads: threads_now(),
        throughput: Throughput::default(),
    };
    let mut previous = (started, Snapshot::default());
    let elapsed = loop {
        match done.recv_timeout(options.every) {
            Ok(elapsed) => break elapsed,
            Err(RecvTimeoutError::Disconnected) => break started.elapsed(),
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = (Instant::now(), counters.snapshot());
        observed.peak_threads = observed.peak_threads.max(threads_now());
        observed
            .throughput
            .tick(now.0.duration_since(started), now.1.rows);
        display.show(&progress_line(
            options.goal,
            now.0.duration_since(started),
            now.0.duration_since(previous.0),
            previous.1,
            now.1,
            options.stages,
        ));
        previous = now;
    };
    display.clear();
    observed
        .throughput
        .finish(elapsed, counters.snapshot().rows);
    observed
}

enum Display {
    Quiet,
    Lines,
    /// On a terminal: one line redrawn in place, fitted to the terminal's width at every tick.
    Terminal(ProgressBar),
}

impl Display {
    fn new(options: &ProgressOptions<'_>) -> Display {
        if options.quiet {
            Display::Quiet
        } else if stderr_width().is_some() {
            let line = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            line.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Display::Terminal(line)
        } else {
            Display::Lines
        }
    }

    fn show(&mut self, line: &ProgressLine) {
        match self {
            Display::Quiet => {}
            Display::Terminal(bar) => match stderr_width() {
                Some(width) => bar.set_message(line.fit(width)),
                None => bar.set_message(line.plain()),
            },
            Display::Lines => eprintln!("{}", line.plain()),
        }
    }

    fn clear(&self) {
        if let Display::Terminal(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// The progress line of one tick: elapsed time, the goal's part done (share, bar, time left), the
/// rates, the counts, the stages; ranked so that a narrow terminal keeps what matters most.
fn progress_line(
    goal: Option<Goal<'_>>,
    elapsed: Duration,
    period: Duration,
    previous: Snapshot,
    now: Snapshot,
    stages: Option<&dyn Stages>,
) -> ProgressLine {
    let current_rate = figures::per_second((now - previous).rows, period.as_secs_f64());
    let overall_rate = figures::per_second(now.rows, elapsed.as_secs_f64());
    let mut line = ProgressLine::default();
    line.field(0, clock(elapsed));
    match goal {
        None => {
            line.field(0, format!("{} rows", count(now.rows)));
        }
        Some(goal) => {
            let (done, total, rate, amount) = goal.progress(now.rows, elapsed, overall_rate);
            line.bar(5, share(done, total))
                .field(0, amount)
                .field(0, percent(done, total))
                .field(1, eta(done, total, rate));
        }
    }
    let noticed = |value: u64| if value > 0 { 3 } else { 8 };
    line.field(2, format!("now {} rows/s", count(current_rate as u64)))
        .field(4, format!("avg {} rows/s", count(overall_rate as u64)))
        .field(6, format!("batches {}", count(now.batches)))
        .field(7, format!("retries {}", count(now.retries)))
        .field(noticed(now.errors), format!("errors {}", count(now.errors)))
        .field(
            noticed(now.rejected),
            format!("rejected {}", count(now.rejected)),
        );
    if let Some(stages) = stages {
        line.field(9, stages.status());
    }
    line
}

impl Goal<'_> {
    /// How far along the load is: done and total in the goal's unit, the rate per second of that
    /// unit, and the amount as shown (`4,956,000/20,000,000 rows`).
    fn progress(&self, rows: u64, elapsed: Duration, rows_rate: f64) -> (u64, u64, f64, String) {
        match *self {
            Goal::Rows(total) => (
                rows,
                total,
                rows_rate,
                format!("{}/{} rows", count(rows), count(total)),
            ),
            Goal::Measured { total, unit, done } => {
                let done = done();
                let rate = figures::per_second(done, elapsed.as_secs_f64());
                let amount = match unit {
                    Unit::Bytes => format!("{}/{}", megabytes(done), megabytes(total)),
                    Unit::Documents => format!("{}/{} documents", count(done), count(total)),
                };
                (done, total, rate, amount)
            }
            Goal::Time(duration) => {
                let (done, total) = (elapsed.as_millis() as u64, duration.as_millis() as u64);
                (
                    done,
                    total,
                    1000.0,
                    format!("{} rows in {}", count(rows), clock(duration)),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(rows: u64) -> Snapshot {
        Snapshot {
            rows,
            batches: rows / 1000,
            ..Snapshot::default()
        }
    }

    #[test]
    fn every_goal_shows_its_share_and_time_left_at_every_width() {
        let read = || 250_000_000;
        let documents = || 300;
        let goals = [
            (
                Goal::Rows(20_000_000),
                "4,956,000/20,000,000 rows",
                "24.8%",
                "eta 00:00:22",
            ),
            (
                Goal::Measured {
                    total: 1_000_000_000,
                    unit: Unit::Bytes,
                    done: &read,
                },
                "250.0 MB/1000.0 MB",
                "25.0%",
                "eta 00:00:21",
            ),
            (
                Goal::Measured {
                    total: 1_200,
                    unit: Unit::Documents,
                    done: &documents,
                },
                "300/1,200 documents",
                "25.0%",
                "eta 00:00:21",
            ),
            (
                Goal::Time(Duration::from_secs(28)),
                "4,956,000 rows in 00:00:28",
                "25.0%",
                "eta 00:00:21",
            ),
        ];
        for (goal, amount, share, eta) in goals {
            let line = progress_line(
                Some(goal),
                Duration::from_secs(7),
                Duration::from_secs(1),
                snapshot(4_100_000),
                snapshot(4_956_000),
                None,
            );
            for width in [60, 80, 120, 200] {
                let shown = line.fit(width);
                assert!(shown.chars().count() <= width, "{width}: {shown}");
                for field in [amount, share, eta] {
                    assert!(
                        shown.contains(field),
                        "{width}: {field} missing from {shown}"
                    );
                }
            }
            assert!(line.fit(120).contains("now 856,000 rows/s"));
            assert!(line
                .plain()
                .contains(&format!("{amount}  {share}  {eta}  now")));
        }
    }

    #[test]
    fn errors_are_kept_longer_once_there_are_some() {
        let mut now = snapshot(1000);
        now.errors = 2;
        let line = progress_line(
            None,
            Duration::from_secs(1),
            Duration::from_secs(1),
            snapshot(0),
            now,
            None,
        );
        assert_eq!(
            line.fit(60),
            "00:00:01  1,000 rows  now 1,000 rows/s  errors 2"
        );
    }
}
