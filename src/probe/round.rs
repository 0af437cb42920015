//! One round of the probe: N user threads, each with its own kept-alive connection,
//! send the request until the round ends, and record what they saw in their own [`Tally`] (one
//! hdrhistogram per timing, merged at the end).
//!
//! Without `--rate` the users send back to back (closed model). With it, request *i* is planned
//! for `start + i / rate` (open model): a user takes the next planned request, waits for its time
//! and sends it. When every user is busy a request starts late; its timings count from the
//! planned time, so a slow server cannot hide its queue (coordinated omission), and the lateness
//! is reported on its own as the client's delay. Late requests are still sent, until `--timeout`
//! after the round should have ended; those left then are counted as unsent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::client::{RequestTemplate, User};
use super::config::Stop;
use super::tally::{Samples, Tally};
use super::wire::Endpoint;
use crate::engine::StopSignal;
use crate::figures::{self, count};
use crate::process::threads_now;
use crate::progress_line::{clock, eta, percent, share, stderr_width, ProgressLine};

/// Stack of a user thread: it holds a few small frames; its 32 KiB read buffer is on the heap.
const USER_STACK_BYTES: usize = 256 * 1024;

/// The longest nap while waiting for a planned start, so that Ctrl-C is noticed.
const MAX_NAP: Duration = Duration::from_millis(100);

/// What a round is asked to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoundPlan {
    pub users: usize,
    pub stop: Stop,
    pub rate: Option<f64>,
    pub timeout: Duration,
}

/// How the live progress is shown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    pub every: Duration,
    pub quiet: bool,
}

/// A finished round.
#[derive(Debug, Clone)]
pub(crate) struct Round {
    pub plan: RoundPlan,
    /// Requests planned (open model).
    pub planned: Option<u64>,
    pub tally: Tally,
    /// From the start of the round to its last answer.
    pub elapsed: Duration,
    /// Time during which every user was waiting for the first byte of an answer.
    pub all_waiting: Duration,
    pub longest_all_waiting: Duration,
    pub peak_threads: u64,
    pub interrupted: bool,
}

/// When each user sends its next request.
#[derive(Debug, Clone, Copy)]
enum Schedule {
    /// Back to back, until `requests` were taken or `duration` passed.
    Closed {
        requests: Option<u64>,
        duration: Option<Duration>,
    },
    /// Request i at `start + i / rate`; those not sent `give_up_after` the start are counted as
    /// unsent.
    Open {
        rate: f64,
        requests: u64,
        give_up_after: Duration,
    },
}

impl Schedule {
    fn new(plan: &RoundPlan) -> Schedule {
        match (plan.rate, plan.stop) {
            (None, Stop::Requests(requests)) => Schedule::Closed {
                requests: Some(requests),
                duration: None,
            },
            (None, Stop::Duration(duration)) => Schedule::Closed {
                requests: None,
                duration: Some(duration),
            },
            (Some(rate), stop) => {
                let requests = match stop {
                    Stop::Requests(requests) => requests,
                    Stop::Duration(duration) => ((duration.as_secs_f64() * rate) as u64).max(1),
                };
                // The config keeps the rate within [0.001, 10M] and the requests within 1e9.
                Schedule::Open {
                    rate,
                    requests,
                    give_up_after: Duration::from_secs_f64(requests as f64 / rate)
                        .saturating_add(plan.timeout),
                }
            }
        }
    }

    fn planned(&self) -> Option<u64> {
        match self {
            Schedule::Open { requests, .. } => Some(*requests),
            Schedule::Closed { .. } => None,
        }
    }
}

/// What the next request of a user is.
enum Turn {
    /// Send it now; `Some(planned)` in the open model.
    Send(Option<Instant>),
    /// Count it as unsent and take the next.
    Skip,
    /// The round is over for this user.
    Done,
}

/// Where the users of a round take their requests from.
struct Dispatch<'a> {
    schedule: Schedule,
    next: AtomicU64,
    start: OnceLock<Instant>,
    signal: &'a StopSignal,
    /// Set when the round could not start all its users.
    abort: AtomicBool,
}

