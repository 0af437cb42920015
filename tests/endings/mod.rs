//! Loads that end early, each checked for an exact ending: the exit code, one clear line, no
//! panic, a bounded time, and the report's `rows_loaded` equal to the count on the target. Signals
//! at every phase: before the first input arrives, while connecting to a host that never answers,
//! while a batch waits for a lock, during a final commit that waits for a standby, while the report
//! is written; a PostgreSQL host that accepts and never answers; a load stopped at
//! `--max-rejects`.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{figure, read_report, scratch, wait_until, wait_with_limit, Loader, Pg};

/// Asserts a stop by a signal: exit 130, the summary, no panic, the report's count on the target.
fn assert_interrupted_exactly(
    output: &std::process::Output,
    pg: &Pg,
    report: &std::path::Path,
    what: &str,
) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{what}: {stderr}");
    assert!(
        stdout.contains("interrupted"),
        "{what}: summary missing: {stdout}"
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        ["loader: interrupted, finishing the batches or requests in hand (Ctrl-C again abandons retries)"],
        "{what}: one line, one signal"
    );
    let report = read_report(report);
    assert_eq!(report["outcome"], "interrupted", "{what}: {report}");
    assert_eq!(
        report["rows_loaded"].as_i64().unwrap(),
        pg.scalar("SELECT count(*) FROM items"),
        "{what}"
    );
}

#[test]
fn a_signal_before_the_first_input_arrives_ends_the_load_with_a_summary_and_a_report() {
    let pg = Pg::start();
    pg.execute("CREATE TABLE items (id bigint, name text)");
    let dir = scratch();
    let fifo = dir.path().join("silent.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    // Standard input a pipe nobody writes to, with and without a header to wait for; a FIFO that
    // no writer ever opens (open(2) itself blocks).
    let inputs: [(&str, &[&str]); 3] = [
        ("-", &[]),
        ("-", &["--header"]),
        (fifo.to_str().unwrap(), &[]),
    ];
    for (i, (input, flags)) in inputs.into_iter().enumerate() {
        for signal in [Signal::SIGTERM, Signal::SIGINT] {
            let what = format!("{signal} while waiting for {input} {flags:?}");
            let report_path = dir.path().join(format!("r{i}-{signal}.json"));
            let child = Loader::new()
                .args(["copy", input, "--table", "items", "--threads", "2"])
                .args(flags)
                .args(["--target", &pg.url(), "--report"])
                .arg_path(&report_path)
                .spawn_with_silent_stdin();
            std::thread::sleep(Duration::from_secs(1));
            let signalled = Instant::now();
            kill(Pid::from_raw(child.id() as i32), signal).unwrap();
            let output = wait_with_limit(child, Duration::from_secs(15));
            assert!(
                signalled.elapsed() < Duration::from_secs(5),
                "{what}: {:?}",
                signalled.elapsed()
            );
            assert_interrupted_exactly(&output, &pg, &report_path, &what);
            assert_eq!(read_report(&report_path)["rows_loaded"], 0, "{what}");
        }
    }
}

/// A loopback port that accepts TCP connections and never says a word; they are held open until
/// the test ends.
fn silent_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_host_that_accepts_and_never_answers_times_out_and_is_left_out() {
    let silent = silent_port();
    let dir = scratch();
    let report_path = dir.path().join("silent.json");
    let run = Loader::new()
        .args(["--rows", "100", "--connect-timeout", "2s"])
        .args(["--max-retries", "2", "--retry-for", "30s"])
        .arg("--target")
        .arg(&format!("postgres://postgres@127.0.0.1:{silent}/x"))
        .arg("--report")
        .arg_path(&report_path)
        .run_within(Duration::from_secs(30));
    let stderr = run.stderr();
    assert_eq!(run.code(), 3, "{stderr}");
    // Three attempts of 2 s and two pauses of at most 0.2 s.
    assert!(run.elapsed < Duration::from_secs(15), "{:?}", run.elapsed);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("loader: error"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&format!(
            "127.0.0.1:{silent} accepted the connection but did not answer the startup within 2s"
        )),
        "{stderr}"
    );
    assert_eq!(read_report(&report_path)["rows_loaded"], 0);

    // Beside a healthy host, the silent one is left out and every row loads through the other.
    let pg = Pg::start();
    let report_path = dir.path().join("two.json");
    let target = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{silent}/postgres",
        pg.cluster.port()
    );
    let run = Loader::new()
        .args(["--rows", "20000", "--threads", "2", "--batch", "1000"])
        .args(["--connect-timeout", "2s", "--max-retries", "5"])
        .args([
            "--retry-for",
            "30s",
            "--create",
            "--quiet",
            "--target",
            &target,
        ])
        .arg("--report")
        .arg_path(&report_path)
        .run_within(Duration::from_secs(60));
    run.assert_success();
    assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], 20_000, "{report}");
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 20_000);
}

