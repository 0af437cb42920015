//! End-to-end tests of the `loader` binary against real PostgreSQL clusters that each test starts
//! itself. Every load is checked by counting on the target, and against the report.

mod attribution;
mod copy;
mod discover;
mod endings;
mod exact;
mod faults;
mod generate;
mod hostile;
mod hosts;
mod http;
mod ingest;
mod layers;
mod metrics;
mod mistakes;
mod parquet;
mod probe;
mod remote;
mod security;
mod sniff;
mod support;
mod tls;
mod tune;
mod untrusted;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use support::{
    assert_every_id_once, assert_loaded_through_outage, count_or_zero, outage_after, read_report,
    scratch, wait_until, wait_with_limit, Loader, Pg,
};

/// A PostgreSQL URL on a loopback port where nothing listens.
fn refused_target() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

#[test]
fn loads_a_million_rows_with_every_id_exactly_once() {
    let pg = Pg::start();
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    Loader::new()
        .args([
            "--threads",
            "4",
            "--batch",
            "1000",
            "--rows",
            "1000000",
            "--create",
            "--quiet",
        ])
        .args(["--target", &pg.url(), "--report"])
        .arg_path(&report_path)
        .run()
        .assert_success();

    assert_every_id_once(&pg, 1_000_000);
    assert_eq!(pg.scalar("SELECT min(id) FROM readings"), 0);
    assert_eq!(pg.scalar("SELECT max(id) FROM readings"), 999_999);

    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], 1_000_000);
    assert_eq!(report["batches"], 1_000);
    assert_eq!(report["outcome"], "completed");
    let workers = report["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 4);
    let worker_rows: u64 = workers.iter().map(|w| w["rows"].as_u64().unwrap()).sum();
    assert_eq!(worker_rows, 1_000_000);
    assert!(report["batch_latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    assert!(report["process"]["user_cpu_s"].as_f64().unwrap() > 0.0);
    assert!(report["process"]["peak_rss_mb"].as_f64().unwrap() > 0.0);
    assert!(report["process"]["threads"].as_u64().unwrap() >= 5);

    // One ledger row per committed batch, written in the batch's transaction.
    let run_id = report["config"]["run_id"].as_str().unwrap();
    let ledger =
        format!("SELECT count(*), sum(rows)::bigint FROM loader_ledger WHERE run_id = '{run_id}'");
    let row = pg.client().query_one(&ledger, &[]).unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (1_000, 1_000_000)
    );
}

#[test]
fn three_shards_load_the_disjoint_thirds_of_one_id_space() {
    let pg = Pg::start();
    let dir = scratch();
    // The third takes its shard as a Kubernetes Indexed Job passes it.
    let shard_args = [
        vec!["--shard", "0/3"],
        vec!["--shard", "1/3"],
        vec!["--shard-from-env", "JOB_COMPLETION_INDEX", "--shards", "3"],
    ];
    let children: Vec<_> = shard_args
        .iter()
        .enumerate()
        .map(|(i, shard)| {
            Loader::new()
                .env("JOB_COMPLETION_INDEX", "2")
                .args(["--threads", "2", "--rows", "1000000", "--create", "--quiet"])
                .args(shard)
                .args(["--target", &pg.url(), "--report"])
                .arg_path(&dir.path().join(format!("r{i}.json")))
                .spawn()
        })
        .collect();
    for child in children {
        support::wait_for_success(child, Duration::from_secs(120));
    }
    assert_every_id_once(&pg, 1_000_000);
    assert_eq!(pg.scalar("SELECT max(id) FROM readings"), 999_999);
    let reported: u64 = (0..3)
        .map(|i| {
            read_report(&dir.path().join(format!("r{i}.json")))["rows_loaded"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(reported, 1_000_000);
    for (k, expected) in [(0, 333_334), (1, 333_333), (2, 333_333)] {
        let sql = format!("SELECT count(*) FROM readings WHERE id % 3 = {k}");
        assert_eq!(pg.scalar(&sql), expected, "shard {k}");
        let report = read_report(&dir.path().join(format!("r{k}.json")));
        assert_eq!(report["rows_loaded"], expected, "shard {k}'s report");
    }
}

#[test]
fn the_three_methods_load_identical_data_for_one_seed() {
    let pg = Pg::start();
    let fingerprint = "SELECT count(*)::text || ' ' || sum(id)::text || ' ' || \
         count(DISTINCT location)::text || ' ' || round(sum(temperature)::numeric, 3)::text || ' ' || \
         md5(string_agg(t::text, '|' ORDER BY id)) FROM ";
    let mut fingerprints = BTreeSet::new();
    for method in ["copy-binary", "copy-text", "insert"] {
        let table = format!("readings_{}", method.replace('-', "_"));
        Loader::new()
            .args([
                "--threads",
                "2",
                "--batch",
                "5000",
                "--rows",
                "100000",
                "--seed",
                "7",
            ])
            .args([
                "--create",
                "--quiet",
                "--method",
                method,
                "--table",
                &table,
                "--target",
                &pg.url(),
            ])
            .run()
            .assert_success();
        let print = pg.text(&format!("{fingerprint} {table} t"));
        assert!(
            print.starts_with("100000 4999950000 8 "),
            "{method}: {print}"
        );
        fingerprints.insert(print);
    }
    assert_eq!(fingerprints.len(), 1, "methods disagree: {fingerprints:?}");
}

#[test]
fn sigint_stops_an_endless_run_with_a_summary_and_an_exact_count() {
    let pg = Pg::start();
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let child = Loader::new()
        .args([
            "--threads",
            "2",
            "--create",
            "--target",
            &pg.url(),
            "--report",
        ])
        .arg_path(&report_path)
        .spawn();
    wait_until(Duration::from_secs(30), "rows to arrive", || {
        count_or_zero(&pg, "readings") > 0
    });
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let output = wait_with_limit(child, Duration::from_secs(5));
    assert!(signalled.elapsed() < Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("interrupted"), "summary missing: {stdout}");
    let report = read_report(&report_path);
    let loaded = report["rows_loaded"].as_i64().unwrap();
    assert!(loaded > 0);
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), loaded);
    assert_eq!(report["outcome"], "interrupted");
}

#[test]
fn postgres_killed_and_restarted_mid_load_loses_and_duplicates_nothing() {
    let pg = Pg::start();
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let child = Loader::new()
        .args([
            "--threads",
            "2",
            "--batch",
            "1000",
            "--rows",
            "2000000",
            "--create",
            "--quiet",
        ])
        .args([
            "--retry-for",
            "60s",
            "--max-retries",
            "30",
            "--target",
            &pg.url(),
            "--report",
        ])
        .arg_path(&report_path)
        .spawn();
    outage_after(&pg, "readings", 200_000);
    let output = wait_with_limit(child, Duration::from_secs(120));
    assert_loaded_through_outage(&pg, &output, &report_path, 2_000_000);
}

/// `ALTER COLUMN … TYPE` while binary COPY loads: the rows sent after it no longer fit the
/// column (int→bigint: the server calls it a protocol violation, 08P01; bigint→int: invalid binary
/// data, 22P03, for every row). The load stops at once with one line saying the table changed,
/// and the report still equals the count.
#[test]
fn a_column_type_changed_under_a_binary_copy_load_stops_it_with_one_line() {
    for (column, new_type) in [("sensor_id", "bigint"), ("id", "integer")] {
        let pg = Pg::start();
        let dir = scratch();
        let report_path = dir.path().join("r.json");
        let child = Loader::new()
            .args(["--threads", "2", "--batch", "1000", "--rows", "3000000"])
            .args(["--create", "--quiet", "--target", &pg.url(), "--report"])
            .arg_path(&report_path)
            .arg("--reject-file")
            .arg_path(&dir.path().join("rejects.ndjson"))
            .spawn();
        wait_until(Duration::from_secs(60), "some rows", || {
            count_or_zero(&pg, "readings") > 100_000
        });
        pg.execute(&format!(
            "ALTER TABLE readings ALTER COLUMN {column} TYPE {new_type}"
        ));
        let started = Instant::now();
        let output = wait_with_limit(child, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{column}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{column}: stopped at once"
        );
        assert!(
            stderr.contains("changed under the load") && stderr.contains(column),
            "{column}: {stderr}"
        );
        let report = read_report(&report_path);
        assert_eq!(
            report["rows_rejected"], 0,
            "{column}: no good row rejected: {report}"
        );
        assert_eq!(
            report["rows_loaded"],
            pg.scalar("SELECT count(*) FROM readings"),
            "{column}: {report}"
        );
    }
}

#[test]
fn bad_flags_get_one_clear_line_and_exit_code_2() {
    for args in [
        &["--threads", "0"][..],
        &["--batch", "0"],
        &["--rows", "0"],
        &["--shard", "2/2"],
        &["--target", "postgres://u@h:notaport/db"],
        &["--target", "nonsense"],
        &["--keep", "--target", "null"],
    ] {
        let run = Loader::new().args(args).run_within(Duration::from_secs(10));
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
        let stderr = run.stderr();
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?} must give one line: {stderr}"
        );
        assert!(stderr.starts_with("loader: error: "), "{args:?}: {stderr}");
        assert!(run.stdout().is_empty(), "{args:?}: {}", run.stdout());
    }
    for args in [
        &["--method", "bulk"][..],
        &["--rows", "many"],
        &["--duration", "soon"],
    ] {
        let run = Loader::new().args(args).run_within(Duration::from_secs(10));
        assert_eq!(run.code(), 2, "{args:?}");
        assert_eq!(
            run.stderr().lines().count(),
            1,
            "{args:?}: {}",
            run.stderr()
        );
        assert!(
            run.stderr().starts_with("loader: error: invalid value"),
            "{args:?}: {}",
            run.stderr()
        );
        assert!(!run.stderr().contains("panicked"));
    }
}

