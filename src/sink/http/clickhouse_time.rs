//! Where a ClickHouse load's time goes on the server: while the workers run, one extra HTTP
//! connection counts loader's own INSERTs running in `system.processes` every 100 ms (found by the
//! `User-Agent` every request of this process carries, [`user_agent`]). `system.events` is read
//! before and after for the server's inserted rows, delayed and rejected inserts (the "too many
//! parts" throttling) and merges; after the load, when `log_queries` is on, `system.query_log`
//! gives each INSERT's duration, rows and memory, and the table's active parts are counted.
//!
//! The share of the workers' time the server spent running their INSERTs comes from the query
//! log's durations when it has them (exact), else from the samples (one in 100 ms). A user who
//! cannot read `system.processes` or `system.events` gets one warning and no figures; one who
//! cannot flush or read the query log still gets the samples.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::clickhouse::{columns_of, literal, run_query};
use super::HttpClient;
use crate::http_client::{user_agent, HttpOptions};
use crate::sampler::{sample_until, Stop};
use crate::sql::TableName;
use crate::target::HttpTarget;

/// The `system.events` counters read before and after the load.
const EVENTS: [&str; 6] = [
    "InsertedRows",
    "InsertedBytes",
    "DelayedInserts",
    "DelayedInsertsMilliseconds",
    "RejectedInserts",
    "Merge",
];

/// What the server did for a ClickHouse load.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct ClickHouseTime {
    /// `system.processes` samples taken, one per 100 ms.
    pub samples: u64,
    /// loader's INSERTs running at once, on average over the samples.
    pub mean_running: f64,
    /// The share of the workers' time during which the server was running one of their INSERTs,
    /// from 0 to 1; the rest went to producing, encoding and sending batches.
    pub executing_share: f64,
    /// Where `executing_share` comes from: `query_log` (the INSERTs' durations) or `processes`
    /// (the samples).
    pub executing_from: &'static str,
    /// From `system.query_log` (with `log_queries` on): loader's INSERTs that finished, the rows
    /// they wrote, their time in all (the logged whole milliseconds, each with the half
    /// millisecond its truncation loses on average) and the most memory one used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inserts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert_time_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// `system.events` during the load, over all sessions of the server.
    pub inserted_rows: u64,
    pub inserted_bytes: u64,
    /// Inserts slowed down because the table had many parts (`parts_to_delay_insert`) ...
    pub delayed_inserts: u64,
    pub delayed_insert_ms: u64,
    /// The share of the workers' time those delays took, from 0 to 1.
    pub delayed_share: f64,
    /// ... and refused for too many parts (`parts_to_throw_insert`, error 252).
    pub rejected_inserts: u64,
    /// Background merges started.
    pub merges: u64,
    /// The table's active parts after the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_parts: Option<u64>,
}

/// What the ClickHouse watch is to watch.
pub(crate) struct Watched<'a> {
    pub target: &'a HttpTarget,
    pub options: &'a HttpOptions,
    pub table: &'a TableName,
    pub workers: usize,
    /// Before the workers' first INSERT: the query log is read from this second on.
    pub since: SystemTime,
}

