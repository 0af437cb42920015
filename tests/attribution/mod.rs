//! Where a PostgreSQL load's time went: the server's backends sampled in `pg_stat_activity`, the
//! WAL counters, and the one verdict line, on three loads staged to be bound by commits (a
//! synchronous standby that applies late), by the client (`--rate`) and by a lock. ClickHouse and
//! Elasticsearch loads: `http.rs`.

mod http;

use std::time::Duration;

use crate::support::{read_report, scratch, Loader, Pg, Run};

/// Runs `loader` with `args` into `target` and returns the run and its report.
fn load_into(target: &str, args: &[&str]) -> (Run, serde_json::Value) {
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args(args)
        .args(["--target", target, "--report"])
        .arg_path(&report_path)
        .run();
    run.assert_success();
    let report = read_report(&report_path);
    (run, report)
}

/// Runs `loader` with `args` into `pg` and returns its report and summary.
fn load(pg: &Pg, args: &[&str]) -> (serde_json::Value, String) {
    let (run, report) = load_into(&pg.url(), args);
    (report, run.stdout())
}

#[test]
fn a_server_waiting_for_its_standby_at_every_commit_is_bound_by_commits() {
    // Every COMMIT waits until a standby that applies WAL 20 ms late has applied it: far longer
    // than the batch's round trips, however busy the machine.
    let pg = Pg::start();
    let _standby = pg
        .cluster
        .start_standby(vec!["recovery_min_apply_delay=20ms".into()])
        .expect("start a standby");
    pg.execute("ALTER SYSTEM SET synchronous_standby_names = '*'");
    pg.execute("ALTER SYSTEM SET synchronous_commit = 'remote_apply'");
    pg.execute("SELECT pg_reload_conf()");
    let (report, stdout) = load(
        &pg,
        &[
            "--rows",
            "2000",
            "--batch",
            "20",
            "--threads",
            "2",
            "--create",
        ],
    );
    let server = &report["server_time"];
    assert!(server["samples"].as_u64().unwrap() >= 10, "{server}");
    assert!(
        server["shares"]["commit"].as_f64().unwrap() >= 0.5,
        "{server}"
    );
    assert_eq!(report["verdict"]["bound_by"], "commits", "{report}");
    assert!(
        stdout.contains("  bound by  commits (WAL flush): "),
        "{stdout}"
    );
    assert!(stdout.contains("20 rows per commit"), "{stdout}");
    assert!(stdout.contains("  server    backends on CPU "), "{stdout}");
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 2000);
}

#[test]
fn a_rate_limited_load_is_bound_by_the_client() {
    let pg = Pg::start();
    let (report, stdout) = load(
        &pg,
        &[
            "--rows", "20000", "--batch", "500", "--rate", "10000", "--create",
        ],
    );
    let server = &report["server_time"];
    assert!(
        server["shares"]["client"].as_f64().unwrap() >= 0.6,
        "{server}"
    );
    let time = &report["workers_time"];
    assert!(
        time["producing_s"].as_f64().unwrap() > time["writing_s"].as_f64().unwrap(),
        "{time}"
    );
    assert_eq!(report["verdict"]["bound_by"], "client", "{report}");
    assert!(
        stdout.contains("  bound by  the client (loader): "),
        "{stdout}"
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 20000);
}

#[test]
fn a_table_locked_by_another_session_is_bound_by_locks() {
    let pg = Pg::start();
    pg.execute(
        "CREATE TABLE readings (id bigint, ts timestamptz, sensor_id int, location text, \
         temperature double precision, humidity double precision, status text)",
    );
    let client = pg.client();
    let locker = std::thread::spawn(move || {
        let mut client = client;
        let mut lock = client.transaction().unwrap();
        // Taken as the load starts, held for 2 s of its 3.
        lock.batch_execute("LOCK TABLE readings IN SHARE MODE")
            .unwrap();
        std::thread::sleep(Duration::from_secs(2));
        lock.rollback().unwrap();
    });
    let (report, _) = load(
        &pg,
        &["--duration", "3s", "--batch", "1000", "--threads", "2"],
    );
    locker.join().unwrap();
    let server = &report["server_time"];
    assert!(
        server["shares"]["lock"].as_f64().unwrap() >= 0.4,
        "{server}"
    );
    assert_eq!(report["verdict"]["bound_by"], "locks", "{report}");
    assert_eq!(
        report["rows_loaded"].as_i64().unwrap(),
        pg.scalar("SELECT count(*) FROM readings")
    );
}
