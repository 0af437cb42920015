//! Where a PostgreSQL load's time goes on the server: while the workers run, one extra
//! connection samples the workers' backends in `pg_stat_activity` every 100 ms (found by the
//! `application_name` every worker connection carries) and sorts each sample by what the backend
//! was doing: on CPU, waiting for loader, writing or flushing WAL for a commit, waiting for a lock,
//! waiting for other I/O. `pg_stat_wal` and the checkpoint counters are read before and after.
//!
//! The sampler costs one short query per 100 ms. A role that cannot read another backend's wait
//! events (the views show them to the same role, superusers and `pg_read_all_stats`) still sees
//! its own workers, which run as that role; a server without the views (CrateDB over the
//! PostgreSQL protocol, or a PostgreSQL older than 14 for `pg_stat_wal`) leaves out what it lacks.

use std::time::Duration;

use postgres::Client;
use serde::Serialize;

use super::target::PgTarget;
use super::{application_name, connect, resolve};
use crate::sampler::{sample_until, Stop};

/// What a backend was doing in one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Running, no wait event: on CPU (or waiting for one).
    Cpu,
    /// Waiting for loader: idle between statements, or in a COPY waiting for its data.
    Client,
    /// Writing or flushing WAL, or waiting for a commit's flush or a synchronous standby.
    Commit,
    Lock,
    /// Reading or writing data files.
    Io,
    Other,
}

impl State {
    /// Sorts one `pg_stat_activity` row by its state, wait event type and wait event.
    fn of(state: &str, wait_type: &str, wait_event: &str) -> State {
        match (wait_type, wait_event) {
            _ if state.starts_with("idle") => State::Client,
            ("", _) => State::Cpu,
            ("Client", _) => State::Client,
            ("Lock", _) => State::Lock,
            ("IO", event) if event.starts_with("WAL") => State::Commit,
            ("LWLock", "WALWrite" | "WALInsert" | "WALBufMapping") => State::Commit,
            ("IPC", "SyncRep") | ("Timeout", "CommitDelay") => State::Commit,
            ("IO", _) => State::Io,
            _ => State::Other,
        }
    }
}

/// The share of the sampled backend time in each state, each from 0 to 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Shares {
    pub cpu: f64,
    pub client: f64,
    pub commit: f64,
    pub lock: f64,
    pub io: f64,
    pub other: f64,
}

/// Counts of samples by state.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    cpu: u64,
    client: u64,
    commit: u64,
    lock: u64,
    io: u64,
    other: u64,
}

impl Tally {
    fn add(&mut self, state: State) {
        let slot = match state {
            State::Cpu => &mut self.cpu,
            State::Client => &mut self.client,
            State::Commit => &mut self.commit,
            State::Lock => &mut self.lock,
            State::Io => &mut self.io,
            State::Other => &mut self.other,
        };
        *slot += 1;
    }

    fn total(&self) -> u64 {
        self.cpu + self.client + self.commit + self.lock + self.io + self.other
    }

    fn shares(&self) -> Shares {
        let total = self.total().max(1) as f64;
        Shares {
            cpu: self.cpu as f64 / total,
            client: self.client as f64 / total,
            commit: self.commit as f64 / total,
            lock: self.lock as f64 / total,
            io: self.io as f64 / total,
            other: self.other as f64 / total,
        }
    }
}

/// The server's cumulative counters read before and after the load.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    /// `pg_stat_wal` (PostgreSQL 14 and later).
    wal: Option<(i64, i64, i64)>,
    /// Timed and requested checkpoints.
    checkpoints: Option<i64>,
}

impl Counters {
    fn read(client: &mut Client) -> Counters {
        let wal = client
            .query_one(
                "SELECT wal_bytes::bigint, wal_records, wal_sync FROM pg_stat_wal",
                &[],
            )
            .ok()
            .map(|row| (row.get(0), row.get(1), row.get(2)));
        // PostgreSQL 17 moved the checkpoint counters to pg_stat_checkpointer.
        let checkpoints = [
            "SELECT num_timed + num_requested FROM pg_stat_checkpointer",
            "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter",
        ]
        .iter()
        .find_map(|sql| client.query_one(*sql, &[]).ok().map(|row| row.get(0)));
        Counters { wal, checkpoints }
    }
}

