//! The one line that says what bound a load: the server's CPU, its commits (WAL flushes), locks,
//! its I/O, loader itself, or the way between them. It weighs where the server's backends spent
//! the load (sampled in `pg_stat_activity`) against where loader's workers spent it (producing
//! batches or waiting on the target) and the CPU loader used.

use serde::Serialize;

use crate::pg::activity::ServerTime;

/// A backend share at or above this is decisive for locks.
const LOCK_BOUND: f64 = 0.25;
/// ... for commits, when the backends also spent no more of the time on CPU.
const COMMIT_BOUND: f64 = 0.30;
/// ... for waiting on loader, likewise.
const CLIENT_BOUND: f64 = 0.40;
/// ... for the server's CPU.
const CPU_BOUND: f64 = 0.40;
/// ... for data-file I/O.
const IO_BOUND: f64 = 0.30;
/// The workers' share of time spent producing batches above which a load waiting on loader is
/// bound by loader's own work, not by the way between the two.
const PRODUCING_BOUND: f64 = 0.5;
/// The share of the cores loader's workers could use that counts as busy.
const BUSY_CORES: f64 = 0.75;

/// What bound the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Bound {
    ServerCpu,
    Commits,
    Locks,
    ServerIo,
    Client,
    Network,
    Mixed,
}

impl Bound {
    fn words(self) -> &'static str {
        match self {
            Bound::ServerCpu => "the server's CPU",
            Bound::Commits => "commits (WAL flush)",
            Bound::Locks => "locks",
            Bound::ServerIo => "the server's I/O",
            Bound::Client => "the client (loader)",
            Bound::Network => "the network",
            Bound::Mixed => "nothing alone",
        }
    }
}

/// The verdict and the figures that say so.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verdict {
    pub bound_by: Bound,
    pub reason: String,
}

impl Verdict {
    /// The summary's line.
    pub(crate) fn line(&self) -> String {
        format!("{}: {}", self.bound_by.words(), self.reason)
    }
}

