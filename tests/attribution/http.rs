//! Where a ClickHouse or Elasticsearch load's time went: on a real ClickHouse, loader's INSERTs in
//! `system.processes` and the query log, the delayed inserts of a table with a low
//! `parts_to_delay_insert`, a `--rate`-bound load; on a stand-in Elasticsearch, the write thread
//! pool's counters scripted to reject, and node stats refused (one warning, the load unaffected).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::load_into;
use crate::support::clickhouse::ClickHouse;
use crate::support::protocol::{ProtocolServer, Seen};

const ROWS: u64 = 20_000;

/// The generated rows' table, with ClickHouse's MergeTree `settings`.
fn readings_table(clickhouse: &ClickHouse, settings: &str) {
    clickhouse
        .query(&format!(
            "CREATE TABLE readings (id Int64, ts DateTime('UTC'), sensor_id Int32, \
             location String, temperature Float64, humidity Float64, status String) \
             ENGINE = MergeTree ORDER BY tuple() SETTINGS index_granularity = 8192{settings}"
        ))
        .expect("create the table");
}

#[test]
fn a_clickhouse_load_counts_its_inserts_in_the_query_log() {
    let clickhouse = ClickHouse::start();
    let (run, report) = load_into(
        &clickhouse.url(),
        &[
            "--rows",
            "20000",
            "--batch",
            "500",
            "--threads",
            "2",
            "--create",
        ],
    );
    let server = &report["clickhouse"];
    assert_eq!(server["executing_from"], "query_log", "{server}");
    assert_eq!(report["batches"], 40, "{report}");
    assert_eq!(server["inserts"], report["batches"], "{server}");
    assert_eq!(server["written_rows"], ROWS, "{server}");
    assert_eq!(report["rows_loaded"], ROWS, "{report}");
    assert_eq!(clickhouse.scalar("SELECT count() FROM readings"), 20_000);
    assert_eq!(server["delayed_inserts"], 0, "{server}");
    assert_eq!(server["rejected_inserts"], 0, "{server}");
    let share = server["executing_share"].as_f64().unwrap();
    assert!(share > 0.0 && share <= 1.0, "{server}");
    assert!(server["active_parts"].as_u64().unwrap() >= 1, "{server}");
    assert!(report["verdict"]["bound_by"].is_string(), "{report}");
    let stdout = run.stdout();
    assert!(
        stdout.contains("  server    running loader's inserts ")
            && stdout.contains("; 40 inserts logged, 20,000 rows; 0 delayed"),
        "{stdout}"
    );
    assert!(report.get("server_time").is_none(), "{report}");
}

#[test]
fn a_rate_limited_clickhouse_load_is_bound_by_the_client() {
    let clickhouse = ClickHouse::start();
    let (run, report) = load_into(
        &clickhouse.url(),
        &[
            "--rows", "20000", "--batch", "500", "--rate", "20000", "--create",
        ],
    );
    let server = &report["clickhouse"];
    assert!(server["samples"].as_u64().unwrap() >= 5, "{server}");
    assert!(
        server["executing_share"].as_f64().unwrap() <= 0.4,
        "{server}"
    );
    assert_eq!(server["inserts"], report["batches"], "{server}");
    assert_eq!(report["verdict"]["bound_by"], "client", "{report}");
    assert!(
        run.stdout()
            .contains("  bound by  the client (loader): the server ran loader's inserts "),
        "{}",
        run.stdout()
    );
    assert_eq!(clickhouse.scalar("SELECT count() FROM readings"), 20_000);
}

#[test]
fn a_clickhouse_table_with_too_many_parts_throttles_the_load() {
    // Every part beyond the first delays the next insert, by more the closer the table is to
    // 20 parts; merges of such small parts do not keep up within the load.
    let clickhouse = ClickHouse::start();
    readings_table(
        &clickhouse,
        ", parts_to_delay_insert = 1, parts_to_throw_insert = 20",
    );
    let (run, report) = load_into(
        &clickhouse.url(),
        &[
            "--rows",
            "20000",
            "--batch",
            "500",
            "--threads",
            "2",
            "--retry-for",
            "60s",
            "--max-retries",
            "100",
        ],
    );
    let server = &report["clickhouse"];
    assert!(server["delayed_inserts"].as_u64().unwrap() > 0, "{server}");
    assert_eq!(report["verdict"]["bound_by"], "throttled", "{report}");
    assert!(
        run.stdout()
            .contains("  bound by  the server's throttling: the server delayed "),
        "{}",
        run.stdout()
    );
    assert_eq!(report["rows_loaded"], ROWS, "{report}");
    assert_eq!(clickhouse.scalar("SELECT count() FROM readings"), 20_000);
}

/// The rows of a `_bulk` body.
fn bulk_rows(seen: &Seen) -> usize {
    String::from_utf8_lossy(&seen.body).lines().count() / 2
}