#[test]
fn a_load_stopped_at_max_rejects_counts_every_reject_once_everywhere() {
    let pg = Pg::start();
    pg.execute("CREATE TABLE items (id bigint, name text)");
    let dir = scratch();
    // Half the records are bad, of two kinds: a missing field (the parser's) and a bad integer
    // (the server's, found by isolating the batch's rows).
    let mut csv = String::new();
    for i in 0..20_000u64 {
        match i % 4 {
            1 => csv.push_str(&format!("{i}\n")),
            3 => csv.push_str(&format!("x{i},bad\n")),
            _ => csv.push_str(&format!("{i},name {i}\n")),
        }
    }
    let input = dir.path().join("items.csv");
    std::fs::write(&input, csv).unwrap();
    for max in ["1000", "0"] {
        pg.execute("TRUNCATE items");
        let rejects_path = dir.path().join(format!("rejects-{max}.ndjson"));
        let report_path = dir.path().join(format!("r-{max}.json"));
        let run = Loader::new()
            .arg("copy")
            .arg_path(&input)
            .args(["--table", "items", "--threads", "2", "--batch", "500"])
            .args(["--max-rejects", max, "--target", &pg.url()])
            .arg("--reject-file")
            .arg_path(&rejects_path)
            .arg("--report")
            .arg_path(&report_path)
            .run_within(Duration::from_secs(60));
        let (stdout, stderr) = (run.stdout(), run.stderr());
        assert_eq!(run.code(), 3, "--max-rejects {max}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        // Progress lines ("errors 0") may be there too on a slow machine.
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("loader: error"))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains("--max-rejects"), "{stderr}");
        let report = read_report(&report_path);
        let rejected = report["rows_rejected"].as_u64().unwrap();
        let by_kind: u64 = report["rejects"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        let lines = std::fs::read_to_string(&rejects_path)
            .unwrap()
            .lines()
            .count() as u64;
        assert_eq!(
            (rejected, by_kind),
            (lines, lines),
            "--max-rejects {max}: {report}"
        );
        assert!(rejected > max.parse().unwrap(), "{report}");
        let figure = figure(rejected);
        assert!(
            stdout.contains(&format!("{figure} rows rejected")),
            "--max-rejects {max}: {stdout}"
        );
        assert_eq!(
            report["rows_loaded"].as_i64().unwrap(),
            pg.scalar("SELECT count(*) FROM items"),
            "--max-rejects {max}"
        );
    }
}

/// Sends a first signal, checks the load still waits for its batch in hand, then a second; returns
/// the output and checks the second ended it within 10 s.
fn interrupt_twice(child: std::process::Child, what: &str) -> std::process::Output {
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "{what}: the first signal waits for the batch in hand"
    );
    let second = Instant::now();
    kill(pid, Signal::SIGINT).unwrap();
    let output = wait_with_limit(child, Duration::from_secs(20));
    assert!(second.elapsed() < Duration::from_secs(10), "{what}");
    assert_eq!(
        output.status.code(),
        Some(130),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_second_signal_frees_a_batch_waiting_for_a_lock() {
    let pg = Pg::start();
    pg.execute("CREATE TABLE items (id bigint, name text)");
    let dir = scratch();
    let input = dir.path().join("items.csv");
    std::fs::write(
        &input,
        (0..10_000)
            .map(|i| format!("{i},n{i}\n"))
            .collect::<String>(),
    )
    .unwrap();
    // Another session holds a lock that every COPY into the table waits behind, for good.
    let mut locker = pg.client();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE items IN SHARE MODE")
        .unwrap();
    let report_path = dir.path().join("r.json");
    let child = Loader::new()
        .arg("copy")
        .arg_path(&input)
        .args(["--table", "items", "--threads", "2", "--batch", "1000"])
        .args(["--target", &pg.url(), "--report"])
        .arg_path(&report_path)
        .spawn();
    wait_until(
        Duration::from_secs(20),
        "both COPYs to wait for the lock",
        || pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") == 2,
    );
    let output = interrupt_twice(child, "waiting for a lock");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("abandoned batch").count(), 2, "{stderr}");
    lock.rollback().unwrap();
    let report = read_report(&report_path);
    assert_eq!(report["outcome"], "interrupted", "{report}");
    assert_eq!(report["rows_loaded"], 0, "{report}");
    assert_eq!(pg.scalar("SELECT count(*) FROM items"), 0);
    assert_eq!(
        pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"),
        0,
        "the canceled COPYs are gone"
    );
}

