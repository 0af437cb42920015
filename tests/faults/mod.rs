//! The fault suite (issue 8): faults injected into real loads, on loopback, each
//! bounded in time, each ending with the count on the target compared with the report. Random
//! points come from a seed printed first, so a failure can be replayed with `LOADER_FAULT_SEED`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::protocol::{ndjson_endpoint, StoredIds};
use crate::support::proxy::{Fault, Proxy};
use crate::support::{
    assert_every_id_once, assert_loaded_through_outage, outage_after, read_report, scratch,
    wait_with_limit, Loader, Pg,
};
use loader::pg::local::Setup;

/// Retries enough to outlast every fault here.
const PATIENT: [&str; 4] = ["--retry-for", "60s", "--max-retries", "30"];

/// A random generator for one test, its seed printed (or taken from `LOADER_FAULT_SEED`).
fn seeded(test: &str) -> fastrand::Rng {
    let seed = std::env::var("LOADER_FAULT_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("{test}: LOADER_FAULT_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// Asserts the stored ids are exactly 0..report's rows_loaded, each stored once.
fn assert_stored_once(stored: &StoredIds, report: &serde_json::Value) {
    let stored = stored.lock().unwrap();
    let loaded = report["rows_loaded"].as_u64().unwrap();
    assert_eq!(stored.len() as u64, loaded, "{report}");
    assert!(
        stored.keys().copied().eq(0..loaded as i64),
        "ids 0..{loaded}"
    );
    let twice = stored.values().filter(|&&times| times > 1).count();
    assert_eq!(twice, 0, "rows stored twice");
}

#[test]
fn five_postgres_restarts_in_a_five_million_row_load_lose_and_duplicate_nothing() {
    const ROWS: i64 = 5_000_000;
    let mut random = seeded("five restarts");
    let pg = Pg::start();
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let child = Loader::new()
        .args(["--threads", "2", "--batch", "1000", "--rows", "5000000"])
        .args(["--create", "--quiet"])
        .args(PATIENT)
        .args(["--target", &pg.url(), "--report"])
        .arg_path(&report_path)
        .spawn();
    // Five points, one in each 850,000-row stretch after the first 300,000.
    for stretch in 0..5 {
        outage_after(
            &pg,
            "readings",
            300_000 + stretch * 850_000 + random.i64(0..450_000),
        );
    }
    let output = wait_with_limit(child, Duration::from_secs(240));
    assert_loaded_through_outage(&pg, &output, &report_path, ROWS);
}

#[test]
fn more_workers_than_the_server_has_connections_for_stop_before_loading() {
    let pg = Pg::start();
    pg.execute(
        "CREATE ROLE app LOGIN CONNECTION LIMIT 3; GRANT CREATE ON SCHEMA public TO app; \
         CREATE TABLE readings (id bigint, ts timestamptz, sensor_id int, location text, \
         temperature double precision, humidity double precision, status text); \
         GRANT ALL ON readings TO app",
    );
    let url = format!("postgres://app@127.0.0.1:{}/postgres", pg.cluster.port());
    let started = Instant::now();
    let run = Loader::new()
        .args(["--threads", "8", "--rows", "100000", "--target", &url])
        .run_within(Duration::from_secs(30));
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no retries: {:?}",
        started.elapsed()
    );
    for words in [
        "room for 3 more connections",
        "CONNECTION LIMIT is 3",
        "--threads",
    ] {
        assert!(run.stderr().contains(words), "{words}: {}", run.stderr());
    }
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 0);
    // As many workers as the limit allows load everything.
    let run = Loader::new()
        .args(["--threads", "3", "--rows", "100000", "--target", &url])
        .run_within(Duration::from_secs(60));
    run.assert_success();
    assert_every_id_once(&pg, 100_000);

    // The server's own limit, for a superuser.
    let pg = Pg::start_with(Setup {
        settings: [
            "max_connections=6",
            "superuser_reserved_connections=0",
            "max_wal_senders=0",
        ]
        .map(String::from)
        .to_vec(),
        files: Vec::new(),
    });
    let run = Loader::new()
        .args([
            "--threads",
            "8",
            "--rows",
            "100000",
            "--create",
            "--target",
            &pg.url(),
        ])
        .run_within(Duration::from_secs(30));
    assert_eq!(run.code(), 3, "{}", run.stderr());
    for words in [
        "room for 6 more connections",
        "max_connections is 6",
        "--threads",
    ] {
        assert!(run.stderr().contains(words), "{words}: {}", run.stderr());
    }
    assert_eq!(
        pg.scalar("SELECT count(*) FROM pg_class WHERE relname = 'readings'"),
        0
    );
}

#[test]
fn postgres_behind_a_proxy_that_resets_stalls_and_delays_gets_every_row_once() {
    let mut random = seeded("postgres chaos");
    let pg = Pg::start();
    let faults = vec![
        Fault::Reset,
        Fault::Stall(Duration::from_secs(3)),
        Fault::Reset,
        Fault::Delay(Duration::from_millis(2)),
        Fault::Reset,
        Fault::Stall(Duration::from_secs(2)),
        Fault::Reset,
        Fault::Delay(Duration::from_millis(1)),
    ];
    // Worker connections each send about 15 MB; setup and ledger look-ups send a few KB, so they
    // pass untouched and the faults land mid-load.
    let proxy = Proxy::chaos(pg.cluster.port(), faults, 64 << 10..4 << 20, random.u64(..));
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port);
    let run = Loader::new()
        .args(["--threads", "4", "--batch", "1000", "--rows", "1000000"])
        .args(["--create", "--quiet"])
        .args(PATIENT)
        .args(["--target", &url, "--report"])
        .arg_path(&report_path)
        .run_within(Duration::from_secs(180));
    run.assert_success();
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], 1_000_000, "{report}");
    assert_every_id_once(&pg, 1_000_000);
    assert!(proxy.cut() >= 4, "faults given: {}", proxy.cut());
}