#[test]
fn a_connection_refused_while_waiting_for_the_target_fails_after_the_retry_budget() {
    let target = refused_target();
    let run = Loader::new()
        .args([
            "--rows",
            "10",
            "--wait-for-target",
            "3s",
            "--target",
            &target,
        ])
        .run_within(Duration::from_secs(30));
    assert_eq!(run.code(), 3, "{}", run.stderr());
    let stderr = run.stderr();
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains("gave up after"), "{stderr}");
    assert!(run.elapsed < Duration::from_secs(20));
    assert!(
        run.stdout().contains("failed"),
        "the summary is printed: {}",
        run.stdout()
    );
}

#[test]
fn a_missing_table_without_create_names_the_fix() {
    let pg = Pg::start();
    let run = Loader::new()
        .args(["--rows", "10", "--target", &pg.url()])
        .run();
    assert_eq!(run.code(), 3);
    let stderr = run.stderr();
    assert!(
        stderr.contains("table readings does not exist") && stderr.contains("--create"),
        "{stderr}"
    );
    assert_eq!(
        pg.scalar("SELECT count(*) FROM pg_class WHERE relname = 'readings'"),
        0
    );
}

#[test]
fn a_wrong_password_fails_clearly_and_no_password_is_ever_shown() {
    let pg = Pg::start();
    pg.execute("CREATE ROLE app LOGIN PASSWORD 'right-horse-battery'; GRANT CREATE ON SCHEMA public TO app");
    std::fs::write(
        pg.cluster.data_dir().join("pg_hba.conf"),
        "host all app 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\nlocal all all trust\n",
    )
    .unwrap();
    pg.execute("SELECT pg_reload_conf()");
    let port = pg.cluster.port();
    let dir = scratch();

    for (password, expected_code) in [("wrong-staple", 3), ("right-horse-battery", 0)] {
        let report_path = dir.path().join(format!("{password}.json"));
        let url = format!("postgres://app:{password}@127.0.0.1:{port}/postgres");
        let run = Loader::new()
            .args(["--rows", "1000", "--create", "--target", &url, "--report"])
            .arg_path(&report_path)
            .run();
        assert_eq!(run.code(), expected_code, "{}", run.stderr());
        let report = std::fs::read_to_string(&report_path).unwrap();
        for text in [run.stdout(), run.stderr(), report] {
            assert!(!text.contains(password), "password shown: {text}");
        }
        if expected_code == 3 {
            assert!(
                run.stderr().contains("authentication as `app` failed"),
                "{}",
                run.stderr()
            );
        }
    }
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 1000);
}

