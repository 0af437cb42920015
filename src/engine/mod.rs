//! The engine: pinned worker threads, each owning one source and one sink built on its own thread,
//! released together by a start gate once every connection is open; a reporter thread; and a
//! stop signal shared with the Ctrl-C handler.
//!
//! ```text
//! main ── Job ──┬─ worker 0..N-1 (pinned to core i % cores)
//!               │    open sink + source ─ gate ─ loop { next_batch → write (retried) → count }
//!               ├─ reporter: sums the counter shards every tick, prints
//!               └─ returns the workers' Stats to main, which merges and reports
//! ```

mod contract;
mod counters;
mod progress;
mod rate;
mod retry;
mod throughput;

pub(crate) use contract::{
    Settlement, Sink, SinkFactory, Source, SourceError, SourceFactory, SourceSummary,
    UnverifiedBatch, Written,
};
pub(crate) use counters::{CounterShard, Counters, LatencyBuckets, Snapshot, LATENCY_BUCKETS_S};
pub(crate) use progress::{Goal, ProgressOptions, Stages, Unit};
pub(crate) use rate::RateLimit;
pub(crate) use retry::RetryPolicy;
pub(crate) use throughput::Throughput;

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::failure::Failure;
use crate::reject::RejectLog;
use crate::stats::WorkerStats;

/// Stack size of a worker thread: enough for the driver's runtime, small enough for many workers.
const WORKER_STACK_BYTES: usize = 512 * 1024;

/// Why workers stop early: set by the Ctrl-C handler (interrupt) or by a failing worker (halt).
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    /// Workers take no new batch.
    stop: AtomicBool,
    /// Ctrl-C or SIGTERM arrived at least once.
    interrupted: AtomicBool,
    /// A second one arrived: retries give up, even for a batch in doubt.
    abandon: AtomicBool,
}

impl StopSignal {
    /// Ctrl-C or SIGTERM: the first lets workers finish the batch in hand, retries included; the
    /// second abandons retries. Returns how many interrupts have now arrived (at most 2).
    pub(crate) fn interrupt(&self) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        if self.interrupted.swap(true, Ordering::SeqCst) {
            self.abandon.store(true, Ordering::SeqCst);
            2
        } else {
            1
        }
    }

    /// A worker failed: the others stop after their batch in hand.
    pub(crate) fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    pub(crate) fn is_abandoning(&self) -> bool {
        self.abandon.load(Ordering::SeqCst)
    }

    /// Set once workers should stop: the give-up flag of retries where nothing is in doubt yet
    /// (opening connections, preparing the table).
    pub(crate) fn stopping_flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// Set by a second interrupt: the give-up flag of retries of a batch that may be in doubt.
    pub(crate) fn abandon_flag(&self) -> &AtomicBool {
        &self.abandon
    }
}

/// One load to run.
pub(crate) struct Job<'a> {
    pub threads: usize,
    pub pin: bool,
    pub retry: RetryPolicy,
    /// `--wait-for-target`: how a worker's first batch is retried while the target refuses it
    /// (HTTP targets are first reached by a batch); without it, a refusal before any batch was
    /// acknowledged stops the load.
    pub wait_for_target: Option<RetryPolicy>,
    /// Stop taking new batches this long after the start.
    pub duration: Option<Duration>,
    pub progress: ProgressOptions<'a>,
    /// One shard per thread; the metrics endpoint reads them too.
    pub counters: &'a Counters,
    pub sources: &'a dyn SourceFactory,
    pub sinks: &'a dyn SinkFactory,
    pub rejects: &'a RejectLog,
    pub signal: &'a StopSignal,
    /// Called once every worker has connected (or failed to), as the clock starts.
    pub on_start: &'a (dyn Fn() + Sync),
}

/// What a load did.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub workers: Vec<WorkerStats>,
    /// From the start gate opening to the last worker's end.
    pub elapsed: Duration,
    /// The first failure that stopped the load, if any.
    pub failure: Option<String>,
    /// The most threads the process had while the workers ran.
    pub peak_threads: u64,
    /// Rows loaded over time, sampled by the reporter.
    pub throughput: Throughput,
}