#[test]
fn an_http_target_behind_a_proxy_that_resets_stalls_and_delays_gets_every_row() {
    let mut random = seeded("http chaos");
    let stored: StoredIds = Arc::default();
    let server = ndjson_endpoint(Arc::clone(&stored), || None);
    let faults = vec![
        Fault::Reset,
        Fault::Stall(Duration::from_secs(3)),
        Fault::Reset,
        Fault::Delay(Duration::from_millis(5)),
        Fault::Stall(Duration::from_secs(3)),
        Fault::Reset,
    ];
    // Inside a connection's first request (a batch is about 150 KB of NDJSON), so that every
    // connection that carries a batch gets its fault however the batches spread.
    let proxy = Proxy::chaos(server.port, faults, 2 << 10..64 << 10, random.u64(..));
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args(["--threads", "4", "--batch", "1000", "--rows", "100000"])
        .args(["--timeout", "1s", "--quiet"])
        .args(PATIENT)
        .args(["--target", &format!("http://127.0.0.1:{}/rows", proxy.port)])
        .arg("--report")
        .arg_path(&report_path)
        .run_within(Duration::from_secs(180));
    run.assert_success();
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], 100_000, "{report}");
    // A plain NDJSON endpoint is at-least-once (docs/RELIABILITY.md): a reset after the server
    // stored a batch makes loader send it again. Every row is there; none is missing.
    let stored = stored.lock().unwrap();
    assert!(stored.keys().copied().eq(0..100_000), "every id stored");
    assert!(proxy.cut() >= 4, "faults given: {}", proxy.cut());
    let retries = report["retries"].as_object().unwrap();
    assert!(
        retries.contains_key("timeout"),
        "a stall fires the timeout: {report}"
    );
}

#[test]
fn sigint_and_sigterm_at_twenty_points_each_end_with_a_summary_and_an_exact_count() {
    let mut random = seeded("signals");
    let pg = Pg::start();
    // A signal may come before the first load has created the table.
    pg.execute(
        "CREATE TABLE readings (id bigint, ts timestamptz, sensor_id int, location text, \
         temperature double precision, humidity double precision, status text)",
    );
    let dir = scratch();
    for point in 0..20 {
        let report_path = dir.path().join(format!("r{point}.json"));
        let signal = if point % 2 == 0 {
            Signal::SIGINT
        } else {
            Signal::SIGTERM
        };
        // From before the connections open to well into the load (the handler is installed
        // when the process starts, before it parses its arguments' targets).
        let after = Duration::from_millis(random.u64(200..2500));
        // Every other point holds batches for a later commit, which the stop must flush.
        let commit_every = if point % 4 < 2 { "1" } else { "4" };
        let child = Loader::new()
            .args(["--threads", "2", "--batch", "1000", "--truncate"])
            .args(["--commit-every", commit_every])
            .args(["--target", &pg.url(), "--report"])
            .arg_path(&report_path)
            .spawn();
        std::thread::sleep(after);
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let output = wait_with_limit(child, Duration::from_secs(20));
        let what = format!("{signal} after {after:?}, --commit-every {commit_every}");
        assert_eq!(output.status.code(), Some(130), "{what}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("interrupted"),
            "{what}: summary missing: {stdout}"
        );
        let report = read_report(&report_path);
        let loaded = report["rows_loaded"].as_i64().unwrap();
        let on_target = pg.scalar("SELECT count(*) FROM readings");
        assert_eq!(on_target, loaded, "{what}");
        assert_eq!(pg.scalar("SELECT count(DISTINCT id) FROM readings"), loaded);
        // Workers claim batches of ids in order and finish (commit) every batch they claimed,
        // the ones held for --commit-every included: the ids have no gap.
        assert_eq!(
            pg.scalar("SELECT coalesce(max(id) + 1, 0) FROM readings"),
            loaded,
            "{what}: a claimed batch was not committed"
        );
    }
}

#[test]
fn an_http_target_failing_at_random_for_a_minute_gets_every_row_once() {
    let mut random = seeded("a minute of failures");
    let stored: StoredIds = Arc::default();
    let failures: Arc<Mutex<BTreeMap<u16, u64>>> = Arc::default();
    let counted = Arc::clone(&failures);
    let server = ndjson_endpoint(Arc::clone(&stored), move || {
        let status = match random.u32(0..10) {
            0 => 500,
            1 => 503,
            2 => 429,
            _ => return None,
        };
        *counted.lock().unwrap().entry(status).or_default() += 1;
        Some((status, "{\"error\":\"injected\"}".into()))
    });
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args(["--threads", "4", "--batch", "1000", "--duration", "60s"])
        .args(["--quiet"])
        .args(PATIENT)
        .args([
            "--target",
            &format!("http://127.0.0.1:{}/rows", server.port),
        ])
        .arg("--report")
        .arg_path(&report_path)
        .run_within(Duration::from_secs(150));
    run.assert_success();
    let report = read_report(&report_path);
    assert_stored_once(&stored, &report);
    let failures = failures.lock().unwrap();
    assert_eq!(failures.len(), 3, "each failure was answered: {failures:?}");
    let retried: u64 = report["retries"]
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(retried, failures.values().sum::<u64>(), "{report}");
}