#[test]
fn a_second_signal_ends_a_final_commit_waiting_for_a_standby() {
    let pg = Pg::start();
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    // Every batch is held for one commit at the end, 3 s in (--rate).
    let child = Loader::new()
        .args(["--rows", "3000", "--batch", "500", "--commit-every", "100"])
        .args(["--rate", "1000", "--threads", "1", "--create"])
        .args(["--target", &pg.url(), "--report"])
        .arg_path(&report_path)
        .spawn();
    wait_until(Duration::from_secs(20), "the load to start", || {
        pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%'") == 1
    });
    // From now on a COMMIT waits for a synchronous standby that does not exist.
    pg.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
    pg.execute("SELECT pg_reload_conf()");
    wait_until(Duration::from_secs(20), "the final commit to wait", || {
        pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") == 1
    });
    let output = interrupt_twice(child, "waiting for a standby");
    pg.execute("ALTER SYSTEM RESET synchronous_standby_names");
    pg.execute("SELECT pg_reload_conf()");
    // The canceled wait leaves the transaction committed locally, and counted.
    let report = read_report(&report_path);
    assert_eq!(report["outcome"], "interrupted", "{report}");
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 3000);
    assert_eq!(report["rows_loaded"], 3000, "{report}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("interrupted"), "{stdout}");
}

#[test]
fn a_signal_while_connecting_to_a_silent_host_ends_within_the_connect_timeout() {
    let silent = silent_port();
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let child = Loader::new()
        .args([
            "--rows",
            "100",
            "--connect-timeout",
            "3s",
            "--max-retries",
            "10",
        ])
        .arg("--target")
        .arg(&format!("postgres://postgres@127.0.0.1:{silent}/x"))
        .arg("--report")
        .arg_path(&report_path)
        .spawn();
    std::thread::sleep(Duration::from_secs(1));
    let signalled = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let output = wait_with_limit(child, Duration::from_secs(15));
    assert!(
        signalled.elapsed() < Duration::from_secs(4),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(output.status.code(), Some(130));
    let report = read_report(&report_path);
    assert_eq!(report["outcome"], "interrupted", "{report}");
    assert_eq!(report["rows_loaded"], 0, "{report}");
}

#[test]
fn a_signal_while_the_report_is_written_changes_nothing() {
    let pg = Pg::start();
    let dir = scratch();
    // A FIFO holds the report's writer until the test reads it.
    let report_path = dir.path().join("report.json");
    let made = Command::new("mkfifo").arg(&report_path).status().unwrap();
    assert!(made.success(), "mkfifo");
    let child = Loader::new()
        .args([
            "--rows",
            "5000",
            "--create",
            "--quiet",
            "--target",
            &pg.url(),
            "--report",
        ])
        .arg_path(&report_path)
        .spawn();
    wait_until(Duration::from_secs(20), "the rows to be committed", || {
        crate::support::count_or_zero(&pg, "readings") == 5000
    });
    std::thread::sleep(Duration::from_millis(500));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).expect("a whole report");
    let output = wait_with_limit(child, Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(0), "the load had ended");
    assert_eq!(report["outcome"], "completed", "{report}");
    assert_eq!(report["rows_loaded"], 5000, "{report}");
}