#[test]
fn null_and_stdout_targets_carry_every_row() {
    let dir = scratch();
    let report_path = dir.path().join("null.json");
    Loader::new()
        .args([
            "--target",
            "null",
            "--rows",
            "250k",
            "--threads",
            "2",
            "--report",
        ])
        .arg_path(&report_path)
        .run()
        .assert_success();
    assert_eq!(read_report(&report_path)["rows_loaded"], 250_000);

    let run = Loader::new()
        .args([
            "--target",
            "-",
            "--rows",
            "1000",
            "--threads",
            "2",
            "--batch",
            "100",
        ])
        .run();
    run.assert_success();
    let stdout = run.stdout();
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("id,ts,sensor_id,location,temperature,humidity,status")
    );
    let ids: BTreeSet<u64> = lines
        .map(|line| line.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (0..1000).collect());
    assert!(
        run.stderr().contains("1,000 rows"),
        "the summary goes to stderr: {}",
        run.stderr()
    );

    let run = Loader::new()
        .args([
            "--target",
            "-",
            "--output-format",
            "ndjson",
            "--rows",
            "10",
            "--quiet",
        ])
        .run();
    run.assert_success();
    let ids: BTreeSet<u64> = run
        .stdout()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, (0..10).collect());
}

#[test]
fn a_file_target_holds_the_same_rows_as_postgres() {
    let pg = Pg::start();
    let dir = scratch();
    let csv = dir.path().join("rows.csv");
    Loader::new()
        .args(["--rows", "20000", "--seed", "3", "--quiet", "--target"])
        .arg_path_prefixed("file:", &csv)
        .run()
        .assert_success();
    Loader::new()
        .args([
            "--rows",
            "20000",
            "--seed",
            "3",
            "--quiet",
            "--create",
            "--target",
            &pg.url(),
        ])
        .run()
        .assert_success();
    pg.execute("CREATE TABLE from_csv (LIKE readings)");
    let mut client = pg.client();
    let mut writer = client
        .copy_in("COPY from_csv FROM STDIN (FORMAT csv, HEADER true)")
        .unwrap();
    std::io::Write::write_all(&mut writer, &std::fs::read(&csv).unwrap()).unwrap();
    assert_eq!(writer.finish().unwrap(), 20_000);
    let differing = "SELECT count(*) FROM (SELECT * FROM readings EXCEPT SELECT * FROM from_csv) d";
    assert_eq!(pg.scalar(differing), 0);
}