/// Runs `job` to its end: every source exhausted, the duration reached, a stop signal, or a failure.
pub(crate) fn run(job: &Job<'_>) -> Outcome {
    let cores = if job.pin {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };
    let counters = job.counters;
    let gate = StartGate::default();
    let failure = Mutex::new(None::<String>);
    let fail = |message: String| {
        failure.lock().get_or_insert(message);
        job.signal.halt();
    };

    // Dropped once the workers are done: the abandon watch ends at once, not at its next poll.
    let (workers_done, done_watching) = crossbeam_channel::bounded::<()>(0);
    let (workers, elapsed, peak_threads, throughput) = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(job.threads);
        for worker in 0..job.threads {
            let context = WorkerContext {
                job,
                worker,
                core: (!cores.is_empty()).then(|| cores[worker % cores.len()]),
                counters: counters.shard(worker),
                gate: &gate,
                fail: &fail,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("loader-worker-{worker}"))
                .stack_size(WORKER_STACK_BYTES)
                .spawn_scoped(scope, move || context.run());
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    fail(format!("cannot start worker thread {worker}: {err}"));
                    break;
                }
            }
        }
        scope.spawn(move || watch_for_abandon(job, &done_watching));
        let started = gate.open_when_all_arrived(handles.len());
        (job.on_start)();
        let peak_threads = crate::process::threads_now();
        let reporter = progress::Reporter::start(scope, counters, started, job.progress);
        let workers: Vec<WorkerStats> = handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|payload| {
                    fail(format!(
                        "internal error: a worker panicked: {}",
                        panic_message(&payload)
                    ));
                    WorkerStats::default()
                })
            })
            .collect();
        drop(workers_done);
        let elapsed = started.elapsed();
        let observed = reporter.finish(elapsed);
        (
            workers,
            elapsed,
            peak_threads.max(observed.peak_threads),
            observed.throughput,
        )
    });

    Outcome {
        workers,
        elapsed,
        failure: failure.into_inner(),
        peak_threads,
        throughput,
    }
}

/// How often [`watch_for_abandon`] looks at the stop signal.
const ABANDON_POLL: Duration = Duration::from_millis(50);

/// Until the workers are done (`workers_done` disconnects): tells the sinks once a second
/// interrupt arrives, so that a worker blocked in its target (behind a lock, waiting for a
/// standby) gives its batch up. A poll, as the signal handler runs elsewhere and cannot reach the
/// sinks.
fn watch_for_abandon(job: &Job<'_>, workers_done: &crossbeam_channel::Receiver<()>) {
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
        workers_done.recv_timeout(ABANDON_POLL)
    {
        if job.signal.is_abandoning() {
            job.sinks.abandon();
            return;
        }
    }
}

/// The start gate: workers arrive once their connection is open (or failed to open); main opens the gate when all
/// have arrived, so the clock starts with every connection checked. Unlike `std::sync::Barrier` it
/// copes with fewer arrivals than planned (a worker thread that could not be spawned).
#[derive(Debug, Default)]
struct StartGate {
    /// Workers arrived, and the moment the gate opened: the load's start, for every clock.
    state: Mutex<(usize, Option<Instant>)>,
    changed: Condvar,
}

impl StartGate {
    /// Waits for the gate to open and returns the load's start.
    fn arrive_and_wait(&self) -> Instant {
        let mut state = self.state.lock();
        state.0 += 1;
        self.changed.notify_all();
        loop {
            if let Some(started) = state.1 {
                return started;
            }
            self.changed.wait(&mut state);
        }
    }

    /// Opens the gate once `workers` have arrived and returns the load's start.
    fn open_when_all_arrived(&self, workers: usize) -> Instant {
        let mut state = self.state.lock();
        while state.0 < workers {
            self.changed.wait(&mut state);
        }
        let started = Instant::now();
        state.1 = Some(started);
        self.changed.notify_all();
        started
    }
}

/// Everything one worker needs, borrowed from the engine's scope.
struct WorkerContext<'a, F: Fn(String) + Sync> {
    job: &'a Job<'a>,
    worker: usize,
    core: Option<core_affinity::CoreId>,
    counters: &'a CounterShard,
    gate: &'a StartGate,
    fail: &'a F,
}

impl<'a, F: Fn(String) + Sync> WorkerContext<'a, F> {
    fn run(self) -> WorkerStats {
        let mut stats = WorkerStats {
            worker: self.worker,
            ..WorkerStats::default()
        };
        if let Some(core) = self.core {
            if core_affinity::set_for_current(core) {
                stats.core = Some(core.id);
            }
        }
        let opened = catch_panic(|| self.open(&mut stats)).and_then(|opened| opened);
        // A failed open halts the load (or Ctrl-C already stopped it, which is no failure): the
        // other workers then leave the load loop at once and close their connections.
        let opened = opened
            .map_err(|message| {
                if !self.job.signal.is_interrupted() {
                    (self.fail)(message);
                }
            })
            .ok();
        // One start for the deadline and every elapsed time, so a 1 s load reports at least 1 s.
        let started = self.gate.arrive_and_wait();
        if let Some((source, sink)) = opened {
            let result = catch_panic(|| self.load(source, sink, started, &mut stats));
            if let Err(message) | Ok(Err(message)) = result {
                (self.fail)(message);
            }
        }
        stats.elapsed = started.elapsed();
        stats
    }

    /// A failed write as the retries see it: before the target has taken any batch (an HTTP
    /// target is first reached by a worker's first batch), a refused connection is final unless
    /// the load waits for the target.
    fn first_contact(&self, err: Failure) -> Failure {
        if self.job.wait_for_target.is_some() || self.job.counters.snapshot().batches > 0 {
            err
        } else {
            err.final_if_unreachable()
        }
    }