/// Connects to the first host of the target, reads the counters, samples loader's INSERTs until
/// `stop`, then reads the counters and the query log: the watch a
/// [`Sampler`](crate::sampler::Sampler) runs.
pub(crate) fn watch(watched: &Watched<'_>, stop: &Stop) -> Result<ClickHouseTime, String> {
    let (table, workers) = (watched.table, watched.workers);
    let target = watched.target.single_host(0);
    let client = HttpClient::new(&target, watched.options).map_err(|err| err.to_string())?;
    let query = |sql: &str| run_query(&client, &target, table, sql).map_err(|err| err.to_string());
    let started = Instant::now();
    let started_at = watched
        .since
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let before = events(&query(&events_query())?);
    let own = format!(
        "http_user_agent = {} AND startsWith(query, 'INSERT')",
        literal(user_agent())
    );
    let running = format!("SELECT count() FROM system.processes WHERE {own} FORMAT TSV");
    let (mut samples, mut running_sum) = (0, 0.0);
    sample_until(stop, || {
        running_sum += numbers(&query(&running)?).first().copied().unwrap_or(0.0);
        samples += 1;
        Ok::<(), String>(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let after = events(&query(&events_query())?);
    let delta = |event: &str| {
        let count = |of: &BTreeMap<String, u64>| of.get(event).copied().unwrap_or(0);
        count(&after).saturating_sub(count(&before))
    };
    let mean_running = running_sum / (samples.max(1) as f64);
    let logged = logged_inserts(&query, &own, started_at);
    let insert_seconds = logged.map(|logged| insert_seconds(logged[0], logged[2]));
    let worker_seconds = seconds * workers.max(1) as f64;
    let (executing_share, executing_from) = match insert_seconds {
        Some(seconds) if worker_seconds > 0.0 => (seconds / worker_seconds, "query_log"),
        _ => (mean_running / workers.max(1) as f64, "processes"),
    };
    let active_parts = query(&format!(
        "SELECT count() FROM system.parts WHERE active AND {} FORMAT TSV",
        columns_of(table)
    ))
    .ok()
    .and_then(|answer| numbers(&answer).first().map(|&parts| parts as u64));
    Ok(ClickHouseTime {
        samples,
        mean_running,
        executing_share: executing_share.min(1.0),
        executing_from,
        inserts: logged.map(|logged| logged[0] as u64),
        written_rows: logged.map(|logged| logged[1] as u64),
        insert_time_s: insert_seconds,
        peak_memory_bytes: logged.map(|logged| logged[3] as u64),
        inserted_rows: delta("InsertedRows"),
        inserted_bytes: delta("InsertedBytes"),
        delayed_inserts: delta("DelayedInserts"),
        delayed_insert_ms: delta("DelayedInsertsMilliseconds"),
        delayed_share: if worker_seconds > 0.0 {
            (delta("DelayedInsertsMilliseconds") as f64 / 1000.0 / worker_seconds).min(1.0)
        } else {
            0.0
        },
        rejected_inserts: delta("RejectedInserts"),
        merges: delta("Merge"),
        active_parts,
    })
}

/// The query of the counters in [`EVENTS`].
fn events_query() -> String {
    let names: Vec<String> = EVENTS.iter().map(|name| literal(name)).collect();
    format!(
        "SELECT event, value FROM system.events WHERE event IN ({}) FORMAT TSV",
        names.join(", ")
    )
}

/// `system.events` rows as a map; an event the server has not counted yet is absent.
fn events(answer: &str) -> BTreeMap<String, u64> {
    answer
        .lines()
        .filter_map(|line| {
            let (event, value) = line.split_once('\t')?;
            Some((event.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// loader's finished INSERTs since `started_at` (Unix seconds) in the query log: count, rows
/// written, milliseconds in all, peak memory. `None` when queries are not logged or the log
/// cannot be flushed or read.
fn logged_inserts(
    query: &impl Fn(&str) -> Result<String, String>,
    own: &str,
    started_at: u64,
) -> Option<[f64; 4]> {
    let logging = query("SELECT value FROM system.settings WHERE name = 'log_queries' FORMAT TSV");
    if logging.ok()?.trim() != "1" {
        return None;
    }
    // The log is written in the background every few seconds: flushed, it holds the load.
    query("SYSTEM FLUSH LOGS").ok()?;
    let answer = query(&format!(
        "SELECT count(), sum(written_rows), sum(query_duration_ms), max(memory_usage) \
         FROM system.query_log WHERE type = 2 AND {own} \
         AND event_date >= toDate(toDateTime({started_at})) \
         AND query_start_time >= toDateTime({started_at}) FORMAT TSV"
    ))
    .ok()?;
    numbers(&answer).try_into().ok()
}

/// The time `inserts` INSERTs took whose logged durations add up to `milliseconds`: the log
/// truncates each duration to whole milliseconds, which loses half a millisecond on average, a
/// third of the time of a 1.5 ms insert; that half is added back.
fn insert_seconds(inserts: f64, milliseconds: f64) -> f64 {
    (milliseconds + inserts * 0.5) / 1000.0
}

/// The numbers of a one-row TSV answer.
fn numbers(answer: &str) -> Vec<f64> {
    answer
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_numbers_are_read_from_tsv() {
        let read = events("InsertedRows\t2000\nMerge\t3\nbroken line\n");
        assert_eq!(read.get("InsertedRows"), Some(&2000));
        assert_eq!(read.get("Merge"), Some(&3));
        assert_eq!(read.len(), 2);
        assert_eq!(
            numbers("4\t2000\t37\t5261558\n"),
            [4.0, 2000.0, 37.0, 5261558.0]
        );
        assert!(events_query().contains("'RejectedInserts'"));
        assert_eq!(insert_seconds(4.0, 38.0), 0.04);
    }
}
