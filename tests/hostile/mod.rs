//! Hostile endings end to end: a standard output closed before the summary, durations too large
//! for the clock, and `_bulk` answers with another number of items than rows sent. Each ends
//! with an exact exit code, one clear line and no panic, and where rows were loaded the report
//! agrees with the target.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::support::protocol::{ProtocolServer, Seen};
use crate::support::stream::{Script, StreamServer};
use crate::support::{read_report, scratch, Loader, Pg, Run};

/// The exit code of a panic in Rust's main thread.
const PANIC_EXIT: i32 = 101;

/// Asserts a run with its stdout closed neither panicked nor lost its report, and returns the
/// report.
fn ended_well(run: &Run, report: &std::path::Path) -> serde_json::Value {
    assert_ne!(run.code(), PANIC_EXIT, "{}", run.stderr());
    assert!(!run.stderr().contains("panicked at"), "{}", run.stderr());
    assert!(report.exists(), "no report; stderr: {}", run.stderr());
    read_report(report)
}

#[test]
fn a_closed_stdout_after_a_load_into_null_still_writes_the_report() {
    let dir = scratch();
    let report = dir.path().join("r.json");
    let run = Loader::new()
        .args(["--target", "null", "--rows", "100000", "--report"])
        .arg_path(&report)
        .run_with_stdout_closed();
    let report = ended_well(&run, &report);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(report["rows_loaded"], 100_000, "{report}");
}

#[test]
fn a_closed_stdout_after_a_load_into_postgres_still_writes_the_report() {
    let pg = Pg::start();
    let dir = scratch();
    let report = dir.path().join("r.json");
    let run = Loader::new()
        .args(["--target", &pg.url(), "--create", "--rows", "20000"])
        .arg("--report")
        .arg_path(&report)
        .run_with_stdout_closed();
    let report = ended_well(&run, &report);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let stored = pg.scalar("SELECT count(*) FROM readings");
    assert_eq!(stored, 20_000);
    assert_eq!(report["rows_loaded"], stored, "{report}");
}

#[test]
fn a_closed_stdout_after_a_probe_still_writes_the_report() {
    let server = StreamServer::start(Script::streaming(1, Duration::ZERO));
    let dir = scratch();
    let report = dir.path().join("probe.json");
    let run = Loader::new()
        .args(["probe", &server.url, "--users", "2", "--requests", "20"])
        .arg("--report")
        .arg_path(&report)
        .run_with_stdout_closed();
    let report = ended_well(&run, &report);
    let round = &report["rounds"][0];
    assert_eq!(round["answered"], 20, "{report}");
}

/// A value no clock can add: `u64::MAX` seconds.
const HUGE: &str = "18446744073709551615s";

/// Asserts `args` with `flag` set to [`HUGE`] is refused as a usage error naming the flag.
fn refused_as_too_large(args: &[&str], flag: &str) {
    let run = Loader::new()
        .args(args)
        .args([flag, HUGE])
        .run_within(Duration::from_secs(20));
    let stderr = run.stderr();
    assert_eq!(run.code(), 2, "{args:?} {flag}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(flag) && stderr.contains("at most"),
        "{stderr}"
    );
}

#[test]
fn every_duration_flag_refuses_a_value_too_large_for_the_clock() {
    let load = ["--target", "null", "--rows", "10"];
    for flag in [
        "--timeout",
        "--connect-timeout",
        "--retry-for",
        "--progress-every",
    ] {
        refused_as_too_large(&load, flag);
    }
    refused_as_too_large(
        &[
            "--target",
            "null",
            "--rows",
            "10",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        "--metrics-linger",
    );
    refused_as_too_large(&["--target", "null"], "--duration");
    refused_as_too_large(
        &["--target", "http://127.0.0.1:1/rows", "--rows", "10"],
        "--timeout",
    );
    refused_as_too_large(
        &["ingest", "--target", "null", "--text", "/text", "-"],
        "--fetch-timeout",
    );
    let probe = ["probe", "http://127.0.0.1:1/"];
    for flag in [
        "--duration",
        "--timeout",
        "--connect-timeout",
        "--progress-every",
    ] {
        refused_as_too_large(&probe, flag);
    }
}

/// How the broken stand-in answers a `_bulk` request of `n` documents.
#[derive(Clone, Copy)]
enum Miscount {
    OneShort,
    ThreeMore,
}

/// An Elasticsearch stand-in that stores and acknowledges the first two `_bulk` requests and
/// then answers every one with `"errors": false` and a wrong number of items, storing nothing of
/// it; `stored` counts the documents it stored.
fn miscounting_elastic(miscount: Miscount, stored: Arc<Mutex<usize>>) -> ProtocolServer {
    let mut requests = 0;
    ProtocolServer::start(move |seen: &Seen| {
        if seen.method == "PUT" {
            return (200, json!({"acknowledged": true}).to_string());
        }
        requests += 1;
        let documents = String::from_utf8_lossy(&seen.body).lines().count() / 2;
        let items = if requests <= 2 {
            *stored.lock().unwrap() += documents;
            documents
        } else {
            match miscount {
                Miscount::OneShort => documents - 1,
                Miscount::ThreeMore => documents + 3,
            }
        };
        let items = vec![json!({"index": {"status": 201}}); items];
        (200, json!({"errors": false, "items": items}).to_string())
    })
}

#[test]
fn a_bulk_answer_with_a_wrong_item_count_stops_the_load_whatever_errors_says() {
    for (miscount, answered) in [(Miscount::OneShort, 499), (Miscount::ThreeMore, 503)] {
        let stored = Arc::new(Mutex::new(0));
        let server = miscounting_elastic(miscount, Arc::clone(&stored));
        let target = format!("es+http://127.0.0.1:{}", server.port);
        let dir = scratch();
        let report = dir.path().join("r.json");
        let run = Loader::new()
            .args(["--target", &target, "--rows", "2000", "--batch", "500"])
            .args(["--threads", "1", "--quiet", "--report"])
            .arg_path(&report)
            .run();
        let stderr = run.stderr();
        assert_eq!(run.code(), 3, "{stderr}");
        let expected = format!("answered {answered} item results for 500 rows");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(&expected)).collect();
        assert_eq!(errors.len(), 1, "one line with the counts: {stderr}");
        assert!(errors[0].contains(&format!("127.0.0.1:{}", server.port)));
        let report = read_report(&report);
        assert_eq!(report["rows_loaded"], *stored.lock().unwrap(), "{report}");
        assert_eq!(report["rows_loaded"], 1000, "{report}");
    }
}

#[test]
fn the_peak_rss_is_loaders_own_not_its_parents() {
    // A parent holding 300 MB: getrusage's ru_maxrss keeps the peak of the image before exec, so
    // loader reported 300 MB of its parent's as its own.
    let held = vec![1u8; 300 << 20];
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    Loader::new()
        .args([
            "--target", "null", "--rows", "100000", "--quiet", "--report",
        ])
        .arg_path(&report_path)
        .run()
        .assert_success();
    let peak = read_report(&report_path)["process"]["peak_rss_mb"]
        .as_f64()
        .unwrap();
    assert!(peak < 100.0, "peak RSS {peak} MB");
    assert_eq!(held.iter().map(|&b| u64::from(b)).sum::<u64>(), 300 << 20);
}
