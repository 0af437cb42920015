//! The one line that says what bound a load: the server (its CPU, commits, locks, I/O on
//! PostgreSQL; its INSERTs on ClickHouse), the server's throttling (ClickHouse's delayed and
//! refused inserts, Elasticsearch's write thread pool rejecting), loader itself, or the way
//! between them. It weighs what the server's watch saw (`pg_stat_activity`, `system.processes`
//! and the query log, the node stats) against where loader's workers spent the load (producing
//! batches or writing them), the throttled answers they retried and the CPU loader used. The
//! rules differ by target, the verdict and its wording are one.

use serde::Serialize;

use crate::pg::activity::ServerTime;
use crate::sink::http::clickhouse_time::ClickHouseTime;
use crate::sink::http::elastic_time::WritePoolTime;

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
/// The share of the workers' time the server spent running their requests at or above which it
/// is what bound the load ...
const SERVER_BOUND: f64 = 0.6;
/// ... and at or below which it was mostly waiting for them.
const SERVER_IDLE: f64 = 0.4;
/// The share of the workers' time ClickHouse's delayed inserts took at or above which its
/// throttling bound the load (a few milliseconds' delay here and there did not).
const DELAY_BOUND: f64 = 0.1;

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
    /// The server running the requests (ClickHouse's INSERTs).
    Server,
    /// ClickHouse delaying or refusing inserts for too many parts.
    Throttled,
    /// Elasticsearch's write thread pool rejecting bulk work (429).
    WritePool,
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
            Bound::Server => "the server",
            Bound::Throttled => "the server's throttling",
            Bound::WritePool => "the server's write thread pool",
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
    /// Retries of requests the server refused for now: HTTP 429, items of a `_bulk` answer
    /// refused with 429, ClickHouse's busy codes (too many parts, memory, queries).
    pub throttled_retries: u64,
}

impl ClientSide {
    fn cpu(&self) -> String {
        format!("loader used {:.1} of {} cores", self.cpu_cores, self.cores)
    }

    /// loader's own work bound the load when the workers spent most of their time producing
    /// batches, or its CPU was busy (generating rows happens while a batch is encoded, in the
    /// write); `lead` says what the server did meanwhile.
    fn own_work(&self, lead: &str) -> Option<Verdict> {
        let busy_cores = self.threads.min(self.cores) as f64 * BUSY_CORES;
        let reason = if self.producing_share >= PRODUCING_BOUND {
            format!(
                "{lead} and the workers spent {} producing batches (generating, parsing, reading \
                 input, --rate); {}",
                percent(self.producing_share),
                self.cpu()
            )
        } else if self.cpu_cores >= busy_cores {
            format!(
                "{lead} and {} for {} workers (generating and encoding rows)",
                self.cpu(),
                self.threads
            )
        } else {
            return None;
        };
        Some(Verdict {
            bound_by: Bound::Client,
            reason,
        })
    }

