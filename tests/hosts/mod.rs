//! Targets with several hosts: two real PostgreSQL clusters as the two hosts of one target, one of
//! them stopped mid-load; two HTTP endpoints, one of them gone mid-load; a host that is down from
//! the start. Every load is checked by counting what each host stored, against the report.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::protocol::ndjson_endpoint;
use crate::support::{
    count_or_zero, read_report, scratch, wait_for_success, wait_until, Loader, Pg,
};

/// The rows each host's report entry shows, in host order.
fn rows_by_host(report: &Value) -> Vec<i64> {
    report["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("the report lists rows per host: {report}"))
        .iter()
        .map(|host| host["rows"].as_i64().unwrap())
        .collect()
}

#[test]
fn two_clusters_share_the_rows_and_the_load_moves_while_one_is_stopped() {
    let (first, second) = (Pg::start(), Pg::start());
    const ROWS: i64 = 4_000_000;
    let target = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?sslmode=disable",
        first.cluster.port(),
        second.cluster.port()
    );
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let child = Loader::new()
        .args([
            "--threads",
            "4",
            "--batch",
            "1000",
            "--rows",
            &ROWS.to_string(),
        ])
        .args(["--create", "--quiet", "--target", &target, "--report"])
        .arg_path(&report_path)
        .spawn();
    wait_until(Duration::from_secs(60), "rows on the first host", || {
        count_or_zero(&first, "readings") > 100_000
    });
    first.cluster.kill().expect("stop the first cluster");
    let second_before = count_or_zero(&second, "readings");
    std::thread::sleep(Duration::from_secs(2));
    let second_during = count_or_zero(&second, "readings");
    first
        .cluster
        .restart()
        .expect("start the first cluster again");
    let first_after_restart = count_or_zero(&first, "readings");
    wait_for_success(child, Duration::from_secs(180));

    let report = read_report(&report_path);
    let counts = [&first, &second].map(|pg| pg.scalar("SELECT count(*) FROM readings"));
    let distinct = [&first, &second].map(|pg| pg.scalar("SELECT count(DISTINCT id) FROM readings"));
    // A batch whose COMMIT was in doubt when the first host died is sent to the second; the
    // report counts it twice when the first host turns out to have committed it too.
    let duplicated = report["moved"]["duplicated_rows"].as_i64().unwrap_or(0);
    assert_eq!(
        counts[0] + counts[1],
        report["rows_loaded"].as_i64().unwrap()
    );
    assert_eq!(report["rows_loaded"].as_i64().unwrap(), ROWS + duplicated);
    assert_eq!(distinct, counts, "no id twice within one cluster");
    assert_eq!(rows_by_host(&report), counts, "{}", report["hosts"]);
    assert!(
        report["moved"]["unverified"].is_null(),
        "the first host was back to settle every moved batch: {}",
        report["moved"]
    );
    assert!(
        second_during > second_before + 100_000,
        "the second host took the load while the first was down ({second_before} → {second_during})"
    );
    assert!(
        counts[0] > first_after_restart,
        "workers returned to the first host once it was back ({first_after_restart} → {})",
        counts[0]
    );
    assert!(
        report["retries"].as_object().is_some_and(|r| !r.is_empty()),
        "the outage shows as retries: {report}"
    );
    // Every ledger row names the host that committed it.
    for (pg, port) in [
        (&first, first.cluster.port()),
        (&second, second.cluster.port()),
    ] {
        let foreign = pg.scalar(&format!(
            "SELECT count(*) FROM loader_ledger WHERE host IS DISTINCT FROM '127.0.0.1:{port}'"
        ));
        assert_eq!(foreign, 0, "ledger rows of port {port} name their host");
    }
}

#[test]
fn a_host_down_from_the_start_is_left_out_with_a_warning() {
    let pg = Pg::start();
    let free_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!(
        "postgres://postgres@127.0.0.1:{free_port},127.0.0.1:{}/postgres",
        pg.cluster.port()
    );
    let run = Loader::new()
        .args(["--threads", "2", "--rows", "10000", "--create", "--quiet"])
        .args(["--target", &target])
        .run();
    run.assert_success();
    assert!(
        run.stderr().contains(&format!(
            "host 127.0.0.1:{free_port} is left out of this run"
        )),
        "{}",
        run.stderr()
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 10_000);

    // --run-id reads every host's ledger: a host it cannot read is an error, not a guess.
    let dir = scratch();
    let input = dir.path().join("ids.csv");
    std::fs::write(&input, "1\n2\n").unwrap();
    let run = Loader::new()
        .arg("copy")
        .arg_path(&input)
        .args(["--columns", "id", "--table", "readings", "--run-id", "r1"])
        .args(["--target", &target])
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("--run-id reads the ledger of every host"),
        "{}",
        run.stderr()
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 10_000);
}

#[test]
fn http_hosts_share_the_rows_and_the_load_moves_when_one_goes_away() {
    const ROWS: i64 = 200_000;
    let stores: [Arc<Mutex<BTreeMap<i64, u32>>>; 2] = Default::default();
    let mut first = Some(ndjson_endpoint(Arc::clone(&stores[0]), || None));
    let second = ndjson_endpoint(Arc::clone(&stores[1]), || None);
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let child = Loader::new()
        .args([
            "--threads",
            "4",
            "--batch",
            "500",
            "--rows",
            &ROWS.to_string(),
        ])
        // A request the stopped server had accepted hangs until the timeout, then moves on.
        .args([
            "--quiet",
            "--retry-for",
            "60s",
            "--max-retries",
            "50",
            "--timeout",
            "2s",
        ])
        .args([
            "--target",
            &format!("http://127.0.0.1:{}/rows", first.as_ref().unwrap().port),
        ])
        .args([
            "--target",
            &format!("http://127.0.0.1:{}/rows", second.port),
        ])
        .arg("--report")
        .arg_path(&report_path)
        .spawn();
    let stored = |i: usize| stores[i].lock().unwrap().len() as i64;
    wait_until(Duration::from_secs(60), "rows on the first host", || {
        stored(0) > 10_000
    });
    first.take();
    let first_at_stop = stored(0);
    wait_for_success(child, Duration::from_secs(120));
    let report = read_report(&report_path);
    let counts = [stored(0), stored(1)];
    assert_eq!(counts[0], first_at_stop, "nothing reached the stopped host");
    assert_eq!(counts[0] + counts[1], ROWS);
    assert_eq!(report["rows_loaded"], ROWS, "{report}");
    assert_eq!(rows_by_host(&report), counts);
    let ids: BTreeSet<i64> = stores
        .iter()
        .flat_map(|store| store.lock().unwrap().keys().copied().collect::<Vec<_>>())
        .collect();
    assert_eq!(ids.len() as i64, ROWS, "every id, none on both hosts");
    assert!(
        stores
            .iter()
            .all(|store| store.lock().unwrap().values().all(|&n| n == 1)),
        "no id twice on one host"
    );
}