#[test]
fn duration_ends_an_unbounded_load() {
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args([
            "--target",
            "null",
            "--duration",
            "1s",
            "--threads",
            "2",
            "--report",
        ])
        .arg_path(&report_path)
        .run_within(Duration::from_secs(20));
    run.assert_success();
    let report = read_report(&report_path);
    assert!(report["rows_loaded"].as_u64().unwrap() > 0);
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    assert!((1.0..10.0).contains(&elapsed), "{elapsed}");
}

#[test]
fn rate_holds_the_rows_per_second_over_all_workers() {
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args(["--target", "null", "--rate", "20000", "--duration", "3s"])
        .args(["--threads", "2", "--batch", "500", "--report"])
        .arg_path(&report_path)
        .run_within(Duration::from_secs(20));
    run.assert_success();
    let report = read_report(&report_path);
    let rows = report["rows_loaded"].as_f64().unwrap();
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    // Batch slots start 25 ms apart from the first at once: never more than the rate allows, and
    // on an idle null target not much less.
    assert!(
        rows <= 20_000.0 * elapsed + 500.0,
        "{rows} rows in {elapsed} s"
    );
    assert!(rows >= 0.7 * 20_000.0 * 3.0, "{rows} rows in {elapsed} s");
    assert_eq!(report["config"]["rate"], 20_000.0);

    // A slot that starts after --duration is not waited for: one batch in 2 s, not 10 s later.
    let run = Loader::new()
        .args(["--target", "null", "--rate", "100", "--duration", "2s"])
        .args(["--threads", "2", "--batch", "1000", "--report"])
        .arg_path(&report_path)
        .run_within(Duration::from_secs(20));
    run.assert_success();
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], 1000, "{report}");
    assert!(report["elapsed_s"].as_f64().unwrap() < 5.0, "{report}");
}

