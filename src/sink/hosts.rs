//! Several hosts behind one target (`postgres://h1,h2/db`, `crate+http://h1:4200,h2:4200`): which
//! host each worker uses, and which hosts are down.
//!
//! Worker `i` prefers host `i % hosts`, so the workers spread round-robin. A host whose connection
//! fails is marked down for a backoff (1 s, doubling to 10 s); while it is down, workers connect to
//! the next host in their rotation, and a displaced worker tries its own host again once the
//! backoff has passed. The pool is shared by the workers and read with relaxed atomic loads: at
//! most a few per batch (a displaced worker asks whether its host is due), none per row, and no
//! lock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::failure::Failure;

/// The first pause of a failed host; each further failure doubles it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// No host is left alone longer than this between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The hosts of one target and their health.
#[derive(Debug)]
pub(crate) struct Hosts {
    names: Vec<String>,
    health: Vec<Health>,
    /// The origin of the `down_until` clocks.
    epoch: Instant,
}

#[derive(Debug, Default)]
struct Health {
    /// Milliseconds after `epoch` before which the host is not tried (0: up).
    down_until: AtomicU64,
    /// Failures since the last successful connection.
    failures: AtomicU32,
}

impl Hosts {
    /// `names` as shown in messages and in the report's rows per host; at least one.
    pub(crate) fn new(names: Vec<String>) -> Hosts {
        assert!(!names.is_empty(), "a target has at least one host");
        Hosts {
            health: names.iter().map(|_| Health::default()).collect(),
            names,
            epoch: Instant::now(),
        }
    }

    /// The hosts' names when there are several (for the report's rows per host), else none.
    pub(crate) fn several(&self) -> &[String] {
        if self.names.len() > 1 {
            &self.names
        } else {
            &[]
        }
    }

    pub(crate) fn name(&self, host: usize) -> &str {
        &self.names[host]
    }

    /// The host worker `worker` uses while it is up.
    pub(crate) fn preferred(&self, worker: usize) -> usize {
        worker % self.names.len()
    }

    /// Whether `host` may be tried: it is up, or its backoff has passed.
    pub(crate) fn is_due(&self, host: usize) -> bool {
        self.health[host].down_until.load(Ordering::Relaxed) <= self.now_ms()
    }

    /// The order in which worker `worker` tries the hosts: its rotation from its preferred host,
    /// the due hosts first, then those still backing off (a target whose hosts are all down is
    /// still tried, so that the engine's retry budget decides when to give up).
    pub(crate) fn candidates(&self, worker: usize) -> Vec<usize> {
        let (due, waiting): (Vec<usize>, Vec<usize>) =
            self.rotation(worker).partition(|&h| self.is_due(h));
        due.into_iter().chain(waiting).collect()
    }

    /// The host worker `worker` should use now: the first of its
    /// [`candidates`](Hosts::candidates), found without allocating.
    pub(crate) fn first_choice(&self, worker: usize) -> usize {
        self.rotation(worker)
            .find(|&host| self.is_due(host))
            .unwrap_or_else(|| self.preferred(worker))
    }