impl Dispatch<'_> {
    fn start(&self) -> Instant {
        *self.start.get_or_init(Instant::now)
    }

    fn turn(&self) -> Turn {
        if self.signal.is_stopping() || self.abort.load(Ordering::Relaxed) {
            return Turn::Done;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let start = self.start();
        match self.schedule {
            Schedule::Closed { requests, duration } => {
                let over = requests.is_some_and(|requests| index >= requests)
                    || duration.is_some_and(|duration| start.elapsed() >= duration);
                if over {
                    Turn::Done
                } else {
                    Turn::Send(None)
                }
            }
            Schedule::Open {
                rate,
                requests,
                give_up_after,
            } => {
                let offset = Duration::from_secs_f64(index as f64 / rate);
                let Some(planned) = start.checked_add(offset).filter(|_| index < requests) else {
                    return Turn::Done;
                };
                loop {
                    let now = Instant::now();
                    if now >= planned {
                        break;
                    }
                    if self.signal.is_stopping() {
                        return Turn::Done;
                    }
                    std::thread::sleep((planned - now).min(MAX_NAP));
                }
                if start.elapsed() > give_up_after {
                    Turn::Skip
                } else {
                    Turn::Send(Some(planned))
                }
            }
        }
    }
}

/// Tracks the windows in which every user waited for the first byte of an answer at once: the
/// sign of a server that stopped serving everyone, not just some.
///
/// Hundreds of users update it twice per request, so it is one atomic word rather than a lock:
/// the users waiting in the high bits, and in the low [`SINCE_BITS`] the microsecond (since the
/// tracker was made) at which the last one started waiting.
struct AllWaiting {
    users: u64,
    made: Instant,
    state: AtomicU64,
    total_micros: AtomicU64,
    longest_micros: AtomicU64,
}

/// Bits of the window's start in [`AllWaiting::state`]: microseconds enough for 12 days.
const SINCE_BITS: u32 = 40;
const SINCE_MASK: u64 = (1 << SINCE_BITS) - 1;

impl AllWaiting {
    fn new(users: usize) -> AllWaiting {
        AllWaiting {
            users: users as u64,
            made: Instant::now(),
            state: AtomicU64::new(0),
            total_micros: AtomicU64::new(0),
            longest_micros: AtomicU64::new(0),
        }
    }

    fn now_micros(&self) -> u64 {
        u64::try_from(self.made.elapsed().as_micros()).unwrap_or(SINCE_MASK) & SINCE_MASK
    }

    /// A user started waiting for an answer.
    fn begin(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                let waiting = (state >> SINCE_BITS) + 1;
                let since = if waiting == self.users {
                    // Read in the update, so that a pause before it does not widen the window.
                    self.now_micros()
                } else {
                    state & SINCE_MASK
                };
                Some(waiting << SINCE_BITS | since)
            });
    }

    /// A user got the first byte of its answer, or gave up.
    fn end(&self) {
        let previous = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                let waiting = (state >> SINCE_BITS).saturating_sub(1);
                Some(waiting << SINCE_BITS | state & SINCE_MASK)
            })
            .unwrap_or_default();
        if previous >> SINCE_BITS == self.users {
            let window = self.now_micros().saturating_sub(previous & SINCE_MASK);
            self.total_micros.fetch_add(window, Ordering::Relaxed);
            self.longest_micros.fetch_max(window, Ordering::Relaxed);
        }
    }

    /// The time every user waited at once, and the longest such window.
    fn windows(&self) -> (Duration, Duration) {
        let micros = |value: &AtomicU64| Duration::from_micros(value.load(Ordering::Relaxed));
        (micros(&self.total_micros), micros(&self.longest_micros))
    }
}

/// Why a round could not run: one of its user threads could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start user thread {user} of {users}: {err}; lower --users")]
pub(crate) struct RoundError {
    /// The user that could not be started, counted from 1.
    user: usize,
    users: usize,
    err: std::io::Error,
}