#[test]
fn reports_are_written_as_csv_and_markdown_by_extension() {
    let dir = scratch();
    let csv = dir.path().join("r.csv");
    let markdown = dir.path().join("r.md");
    for path in [&csv, &markdown] {
        Loader::new()
            .args(["--target", "null", "--rows", "5000", "--quiet", "--report"])
            .arg_path(path)
            .run()
            .assert_success();
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let column = lines[0]
        .split(',')
        .position(|name| name == "rows_loaded")
        .unwrap();
    assert_eq!(lines[1].split(',').nth(column), Some("5000"));
    let text = std::fs::read_to_string(&markdown).unwrap();
    assert!(text.contains("| rows_loaded | 5000 |"), "{text}");
}

#[test]
fn an_svg_report_draws_the_load_and_the_json_keeps_its_throughput() {
    let dir = scratch();
    let svg = dir.path().join("r.svg");
    Loader::new()
        .args(["--target", "null", "--rows", "2000000", "--report"])
        .arg_path(&svg)
        .run()
        .assert_success();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(200)]);
    assert!(text.trim_end().ends_with("</svg>"));
    for expected in ["2,000,000 rows", "into null", "<polyline", "rows/s", "p99 "] {
        assert!(text.contains(expected), "{expected} missing");
    }

    // Quiet and not on a terminal, the reporter still samples at every tick.
    let json = dir.path().join("r.json");
    Loader::new()
        .args(["--target", "null", "--duration", "400ms", "--quiet"])
        .args(["--progress-every", "50ms", "--report"])
        .arg_path(&json)
        .run_within(Duration::from_secs(20))
        .assert_success();
    let report = read_report(&json);
    let rows_loaded = report["rows_loaded"].as_u64().unwrap();
    let points = report["throughput"].as_array().unwrap();
    assert!(points.len() >= 3, "{points:?}");
    let mut previous = (0.0, 0);
    for point in points {
        let (seconds, rows) = (point[0].as_f64().unwrap(), point[1].as_u64().unwrap());
        assert!(seconds > previous.0 && rows >= previous.1, "{points:?}");
        let rate = (rows - previous.1) as f64 / (seconds - previous.0);
        assert!(
            (point[2].as_f64().unwrap() - rate).abs() <= 0.1 * rate + 1.0,
            "{point}"
        );
        previous = (seconds, rows);
    }
    assert_eq!(previous.1, rows_loaded);
    assert!((previous.0 - report["elapsed_s"].as_f64().unwrap()).abs() < 0.01);
    let histogram = report["batch_latency_histogram"].as_array().unwrap();
    let batches: u64 = histogram
        .iter()
        .map(|b| b["batches"].as_u64().unwrap())
        .sum();
    assert_eq!(batches, report["batches"].as_u64().unwrap());

    // A report that cannot be written is one line and exit code 2 before the load, as for the
    // other formats.
    let run = Loader::new()
        .args(["--target", "null", "--rows", "1000", "--quiet", "--report"])
        .arg_path(&dir.path().join("missing").join("r.svg"))
        .run();
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("cannot be written"),
        "{}",
        run.stderr()
    );
}