/// Where the workers' backends spent the load, and what the server wrote for it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerTime {
    /// Backend samples taken (one per worker backend per 100 ms).
    pub samples: u64,
    pub shares: Shares,
    /// WAL written during the load, over all sessions of the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_records: Option<i64>,
    /// WAL flushes to disk (`fsync` and kin) during the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_syncs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<i64>,
}

/// Connects to the first host of `target`, reads the counters, samples until `stop`, and reads
/// the counters again: the watch a [`Sampler`](crate::sampler::Sampler) runs.
pub(crate) fn watch(
    target: &PgTarget,
    connect_timeout: Duration,
    stop: &Stop,
) -> Result<ServerTime, String> {
    let first = target.split_hosts().swap_remove(0);
    let mut own = resolve(&first, connect_timeout).map_err(|err| err.to_string())?;
    let name = own
        .config()
        .get_application_name()
        .map_or_else(application_name, str::to_owned);
    own.config_mut()
        .application_name(&format!("{name} (sampler)"));
    let mut client = connect(&own).map_err(|err| err.to_string())?;
    let before = Counters::read(&mut client);
    let mut tally = Tally::default();
    sample_until(stop, || sample(&mut client, &name, &mut tally))
        .map_err(|err| format!("pg_stat_activity cannot be read: {err}"))?;
    let after = Counters::read(&mut client);
    let wal = before
        .wal
        .zip(after.wal)
        .map(|(before, after)| (after.0 - before.0, after.1 - before.1, after.2 - before.2));
    Ok(ServerTime {
        samples: tally.total(),
        shares: tally.shares(),
        wal_bytes: wal.map(|wal| wal.0),
        wal_records: wal.map(|wal| wal.1),
        wal_syncs: wal.map(|wal| wal.2),
        checkpoints: before
            .checkpoints
            .zip(after.checkpoints)
            .map(|(before, after)| after - before),
    })
}

/// Takes one sample of the backends named `name`.
fn sample(client: &mut Client, name: &str, tally: &mut Tally) -> Result<(), postgres::Error> {
    let rows = client.query(
        "SELECT coalesce(state, ''), coalesce(wait_event_type, ''), coalesce(wait_event, '') \
         FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend'",
        &[&name],
    )?;
    for row in rows {
        tally.add(State::of(row.get(0), row.get(1), row.get(2)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_events_are_sorted_by_what_they_wait_for() {
        assert_eq!(State::of("active", "", ""), State::Cpu);
        assert_eq!(State::of("idle", "Client", "ClientRead"), State::Client);
        assert_eq!(
            State::of("idle in transaction", "Client", "ClientRead"),
            State::Client
        );
        assert_eq!(State::of("active", "Client", "ClientRead"), State::Client);
        assert_eq!(State::of("active", "IO", "WALSync"), State::Commit);
        assert_eq!(State::of("active", "LWLock", "WALWrite"), State::Commit);
        assert_eq!(State::of("active", "IPC", "SyncRep"), State::Commit);
        assert_eq!(State::of("active", "Timeout", "CommitDelay"), State::Commit);
        assert_eq!(State::of("active", "Lock", "relation"), State::Lock);
        assert_eq!(State::of("active", "IO", "DataFileExtend"), State::Io);
        assert_eq!(State::of("active", "LWLock", "BufferContent"), State::Other);
    }

    #[test]
    fn shares_add_up_to_one() {
        let mut tally = Tally::default();
        for state in [State::Cpu, State::Cpu, State::Commit, State::Client] {
            tally.add(state);
        }
        let shares = tally.shares();
        assert_eq!(
            (shares.cpu, shares.commit, shares.client),
            (0.5, 0.25, 0.25)
        );
        assert_eq!(Tally::default().shares(), Shares::default());
    }
}
