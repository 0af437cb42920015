//! The reporter thread: every tick it sums the counter shards and shows progress — an indicatif
//! bar on a terminal when the total is known, plain lines otherwise, nothing with `--quiet`. For
//! the report it keeps the throughput series (rows at every tick, `--quiet` or not) and samples
//! the process's thread count.

use std::io::IsTerminal;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::counters::{Counters, Snapshot};
use super::throughput::Throughput;
use crate::figures::count;
use crate::process::threads_now;

/// How progress is shown.
#[derive(Clone, Copy)]
pub(crate) struct ProgressOptions<'a> {
    pub every: Duration,
    pub quiet: bool,
    /// Rows expected in all, when known: enables the bar.
    pub total: Option<u64>,
    /// The mode's stages in front of the workers, shown after the rows.
    pub stages: Option<&'a dyn Stages>,
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
        display.show(started, previous, now, options.stages);
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
    Lines { total: Option<u64> },
    Bar(ProgressBar),
}

impl Display {
    fn new(options: &ProgressOptions<'_>) -> Display {
        match (options.quiet, options.total) {
            (true, _) => Display::Quiet,
            (false, Some(total)) if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{elapsed_precise} [{wide_bar:.cyan/blue}] {human_pos}/{human_len} rows  {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                Display::Bar(bar)
            }
            (false, total) => Display::Lines { total },
        }
    }

    fn show(
        &mut self,
        started: Instant,
        previous: (Instant, Snapshot),
        now: (Instant, Snapshot),
        stages: Option<&dyn Stages>,
    ) {
        let period = now.0.duration_since(previous.0).as_secs_f64().max(1e-9);
        let elapsed = now.0.duration_since(started).as_secs_f64().max(1e-9);
        let current_rate = (now.1 - previous.1).rows as f64 / period;
        let overall_rate = now.1.rows as f64 / elapsed;
        let mut counts = format!(
            "now {} rows/s  avg {} rows/s  batches {}  retries {}  errors {}  rejected {}",
            count(current_rate as u64),
            count(overall_rate as u64),
            count(now.1.batches),
            now.1.retries,
            now.1.errors,
            now.1.rejected,
        );
        if let Some(stages) = stages {
            counts.push_str("  | ");
            counts.push_str(&stages.status());
        }
        match self {
            Display::Quiet => {}
            Display::Bar(bar) => {
                bar.set_position(now.1.rows);
                bar.set_message(counts);
            }
            Display::Lines { total } => {
                let share = total
                    .filter(|total| *total > 0)
                    .map(|total| format!(" ({:.1}%)", 100.0 * now.1.rows as f64 / total as f64))
                    .unwrap_or_default();
                eprintln!(
                    "[{elapsed:>7.1}s] rows {}{share}  {counts}",
                    count(now.1.rows)
                );
            }
        }
    }

    fn clear(&self) {
        if let Display::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