    /// Every host once, from worker `worker`'s own onwards.
    fn rotation(&self, worker: usize) -> impl Iterator<Item = usize> + '_ {
        let count = self.names.len();
        let home = self.preferred(worker);
        (0..count).map(move |step| (home + step) % count)
    }

    /// Marks `host` down after a failed connection: it is not tried again for a backoff that
    /// doubles with each try that fails in a row. Failures while it is already down (the other
    /// workers that used it) do not lengthen the backoff: one outage, one step.
    pub(crate) fn failed(&self, host: usize) {
        if self.names.len() == 1 {
            return;
        }
        let health = &self.health[host];
        let now = self.now_ms();
        let down_until = health.down_until.load(Ordering::Relaxed);
        if down_until > now {
            return;
        }
        let failures = health.failures.load(Ordering::Relaxed).min(16);
        let backoff = FIRST_BACKOFF.saturating_mul(1 << failures).min(MAX_BACKOFF);
        let until = now + backoff.as_millis() as u64;
        // Of the workers finding the host due and failing at once, one takes the step.
        if health
            .down_until
            .compare_exchange(down_until, until, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            health.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks `host` up after a successful connection or request.
    pub(crate) fn succeeded(&self, host: usize) {
        let health = &self.health[host];
        if health.failures.load(Ordering::Relaxed) > 0 {
            health.failures.store(0, Ordering::Relaxed);
            health.down_until.store(0, Ordering::Relaxed);
        }
    }

    /// Connects worker `worker` to the first host in its [`candidates`](Hosts::candidates) that
    /// takes the connection. A host failing with a transient error is marked down and the next
    /// one tried; a permanent error (bad credentials, a missing database) stops at once. When every
    /// host failed, the last error is returned for the engine to retry.
    pub(crate) fn connect<C>(
        &self,
        worker: usize,
        mut connect: impl FnMut(usize) -> Result<C, Failure>,
    ) -> Result<(usize, C), Failure> {
        let mut last = None;
        for host in self.candidates(worker) {
            match connect(host) {
                Ok(connection) => {
                    self.succeeded(host);
                    return Ok((host, connection));
                }
                Err(err @ Failure::Permanent { .. }) => return Err(err),
                Err(err) => {
                    self.failed(host);
                    last = Some(err);
                }
            }
        }
        Err(last.expect("a target has at least one host"))
    }

    fn now_ms(&self) -> u64 {
        // Never 0, so that a `down_until` of 0 always means up.
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}

/// Prepares a target on each of its `count` hosts (`prepare(host)`) and keeps the first result. A
/// host failing with a transient error is left out of the run (its table or index could not be
/// checked) as long as another host was prepared; the hosts left out are returned with their
/// errors. A permanent error on any host stops; when every host failed, the last error is returned
/// for the caller to retry.
pub(crate) fn prepare_each<T>(
    count: usize,
    mut prepare: impl FnMut(usize) -> Result<T, Failure>,
) -> Result<(T, Vec<(usize, Failure)>), Failure> {
    let mut prepared = None;
    let mut left_out = Vec::new();
    for host in 0..count {
        match prepare(host) {
            Ok(value) => {
                prepared.get_or_insert(value);
            }
            Err(err @ Failure::Permanent { .. }) => return Err(err),
            Err(err) => left_out.push((host, err)),
        }
    }
    match prepared {
        Some(value) => Ok((value, left_out)),
        None => Err(left_out.pop().expect("a target has at least one host").1),
    }
}

/// Says which hosts of the target are left out of the run, and why.
pub(crate) fn warn_left_out(left_out: &[(String, Failure)]) {
    for (host, err) in left_out {
        eprintln!("loader: warning: host {host} is left out of this run: {err}");
    }
}

/// Whether a transient failure says the host itself is unreachable or unwell (rather than the
/// batch's data or a passing overload that another host of the same cluster would share).
pub(crate) fn is_host_failure(err: &Failure) -> bool {
    matches!(
        err,
        Failure::Transient {
            kind: "connection"
                | "timeout"
                | "dns"
                | "unavailable"
                | "server_restarting"
                | "too_many_connections",
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(count: usize) -> Hosts {
        Hosts::new((0..count).map(|i| format!("h{i}")).collect())
    }

    fn refused() -> Failure {
        Failure::Transient {
            kind: "connection",
            message: "refused".into(),
        }
    }

    #[test]
    fn workers_spread_round_robin() {
        let hosts = hosts(3);
        let preferred: Vec<usize> = (0..7).map(|w| hosts.preferred(w)).collect();
        assert_eq!(preferred, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(hosts.candidates(4), [1, 2, 0]);
    }

    #[test]
    fn a_failed_host_is_tried_last_until_its_backoff_passes() {
        let hosts = hosts(3);
        hosts.failed(1);
        assert!(!hosts.is_due(1));
        assert_eq!(hosts.candidates(1), [2, 0, 1]);
        assert_eq!(hosts.candidates(0), [0, 2, 1]);
        assert_eq!(hosts.first_choice(1), 2);
        assert_eq!(hosts.first_choice(4), 2);
        hosts.succeeded(1);
        assert!(hosts.is_due(1));
        assert_eq!(hosts.candidates(1), [1, 2, 0]);
    }

    #[test]
    fn connect_moves_past_a_refusing_host_and_stops_at_a_permanent_error() {
        let hosts = hosts(2);
        let (host, tried) = hosts
            .connect(0, |host| if host == 0 { Err(refused()) } else { Ok(host) })
            .unwrap();
        assert_eq!((host, tried), (1, 1));
        assert!(!hosts.is_due(0), "host 0 backs off");
        let err = hosts
            .connect(1, |_| -> Result<(), Failure> {
                Err(Failure::Permanent {
                    kind: "authentication",
                    message: "no".into(),
                })
            })
            .unwrap_err();
        assert_eq!(err.kind(), "authentication");
        let err = hosts.connect(0, |_| -> Result<(), _> { Err(refused()) });
        assert_eq!(
            err.unwrap_err().kind(),
            "connection",
            "all down: the last error"
        );
    }

    #[test]
    fn prepare_each_leaves_out_unreachable_hosts_while_one_is_prepared() {
        let (first, left_out) =
            prepare_each(3, |host| if host == 1 { Err(refused()) } else { Ok(host) }).unwrap();
        assert_eq!(first, 0);
        assert_eq!(left_out.len(), 1);
        assert_eq!(left_out[0].0, 1);
        let none = prepare_each(2, |_| -> Result<(), _> { Err(refused()) });
        assert_eq!(none.unwrap_err().kind(), "connection");
    }

    #[test]
    fn one_outage_is_one_backoff_step_however_many_workers_fail() {
        let hosts = hosts(2);
        for _ in 0..8 {
            hosts.failed(0);
        }
        assert_eq!(hosts.health[0].failures.load(Ordering::Relaxed), 1);
        let until = hosts.health[0].down_until.load(Ordering::Relaxed);
        assert!(until <= hosts.now_ms() + FIRST_BACKOFF.as_millis() as u64);
    }

    #[test]
    fn one_host_is_never_marked_down() {
        let hosts = hosts(1);
        hosts.failed(0);
        assert!(hosts.is_due(0));
    }
}
