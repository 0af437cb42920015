//! Loads that end early, each checked for an exact ending: the exit code, one clear line, no
//! panic, a bounded time, and the report's `rows_loaded` equal to the count on the target. A
//! signal before the first input arrives.

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{read_report, scratch, wait_with_limit, Loader, Pg};

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