#[test]
fn the_default_local_target_loads_and_keep_leaves_it_running() {
    let run = Loader::new()
        .args(["--rows", "10000", "--threads", "2"])
        .run();
    run.assert_success();
    assert!(run.stdout().contains("10,000 rows"), "{}", run.stdout());
    assert!(
        run.stderr().contains("started a throwaway PostgreSQL"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("stopped the throwaway PostgreSQL"),
        "{}",
        run.stderr()
    );

    let run = Loader::new()
        .args(["--rows", "1000", "--keep", "--quiet"])
        .run();
    run.assert_success();
    let stderr = run.stderr();
    let url = stderr
        .split_whitespace()
        .find(|word| word.starts_with("postgres://"))
        .unwrap_or_else(|| panic!("no URL printed: {stderr}"));
    let stop = stderr
        .split("stop it with: ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let count: i64 = client
        .query_one("SELECT count(*) FROM readings", &[])
        .unwrap()
        .get(0);
    drop(client);
    let stopped = std::process::Command::new("sh")
        .args(["-c", &stop])
        .output()
        .unwrap();
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    assert_eq!(count, 1000);
}

#[test]
fn a_lost_commit_acknowledgement_is_counted_once_and_inserted_once() {
    let pg = Pg::start();
    // Commits are numbered over the runs: 50 batches each, each committed exactly once; the
    // last run's, on one worker, in transactions of 7 batches: 7 of them, then the flush of the
    // fiftieth batch at the end (commit 108).
    let proxy = support::proxy::Proxy::cutting_commits(
        pg.cluster.port(),
        vec![3, 10, 25, 60, 75, 90, 103, 108],
    );
    let target = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        proxy.port
    );
    let dir = scratch();
    let runs = [
        ("copy-binary", "1", "2"),
        ("insert", "1", "2"),
        ("copy-binary", "7", "1"),
    ];
    for (i, (method, commit_every, threads)) in runs.into_iter().enumerate() {
        let table = format!("readings_{i}");
        let report_path = dir.path().join(format!("{table}.json"));
        Loader::new()
            .args(["--threads", threads, "--batch", "1000", "--rows", "50000"])
            .args(["--create", "--quiet"])
            .args(["--method", method, "--commit-every", commit_every])
            .args(["--table", &table, "--target", &target, "--report"])
            .arg_path(&report_path)
            .run()
            .assert_success();
        let method = format!("{method}, --commit-every {commit_every}");
        let report = read_report(&report_path);
        assert_eq!(report["rows_loaded"], 50_000, "{method}: {report}");
        assert_eq!(
            pg.scalar(&format!("SELECT count(*) FROM {table}")),
            50_000,
            "{method}"
        );
        assert_eq!(
            pg.scalar(&format!("SELECT count(DISTINCT id) FROM {table}")),
            50_000
        );
        let retries: u64 = report["retries"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert!(
            retries >= 2,
            "{method}: every cut shows as a retry: {}",
            report["retries"]
        );
        assert_eq!(
            pg.scalar(&format!(
                "SELECT count(*) FROM loader_ledger WHERE target_table = '{table}'"
            )),
            50,
            "{method}: one ledger row per batch"
        );
        // Rows committed together share their transaction id.
        let transactions = if commit_every == "7" { 8 } else { 50 };
        assert_eq!(
            pg.scalar(&format!("SELECT count(DISTINCT xmin::text) FROM {table}")),
            transactions,
            "{method}: transactions"
        );
    }
    assert_eq!(
        proxy.cut(),
        8,
        "the proxy cut eight connections after their COMMIT"
    );
}

#[test]
fn ctrl_c_while_connecting_exits_130_at_once() {
    let target = refused_target();
    let child = Loader::new()
        .args([
            "--rows",
            "10",
            "--wait-for-target",
            "10m",
            "--target",
            &target,
        ])
        .spawn();
    std::thread::sleep(Duration::from_millis(800));
    let signalled = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let output = wait_with_limit(child, Duration::from_secs(5));
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("interrupted"));
}

#[test]
fn a_second_ctrl_c_abandons_a_batch_stuck_in_retries() {
    let pg = Pg::start();
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let child = Loader::new()
        .args([
            "--threads",
            "1",
            "--create",
            "--max-retries",
            "1000",
            "--retry-for",
            "10m",
        ])
        .args(["--target", &pg.url(), "--report"])
        .arg_path(&report_path)
        .spawn();
    wait_until(Duration::from_secs(30), "rows to arrive", || {
        count_or_zero(&pg, "readings") > 0
    });
    pg.cluster.kill().expect("stop PostgreSQL");
    std::thread::sleep(Duration::from_millis(500));
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let second = Instant::now();
    kill(pid, Signal::SIGINT).unwrap();
    let output = wait_with_limit(child, Duration::from_secs(10));
    assert!(second.elapsed() < Duration::from_secs(3));
    assert_eq!(output.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("abandoned batch"), "{stderr}");
    let report = read_report(&report_path);
    assert_eq!(report["outcome"], "interrupted");
    assert_eq!(report["errors"]["abandoned"], 1, "{report}");
    // The abandoned batch may or may not have committed before the server died.
    pg.cluster.restart().unwrap();
    let loaded = report["rows_loaded"].as_i64().unwrap();
    let counted = pg.scalar("SELECT count(*) FROM readings");
    assert!(
        counted == loaded || counted == loaded + 1000,
        "{counted} vs {loaded}"
    );
}