/// What loader's side of the load looked like.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientSide {
    /// The workers' time spent producing batches, from 0 to 1 (the rest went to writing them).
    pub producing_share: f64,
    /// loader's CPU seconds per second of the load.
    pub cpu_cores: f64,
    pub cores: usize,
    pub threads: usize,
    pub rows: u64,
    /// Transactions committed.
    pub commits: u64,
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// Judges a load from the server's time and loader's.
pub(crate) fn judge(server: &ServerTime, client: &ClientSide) -> Verdict {
    let shares = &server.shares;
    let verdict = |bound_by, reason: String| Verdict { bound_by, reason };
    if server.samples == 0 {
        return verdict(Bound::Mixed, "no backend of the load was sampled".into());
    }
    let loader_cpu = format!(
        "loader used {:.1} of {} cores",
        client.cpu_cores, client.cores
    );
    if shares.lock >= LOCK_BOUND {
        return verdict(
            Bound::Locks,
            format!(
                "the backends waited for locks {} of the time (another session holds the table \
                 or rows it needs)",
                percent(shares.lock)
            ),
        );
    }
    if shares.commit >= COMMIT_BOUND && shares.commit >= shares.cpu {
        let per_commit = server
            .wal_syncs
            .filter(|_| client.commits > 0)
            .map(|syncs| {
                format!(
                    ", {:.1} WAL flushes per commit",
                    syncs as f64 / client.commits as f64
                )
            })
            .unwrap_or_default();
        return verdict(
            Bound::Commits,
            format!(
                "the backends waited for WAL writes and flushes {} of the time ({} rows per \
                 commit{per_commit}); a larger --batch or --commit-every commits less often",
                percent(shares.commit),
                client.rows / client.commits.max(1)
            ),
        );
    }
    if shares.client >= CLIENT_BOUND && shares.client >= shares.cpu {
        // Generating rows happens while a batch is encoded, in the write: loader's CPU says
        // whether that was the work.
        let busy_cores = client.threads.min(client.cores) as f64 * BUSY_CORES;
        return if client.producing_share >= PRODUCING_BOUND {
            verdict(
                Bound::Client,
                format!(
                    "the backends waited for loader {} of the time and the workers spent {} \
                     producing batches (generating, parsing, reading input, --rate); {loader_cpu}",
                    percent(shares.client),
                    percent(client.producing_share)
                ),
            )
        } else if client.cpu_cores >= busy_cores {
            verdict(
                Bound::Client,
                format!(
                    "the backends waited for loader {} of the time and {loader_cpu} for {} \
                     workers (generating and encoding rows)",
                    percent(shares.client),
                    client.threads
                ),
            )
        } else {
            verdict(
                Bound::Network,
                format!(
                    "the backends waited for loader {} of the time while the workers spent {} \
                     writing batches (encoding, sending, waiting for the server) and \
                     {loader_cpu}: the time goes in between, in round trips (network, \
                     scheduling, TLS); a larger --batch or --commit-every needs fewer",
                    percent(shares.client),
                    percent(1.0 - client.producing_share)
                ),
            )
        };
    }
    if shares.cpu >= CPU_BOUND {
        return verdict(
            Bound::ServerCpu,
            format!(
                "the backends were on CPU {} of the time; {loader_cpu}",
                percent(shares.cpu)
            ),
        );
    }
    if shares.io >= IO_BOUND {
        return verdict(
            Bound::ServerIo,
            format!(
                "the backends waited for data-file I/O {} of the time",
                percent(shares.io)
            ),
        );
    }
    verdict(
        Bound::Mixed,
        format!(
            "CPU {}, waiting for loader {}, commits {}, locks {}, I/O {}, other {}; {loader_cpu}",
            percent(shares.cpu),
            percent(shares.client),
            percent(shares.commit),
            percent(shares.lock),
            percent(shares.io),
            percent(shares.other)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::activity::Shares;

    fn server(shares: Shares) -> ServerTime {
        ServerTime {
            samples: 100,
            shares,
            wal_bytes: Some(1 << 20),
            wal_records: Some(1000),
            wal_syncs: Some(50),
            checkpoints: Some(0),
        }
    }

    fn client(producing_share: f64) -> ClientSide {
        ClientSide {
            producing_share,
            cpu_cores: 1.0,
            cores: 2,
            threads: 4,
            rows: 100_000,
            commits: 50,
        }
    }

    #[test]
    fn each_bound_is_named_from_its_share() {
        let judged = |shares, producing| judge(&server(shares), &client(producing)).bound_by;
        let lock = Shares {
            lock: 0.6,
            cpu: 0.4,
            ..Shares::default()
        };
        assert_eq!(judged(lock, 0.1), Bound::Locks);
        let commit = Shares {
            commit: 0.5,
            cpu: 0.3,
            client: 0.2,
            ..Shares::default()
        };
        assert_eq!(judged(commit, 0.1), Bound::Commits);
        let client_wait = Shares {
            client: 0.7,
            cpu: 0.3,
            ..Shares::default()
        };
        assert_eq!(judged(client_wait, 0.9), Bound::Client);
        assert_eq!(judged(client_wait, 0.2), Bound::Network);
        let busy = ClientSide {
            cpu_cores: 1.8,
            ..client(0.1)
        };
        assert_eq!(judge(&server(client_wait), &busy).bound_by, Bound::Client);
        let cpu = Shares {
            cpu: 0.8,
            client: 0.2,
            ..Shares::default()
        };
        assert_eq!(judged(cpu, 0.5), Bound::ServerCpu);
        let spread = Shares {
            cpu: 0.3,
            client: 0.3,
            commit: 0.2,
            io: 0.2,
            ..Shares::default()
        };
        assert_eq!(judged(spread, 0.5), Bound::Mixed);
    }

    #[test]
    fn the_commit_line_gives_rows_and_flushes_per_commit() {
        let commit = Shares {
            commit: 0.9,
            ..Shares::default()
        };
        let line = judge(&server(commit), &client(0.1)).line();
        assert!(line.starts_with("commits (WAL flush): "), "{line}");
        assert!(
            line.contains("2000 rows per commit, 1.0 WAL flushes per commit"),
            "{line}"
        );
    }
}