    /// A server that `waited` for loader: loader's own work, or the round trips between them,
    /// which `fewer` (the flags that batch more) makes fewer of.
    fn waited_for(&self, waited: &str, fewer: &str) -> Verdict {
        self.own_work(waited).unwrap_or_else(|| Verdict {
            bound_by: Bound::Network,
            reason: format!(
                "{waited} while the workers spent {} writing batches (encoding, sending, waiting \
                 for the server) and {}: the time goes in between, in round trips (network, \
                 scheduling, TLS); {fewer} needs fewer",
                percent(1.0 - self.producing_share),
                self.cpu()
            ),
        })
    }
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
    let loader_cpu = client.cpu();
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
        return client.waited_for(
            &format!(
                "the backends waited for loader {} of the time",
                percent(shares.client)
            ),
            "a larger --batch or --commit-every",
        );
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

/// Judges a ClickHouse load: throttled when the server delayed or refused inserts, bound by the
/// server when it was running loader's INSERTs most of the workers' time, by loader (or the way
/// between) when it mostly waited.
pub(crate) fn judge_clickhouse(server: &ClickHouseTime, client: &ClientSide) -> Verdict {
    let verdict = |bound_by, reason: String| Verdict { bound_by, reason };
    if server.delayed_share >= DELAY_BOUND || server.rejected_inserts + client.throttled_retries > 0
    {
        let parts = server
            .active_parts
            .map_or_else(String::new, |parts| format!(", {parts} active parts"));
        return verdict(
            Bound::Throttled,
            format!(
                "the server delayed {} inserts ({} ms in all, {} of the workers' time) and \
                 refused {} for too many parts, and loader retried {} busy answers; merges are \
                 behind ({} merges{parts}): a larger --batch makes fewer, larger parts",
                server.delayed_inserts,
                server.delayed_insert_ms,
                percent(server.delayed_share),
                server.rejected_inserts,
                client.throttled_retries,
                server.merges
            ),
        );
    }
    if server.samples == 0 && server.inserts.is_none() {
        return verdict(Bound::Mixed, "no insert of the load was sampled".into());
    }
    let share = server.executing_share;
    let ran = format!(
        "the server ran loader's inserts {} of the workers' time",
        percent(share)
    );
    if share >= SERVER_BOUND {
        let each = server
            .inserts
            .zip(server.insert_time_s)
            .filter(|(inserts, _)| *inserts > 0)
            .map_or_else(String::new, |(inserts, seconds)| {
                format!(
                    " ({inserts} inserts, {:.1} ms each)",
                    seconds * 1000.0 / inserts as f64
                )
            });
        return verdict(Bound::Server, format!("{ran}{each}; {}", client.cpu()));
    }
    if share <= SERVER_IDLE {
        return client.waited_for(&ran, "a larger --batch");
    }
    verdict(
        Bound::Mixed,
        format!(
            "{ran} and the workers spent {} producing batches; {}",
            percent(client.producing_share),
            client.cpu()
        ),
    )
}

/// Judges an Elasticsearch or OpenSearch load: bound by the write thread pool when it rejected
/// work or loader resent throttled (429) requests, by loader when its own work filled the
/// workers' time; else the figures, since the node stats cannot tell the server's indexing from
/// the network in the workers' writing time.
pub(crate) fn judge_elastic(pool: &WritePoolTime, client: &ClientSide) -> Verdict {
    if pool.rejected + client.throttled_retries > 0 {
        return Verdict {
            bound_by: Bound::WritePool,
            reason: format!(
                "it rejected {} write tasks (its queue reached {}) and loader resent {} \
                 throttled (429) requests or items; fewer --threads ask less of it at once",
                pool.rejected, pool.peak_queue, client.throttled_retries
            ),
        };
    }
    let lead = format!(
        "the write thread pool rejected nothing (its queue reached {})",
        pool.peak_queue
    );
    client.own_work(&lead).unwrap_or_else(|| Verdict {
        bound_by: Bound::Mixed,
        reason: format!(
            "{lead} while the workers spent {} writing batches (sending, the server indexing, \
             the answers); {}",
            percent(1.0 - client.producing_share),
            client.cpu()
        ),
    })
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
            throttled_retries: 0,
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
    fn clickhouse_is_throttled_bound_or_waiting_by_its_figures() {
        let server = |executing_share, delayed_share| ClickHouseTime {
            samples: 20,
            executing_share,
            delayed_share,
            inserts: Some(40),
            insert_time_s: Some(0.4),
            ..ClickHouseTime::default()
        };
        let judged = |server: ClickHouseTime, producing| {
            judge_clickhouse(&server, &client(producing)).bound_by
        };
        assert_eq!(judged(server(0.9, 0.0), 0.1), Bound::Server);
        assert_eq!(judged(server(0.9, 0.3), 0.1), Bound::Throttled);
        // A few milliseconds of delay do not make a throttled load.
        assert_eq!(judged(server(0.9, 0.01), 0.1), Bound::Server);
        assert_eq!(judged(server(0.1, 0.0), 0.8), Bound::Client);
        assert_eq!(judged(server(0.1, 0.0), 0.1), Bound::Network);
        assert_eq!(judged(server(0.5, 0.0), 0.5), Bound::Mixed);
        let refused = ClientSide {
            throttled_retries: 2,
            ..client(0.1)
        };
        assert_eq!(
            judge_clickhouse(&server(0.9, 0.0), &refused).bound_by,
            Bound::Throttled
        );
        let line = judge_clickhouse(&server(0.9, 0.0), &client(0.1)).line();
        assert!(line.contains("(40 inserts, 10.0 ms each)"), "{line}");
    }

    #[test]
    fn elasticsearch_is_bound_by_its_write_pool_when_it_rejects() {
        let pool = |rejected| WritePoolTime {
            nodes: 1,
            rejected,
            peak_queue: 4,
            ..WritePoolTime::default()
        };
        let line = judge_elastic(&pool(7), &client(0.1)).line();
        assert!(
            line.starts_with(
                "the server's write thread pool: it rejected 7 write tasks (its queue reached 4)"
            ),
            "{line}"
        );
        assert_eq!(
            judge_elastic(&pool(0), &client(0.8)).bound_by,
            Bound::Client
        );
        assert_eq!(judge_elastic(&pool(0), &client(0.1)).bound_by, Bound::Mixed);
        let throttled = ClientSide {
            throttled_retries: 3,
            ..client(0.1)
        };
        assert_eq!(
            judge_elastic(&pool(0), &throttled).bound_by,
            Bound::WritePool
        );
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