/// A stand-in Elasticsearch storing every document; the write pool's counters rise by
/// `rejected_per_read` at every read of the thread-pool stats, which `reads` counts, as do the
/// rows stored.
fn elastic(
    rejected_per_read: u64,
    reads: Arc<AtomicU64>,
    stored: Arc<AtomicU64>,
) -> ProtocolServer {
    ProtocolServer::with_node_stats(move |seen| {
        if seen.url.starts_with("/_nodes/stats/thread_pool") {
            let read = reads.fetch_add(1, Ordering::SeqCst) + 1;
            let pool = json!({"threads": 2, "queue": if read == 1 { 0 } else { 3 }, "active": 2,
                              "rejected": rejected_per_read * read, "completed": 10 * read});
            let answer = json!({"nodes": {"n1": {"thread_pool": {"write": pool}}}});
            return (200, answer.to_string());
        }
        if seen.url.starts_with("/_nodes/stats/indices") {
            let indexed = stored.load(Ordering::SeqCst);
            let indexing = json!({"index_total": indexed, "index_time_in_millis": indexed / 100,
                                  "throttle_time_in_millis": 0});
            let answer = json!({"nodes": {"n1": {"indices": {"indexing": indexing}}}});
            return (200, answer.to_string());
        }
        if seen.method == "PUT" {
            return (200, json!({"acknowledged": true}).to_string());
        }
        let rows = bulk_rows(seen);
        stored.fetch_add(rows as u64, Ordering::SeqCst);
        let items = vec![json!({"index": {"status": 201}}); rows];
        (200, json!({"errors": false, "items": items}).to_string())
    })
}

#[test]
fn rejections_in_the_write_thread_pool_bind_an_elasticsearch_load() {
    let (reads, stored) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let server = elastic(5, Arc::clone(&reads), Arc::clone(&stored));
    let (run, report) = load_into(
        &format!("es+http://127.0.0.1:{}", server.port),
        &[
            "--rows", "20000", "--batch", "500", "--rate", "40000", "--create",
        ],
    );
    let pool: &Value = &report["elasticsearch"];
    let samples = pool["samples"].as_u64().unwrap();
    assert!(samples >= 3, "{pool}");
    // Read before, at every sample and after: the counter rose 5 at each read after the first.
    assert_eq!(reads.load(Ordering::SeqCst), samples + 2, "{pool}");
    assert_eq!(pool["rejected"], 5 * (samples + 1), "{pool}");
    assert_eq!(pool["completed"], 10 * (samples + 1), "{pool}");
    assert_eq!(pool["nodes"], 1, "{pool}");
    assert_eq!(pool["peak_queue"], 3, "{pool}");
    // Counted from the watch's first read, which a first batch may precede.
    let indexed = pool["index_total"].as_u64().unwrap();
    assert!(indexed > 0 && indexed <= ROWS, "{pool}");
    assert_eq!(report["verdict"]["bound_by"], "write_pool", "{report}");
    let rejected = 5 * (samples + 1);
    assert!(
        run.stdout().contains(&format!(
            "  bound by  the server's write thread pool: it rejected {rejected} write tasks"
        )),
        "{}",
        run.stdout()
    );
    assert_eq!(report["rows_loaded"], ROWS, "{report}");
    assert_eq!(stored.load(Ordering::SeqCst), ROWS);
}

#[test]
fn node_stats_refused_are_one_warning_and_the_load_goes_on() {
    for status in [404, 403] {
        let stored = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&stored);
        let server = ProtocolServer::with_node_stats(move |seen| {
            if seen.url.starts_with("/_nodes/") {
                return (status, json!({"error": "no"}).to_string());
            }
            let rows = bulk_rows(seen);
            counted.fetch_add(rows as u64, Ordering::SeqCst);
            let items = vec![json!({"index": {"status": 201}}); rows];
            (200, json!({"errors": false, "items": items}).to_string())
        });
        let (run, report) = load_into(
            &format!("opensearch+http://127.0.0.1:{}", server.port),
            &["--rows", "20000", "--batch", "500"],
        );
        let stderr = run.stderr();
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|line| line.starts_with("loader: warning:"))
            .collect();
        assert_eq!(
            warnings,
            [format!(
                "loader: warning: the server's time is not sampled: GET \
                 /_nodes/stats/thread_pool answered HTTP {status}: {{\"error\":\"no\"}}"
            )],
            "{stderr}"
        );
        assert!(report.get("elasticsearch").is_none(), "{report}");
        assert!(report.get("verdict").is_none(), "{report}");
        assert_eq!(report["rows_loaded"], ROWS, "{report}");
        assert_eq!(stored.load(Ordering::SeqCst), ROWS);
    }
}