    /// Opens the sink (retrying transient failures unless interrupted) and the source.
    #[allow(clippy::type_complexity)]
    fn open(
        &self,
        stats: &mut WorkerStats,
    ) -> Result<(Box<dyn Source + 'a>, Box<dyn Sink + 'a>), String> {
        let job = self.job;
        let sink = job
            .retry
            .run(
                Some(job.signal.stopping_flag()),
                || job.sinks.open(self.worker),
                |err, pause| self.announce_retry(stats, err, pause),
            )
            .map_err(|err| self.count_error(stats, err.kind(), err.to_string()))?;
        let source = job
            .sources
            .open(self.worker)
            .map_err(|err| err.to_string())?;
        Ok((source, sink))
    }

    /// The hot loop: fill a batch, write it (retrying transient failures), count it.
    fn load(
        &self,
        mut source: Box<dyn Source + '_>,
        mut sink: Box<dyn Sink + '_>,
        started: Instant,
        stats: &mut WorkerStats,
    ) -> Result<(), String> {
        let job = self.job;
        let deadline = job.duration.map(|duration| started + duration);
        let mut retry = job.wait_for_target.unwrap_or(job.retry);
        while !job.signal.is_stopping() && deadline.is_none_or(|at| Instant::now() < at) {
            let asked = Instant::now();
            let next = source.next_batch().map_err(|err| err.to_string())?;
            let batch_started = Instant::now();
            stats.producing += batch_started - asked;
            let Some(batch) = next else {
                break;
            };
            let invalid = batch.invalid();
            job.rejects
                .record(invalid)
                .map_err(|err| self.count_error(stats, err.kind(), err.to_string()))?;
            let written = retry.run(
                Some(job.signal.abandon_flag()),
                || {
                    sink.write(batch, job.rejects)
                        .map_err(|err| self.first_contact(err))
                },
                |err, pause| self.announce_retry(stats, err, pause),
            );
            stats.writing += batch_started.elapsed();
            // Once this worker's first batch is through, the target is up: the usual budget.
            retry = job.retry;
            let written = match written {
                Ok(written) => written,
                Err(err) => {
                    // A target without transactions may have stored part of the batch: count it.
                    let salvaged = sink.salvage();
                    if salvaged.rows + salvaged.rejected > 0 || !invalid.is_empty() {
                        self.record(stats, salvaged, invalid.len() as u64, batch_started);
                    }
                    let what = format!("batch {}, rows from {}", batch.seq(), batch.first_row());
                    return self.give_up(stats, &what, err);
                }
            };
            self.record(stats, written, invalid.len() as u64, batch_started);
            if !written.held {
                source
                    .acknowledged(&written)
                    .map_err(|err| err.to_string())?;
            }
        }
        let flush_started = Instant::now();
        let flushed = job.retry.run(
            Some(job.signal.abandon_flag()),
            || sink.flush(job.rejects),
            |err, pause| self.announce_retry(stats, err, pause),
        );
        stats.writing += flush_started.elapsed();
        match flushed {
            Ok(Some(written)) => self.record(stats, written, 0, flush_started),
            Ok(None) => {}
            Err(err) => return self.give_up(stats, "the batches held for --commit-every", err),
        }
        sink.finish().map_err(|err| err.to_string())
    }

    /// Counts an acknowledged (part of a) batch: rows, bytes, latency, rejects. A batch held for
    /// a later commit counts only the records its source rejected; its rows count with the
    /// commit, whose latency is the transaction's.
    fn record(&self, stats: &mut WorkerStats, written: Written, invalid: u64, started: Instant) {
        let rejected = written.rejected + invalid;
        stats.stats.rejected += rejected;
        self.counters.add_rejected(rejected);
        if written.held {
            return;
        }
        let latency = started.elapsed();
        stats.stats.skipped += written.skipped;
        stats
            .stats
            .record_batch(written.rows, written.bytes, latency, written.host);
        self.counters
            .add_batch(written.rows, written.bytes, latency);
    }

    /// Ends the load loop after a batch failed for good: abandoned after a second interrupt (the
    /// load ends normally), or a failure that stops the load.
    fn give_up(&self, stats: &mut WorkerStats, what: &str, err: Failure) -> Result<(), String> {
        if self.job.signal.is_abandoning() {
            let message = format!(
                "worker {}: abandoned {what} after a second interrupt; it may or may not have \
                 committed: {err}",
                self.worker,
            );
            eprintln!("loader: {}", self.count_error(stats, "abandoned", message));
            return Ok(());
        }
        Err(self.count_error(stats, err.kind(), format!("{err} ({what})")))
    }

    /// Counts an error of `kind` and passes its message on.
    fn count_error(&self, stats: &mut WorkerStats, kind: &'static str, message: String) -> String {
        stats.stats.record_error(kind);
        self.counters.add_error();
        message
    }

    fn announce_retry(&self, stats: &mut WorkerStats, err: &Failure, pause: Duration) {
        stats.stats.record_retry(err.kind());
        self.counters.add_retry();
        if !self.job.progress.quiet {
            eprintln!(
                "loader: worker {}: {err}; retrying in {:.1}s",
                self.worker,
                pause.as_secs_f64()
            );
        }
    }
}

/// Runs `body`, turning a panic into an error message so that it never reaches the user raw.
fn catch_panic<T>(body: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(body)).map_err(|payload| {
        format!(
            "internal error: a worker panicked: {}",
            panic_message(&payload)
        )
    })
}

fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