/// Runs one round and returns what it measured, or why its users could not be started.
pub(crate) fn run(
    plan: RoundPlan,
    request: &RequestTemplate,
    endpoint: &Endpoint,
    progress: Progress,
    signal: &StopSignal,
) -> Result<Round, RoundError> {
    let schedule = Schedule::new(&plan);
    let dispatch = Dispatch {
        schedule,
        next: AtomicU64::new(0),
        start: OnceLock::new(),
        signal,
        abort: AtomicBool::new(false),
    };
    let waiting = AllWaiting::new(plan.users);
    let answered = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    // Users make their connection's buffer, then wait for `go` to be dropped: all start together.
    let (go, wait_for_go) = crossbeam_channel::bounded::<()>(0);
    let (done, finished) = crossbeam_channel::bounded::<()>(0);
    let (dispatch, waiting, answered, failed) = (&dispatch, &waiting, &answered, &failed);
    let (wait_for_go, finished) = (&wait_for_go, &finished);
    let result = std::thread::scope(|scope| {
        let mut users = Vec::with_capacity(plan.users);
        for _ in 0..plan.users {
            let spawned = std::thread::Builder::new()
                .stack_size(USER_STACK_BYTES)
                .spawn_scoped(scope, move || {
                    let mut user = User::new(request, endpoint);
                    let mut tally = Tally {
                        samples: Samples::for_user_of(plan.users),
                        ..Tally::default()
                    };
                    let _ = wait_for_go.recv();
                    loop {
                        let planned = match dispatch.turn() {
                            Turn::Done => break,
                            Turn::Skip => {
                                tally.unsent += 1;
                                continue;
                            }
                            Turn::Send(planned) => planned,
                        };
                        let delay = planned.map(|planned| planned.elapsed());
                        let sent_at = dispatch.start().elapsed();
                        waiting.begin();
                        let outcome = user.exchange(&mut || waiting.end(), &mut tally.token_gap);
                        let counter = if outcome.is_ok() { answered } else { failed };
                        counter.fetch_add(1, Ordering::Relaxed);
                        tally.record(outcome, sent_at, delay);
                    }
                    tally
                });
            match spawned {
                Ok(user) => users.push(user),
                Err(err) => {
                    dispatch.abort.store(true, Ordering::Relaxed);
                    drop(go);
                    return Err(RoundError {
                        user: users.len() + 1,
                        users: plan.users,
                        err,
                    });
                }
            }
        }
        let start = dispatch.start();
        drop(go);
        let monitor =
            scope.spawn(move || monitor(&plan, start, progress, answered, failed, finished));
        let mut tally = Tally::default();
        for user in users {
            if let Ok(user_tally) = user.join() {
                tally += &user_tally;
            }
        }
        drop(done);
        Ok((tally, monitor.join().unwrap_or(0)))
    });
    let (tally, peak_threads) = result?;
    let elapsed = dispatch.start().elapsed();
    let (all_waiting, longest_all_waiting) = waiting.windows();
    Ok(Round {
        plan,
        planned: schedule.planned(),
        tally,
        elapsed,
        all_waiting,
        longest_all_waiting,
        peak_threads,
        interrupted: signal.is_interrupted(),
    })
}

/// Prints a progress line every tick until the round ends; returns the most threads it saw.
fn monitor(
    plan: &RoundPlan,
    start: Instant,
    progress: Progress,
    answered: &AtomicU64,
    failed: &AtomicU64,
    finished: &crossbeam_channel::Receiver<()>,
) -> u64 {
    let mut peak_threads = threads_now();
    let mut previous = (start, 0);
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
        finished.recv_timeout(progress.every)
    {
        peak_threads = peak_threads.max(threads_now());
        if progress.quiet {
            continue;
        }
        let now = Instant::now();
        let answered = answered.load(Ordering::Relaxed);
        let failed = failed.load(Ordering::Relaxed);
        let period = now.duration_since(previous.0);
        let rate = figures::per_second(answered - previous.1, period.as_secs_f64());
        previous = (now, answered);
        let line = progress_line(plan, now.duration_since(start), answered, failed, rate);
        match stderr_width() {
            Some(width) => eprintln!("{}", line.fit(width)),
            None => eprintln!("{}", line.plain()),
        }
    }
    peak_threads
}

/// The progress line of a round `elapsed` after its start: its share of `--requests` or
/// `--duration` done, the time left at the rate so far, the answers and failures.
fn progress_line(
    plan: &RoundPlan,
    elapsed: Duration,
    answered: u64,
    failed: u64,
    rate: f64,
) -> ProgressLine {
    let (done, total, done_rate) = match plan.stop {
        Stop::Requests(requests) => (
            answered + failed,
            requests,
            figures::per_second(answered + failed, elapsed.as_secs_f64()),
        ),
        Stop::Duration(duration) => (
            elapsed.as_millis() as u64,
            duration.as_millis() as u64,
            1000.0,
        ),
    };
    let mut line = ProgressLine::default();
    line.field(0, format!("probe {}", users(plan.users)))
        .field(0, clock(elapsed))
        .bar(5, share(done, total))
        .field(0, percent(done, total))
        .field(1, eta(done, total, done_rate))
        .field(2, format!("{} answered", count(answered)))
        .field(3, format!("{}/s now", count(rate as u64)))
        .field(
            if failed > 0 { 1 } else { 4 },
            format!("{} failed", count(failed)),
        );
    line
}

/// `1` → `1 user`, `10` → `10 users`.
pub(crate) fn users(count: usize) -> String {
    if count == 1 {
        "1 user".into()
    } else {
        format!("{count} users")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on a loopback port that answers every request of one connection with `answer`.
    fn answering(answer: &'static [u8]) -> std::net::SocketAddr {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut pending = Vec::new();
            let mut buffer = [0; 4096];
            while let Ok(read @ 1..) = socket.read(&mut buffer) {
                pending.extend_from_slice(&buffer[..read]);
                while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    pending.drain(..end + 4);
                    if socket.write_all(answer).is_err() {
                        return;
                    }
                }
            }
        });
        address
    }

    #[test]
    fn a_user_allocates_nothing_per_request_once_warm() {
        let length =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n0123456789";
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n0123\r\n6;x=y\r\n456789\r\n0\r\n\r\n";
        for answer in [&length[..], &chunked[..]] {
            let endpoint = Endpoint {
                addresses: vec![answering(answer)],
                tls: None,
                connect_timeout: Duration::from_secs(2),
                timeout: Duration::from_secs(10),
            };
            let url = format!("http://{}/", endpoint.addresses[0]);
            let request = RequestTemplate::new(
                ureq::http::Method::GET,
                url.parse().unwrap(),
                Vec::new(),
                Vec::new(),
                super::super::events::TokenRule::OpenAi,
            );
            let mut user = User::new(&request, &endpoint);
            // A sample of 1,000 points: the last 50 requests replace earlier ones.
            let mut tally = Tally {
                samples: Samples::for_user_of(1),
                ..Tally::default()
            };
            let waiting = AllWaiting::new(1);
            let start = Instant::now();
            let request_once = |user: &mut User<'_>, tally: &mut Tally| {
                waiting.begin();
                let sent_at = start.elapsed();
                let outcome = user.exchange(&mut || waiting.end(), &mut tally.token_gap);
                tally.record(outcome, sent_at, None);
            };
            for _ in 0..50 {
                request_once(&mut user, &mut tally);
            }
            // The histograms grow with the slowest timing they hold (a few times per round, not
            // per request): let them hold a slow one already.
            for timing in [
                &mut tally.headers,
                &mut tally.first_byte,
                &mut tally.total,
                &mut tally.largest_gap,
            ] {
                timing.record(Duration::from_secs(60));
            }
            let measured = allocation_counter::measure(|| {
                for _ in 0..1000 {
                    request_once(&mut user, &mut tally);
                }
            });
            assert_eq!(measured.count_total, 0, "{measured:?}");
            assert_eq!((tally.succeeded, tally.bytes), (1050, 10_500), "{tally:?}");
            assert_eq!(tally.samples.points.len(), 1000);
        }
    }

    #[test]
    fn progress_shows_the_share_of_the_round_at_every_width() {
        let plan = RoundPlan {
            users: 64,
            stop: Stop::Requests(10_000),
            rate: None,
            timeout: Duration::from_secs(2),
        };
        let line = progress_line(&plan, Duration::from_secs(2), 2_400, 100, 1_250.0);
        for width in [60, 80, 120, 200] {
            let shown = line.fit(width);
            assert!(shown.chars().count() <= width, "{width}: {shown}");
            assert!(
                shown.contains("25.0%") && shown.contains("eta 00:00:06"),
                "{shown}"
            );
            assert!(shown.contains("100 failed"), "{width}: {shown}");
        }
        assert_eq!(
            line.plain(),
            "probe 64 users  00:00:02  25.0%  eta 00:00:06  2,400 answered  1,250/s now  100 failed"
        );
        let timed = RoundPlan {
            stop: Stop::Duration(Duration::from_secs(10)),
            ..plan
        };
        let line = progress_line(&timed, Duration::from_secs(4), 2_400, 0, 600.0);
        assert!(
            line.plain().contains("40.0%  eta 00:00:06"),
            "{}",
            line.plain()
        );
    }

    #[test]
    fn open_schedules_plan_rate_times_duration_requests() {
        let plan = RoundPlan {
            users: 4,
            stop: Stop::Duration(Duration::from_secs(10)),
            rate: Some(100.0),
            timeout: Duration::from_secs(2),
        };
        let Schedule::Open {
            rate,
            requests,
            give_up_after,
        } = Schedule::new(&plan)
        else {
            panic!("a rate gives the open model");
        };
        assert_eq!(requests, 1000);
        assert_eq!(rate, 100.0);
        assert_eq!(give_up_after, Duration::from_secs(12));
    }

    #[test]
    fn every_user_waiting_is_a_window_between_the_last_begin_and_the_first_end() {
        let waiting = AllWaiting::new(2);
        waiting.begin();
        waiting.end();
        assert_eq!(
            waiting.windows(),
            (Duration::ZERO, Duration::ZERO),
            "never both"
        );
        waiting.begin();
        waiting.begin();
        std::thread::sleep(Duration::from_millis(20));
        waiting.end();
        std::thread::sleep(Duration::from_millis(20));
        waiting.end();
        let (total, longest) = waiting.windows();
        assert!(total >= Duration::from_millis(20) && total < Duration::from_millis(200));
        assert_eq!(total, longest);
    }
}
