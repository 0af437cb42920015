//! Untrusted input and servers that lie: each case asserts the exit code, one clear line, and that
//! the report's `rows_loaded` equals what the target holds.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::protocol::ProtocolServer;
use crate::support::{read_report, scratch, wait_until, wait_with_limit, Loader, Pg};

/// A readings CSV of `rows` rows with a header, written by loader's own file target.
fn readings_csv(dir: &Path, rows: u64) -> PathBuf {
    let path = dir.join("readings.csv");
    Loader::new()
        .args(["--rows", &rows.to_string(), "--quiet", "--target"])
        .arg_path_prefixed("file:", &path)
        .run()
        .assert_success();
    path
}

#[test]
fn cratedb_rows_answered_with_a_row_count_of_zero_are_not_counted_as_loaded() {
    // Even ids are answered `rowcount: 0` and not stored: no error, no row.
    let server = ProtocolServer::start(|seen| {
        let request: Value = serde_json::from_slice(&seen.body).expect("a JSON body");
        let Some(rows) = request["bulk_args"].as_array() else {
            return (200, json!({"cols": [], "rowcount": 1}).to_string());
        };
        let results: Vec<Value> = rows
            .iter()
            .map(|row| json!({"rowcount": i64::from(row[0].as_i64().unwrap() % 2 == 1)}))
            .collect();
        (200, json!({"cols": [], "results": results}).to_string())
    });
    let dir = scratch();
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .args(["--rows", "400", "--batch", "100", "--quiet", "--target"])
        .arg(&format!("crate+http://127.0.0.1:{}", server.port))
        .arg("--reject-file")
        .arg_path(&dir.path().join("rejects.ndjson"))
        .arg("--report")
        .arg_path(&report_path)
        .run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], 200, "{report}");
    assert_eq!(report["rows_rejected"], 200, "{report}");
}

#[test]
fn a_second_process_loading_the_same_run_is_named() {
    let pg = Pg::start();
    let dir = scratch();
    let path = readings_csv(dir.path(), 20_000);
    pg.execute(
        "CREATE TABLE readings (id bigint, ts timestamptz, sensor_id int, location text, \
         temperature double precision, humidity double precision, status text)",
    );
    let copy = |run_id: &str| {
        Loader::new()
            .arg("copy")
            .arg_path(&path)
            .args(["--header", "--threads", "1", "--batch", "1000", "--quiet"])
            .args(["--run-id", run_id, "--target", &pg.url()])
    };
    copy("first")
        .args(["--limit", "1000"])
        .run()
        .assert_success();
    let source = pg.text("SELECT source FROM loader_ledger LIMIT 1");
    let first_seq = pg.scalar("SELECT batch_seq FROM loader_ledger LIMIT 1");
    // Its first COPY waits behind a SHARE lock on the table, its setup done.
    let mut locker = pg.client();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE readings IN SHARE MODE")
        .unwrap();
    let report_path = dir.path().join("r.json");
    let child = copy("shared")
        .arg("--report")
        .arg_path(&report_path)
        .spawn();
    let pg = &pg;
    let waiting_on = |what: &str| {
        let sql = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE '{what}%'"
        );
        move || pg.scalar(&sql) > 0
    };
    wait_until(
        Duration::from_secs(60),
        "its first COPY waiting",
        waiting_on("COPY"),
    );
    // Another process holds the run's next batch, not yet committed.
    let mut other = pg.client();
    let mut held = other.transaction().unwrap();
    held.execute(
        "INSERT INTO loader_ledger (run_id, source, target_table, host, batch_seq, worker, rows, \
         rejected, first_row) VALUES ('shared', $1, 'readings', 'other', $2, 0, 1000, 0, 1002)",
        &[&source, &(first_seq + 1)],
    )
    .unwrap();
    lock.commit().unwrap();
    wait_until(
        Duration::from_secs(60),
        "its second batch waiting",
        waiting_on("BEGIN"),
    );
    held.commit().unwrap();
    let output = wait_with_limit(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("run `shared` is being loaded by another process"),
        "{stderr}"
    );
    assert!(!stderr.contains("loader_ledger_key"), "{stderr}");
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], 1000, "its first batch: {report}");
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 2000);
}

#[test]
fn what_the_user_typed_is_echoed_without_secrets_or_control_characters() {
    // A DSN with a misspelt password key: its value may be the secret.
    let run = Loader::new()
        .args([
            "--rows",
            "10",
            "--target",
            "host=127.0.0.1 pasword=s3cr3t-pw user=u",
        ])
        .run();
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(!run.stderr().contains("s3cr3t-pw"), "{}", run.stderr());
    assert!(run.stderr().contains("pasword"), "{}", run.stderr());
    // An escape sequence in a flag's value comes back escaped.
    let run = Loader::new().args(["--shard", "\u{1b}[31mred"]).run();
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(!run.stderr().contains('\u{1b}'), "{:?}", run.stderr());
    assert!(run.stderr().contains("\\u{1b}[31mred"), "{}", run.stderr());
    assert_eq!(run.stderr().lines().count(), 1, "{}", run.stderr());
}

#[test]
fn a_table_name_postgresql_would_cut_is_refused() {
    let name = "t".repeat(64);
    let run = Loader::new()
        .args(["--rows", "10", "--table", &name, "--target"])
        .arg("postgres://postgres@127.0.0.1:9/postgres")
        .run();
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("63 bytes"), "{}", run.stderr());
}

#[test]
fn a_header_with_a_byte_order_mark_names_its_columns_and_a_statement_timeout_is_explained() {
    let pg = Pg::start();
    let dir = scratch();
    pg.execute("CREATE TABLE items (a int, b text)");
    let path = dir.path().join("bom.csv");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"\xEF\xBB\xBFa,b\n1,x\n2,y\n").unwrap();
    drop(file);
    let load = || {
        Loader::new().arg("copy").arg_path(&path).args([
            "--header",
            "--table",
            "items",
            "--quiet",
            "--target",
            &pg.url(),
        ])
    };
    load().run().assert_success();
    assert_eq!(pg.scalar("SELECT sum(a)::bigint FROM items"), 3);

    // A role whose statement_timeout cuts every COPY.
    pg.execute(
        "CREATE ROLE hurried LOGIN SUPERUSER; ALTER ROLE hurried SET statement_timeout = 100",
    );
    pg.execute(
        "CREATE OR REPLACE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \
                $$ BEGIN PERFORM pg_sleep(0.2); RETURN NEW; END $$; \
                CREATE TRIGGER slow BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION slow()",
    );
    let url = pg.url().replacen("postgres@", "hurried@", 1);
    let run = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--header", "--table", "items", "--target", &url])
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stderr().contains("statement_timeout") && run.stderr().contains("ALTER ROLE"),
        "{}",
        run.stderr()
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM items"), 2);
}

#[test]
fn a_stray_quote_stops_the_load_at_the_record_cap_naming_its_line() {
    let pg = Pg::start();
    let dir = scratch();
    let clean = readings_csv(dir.path(), 200_000);
    // Line 50,001 (the header is line 1) opens a quote that never closes: without a cap the rest
    // of the file, about 12 MB, became one rejected record.
    let text = std::fs::read_to_string(&clean).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[50_000] = lines[50_000].replacen(",", ",\"", 1);
    let path = dir.path().join("stray.csv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    pg.execute(
        "CREATE TABLE readings (id bigint, ts timestamptz, sensor_id int, location text, \
         temperature double precision, humidity double precision, status text)",
    );
    let report_path = dir.path().join("r.json");
    let run = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--header", "--threads", "2", "--batch", "1000", "--quiet"])
        .args(["--target", &pg.url(), "--report"])
        .arg_path(&report_path)
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    let stderr = run.stderr();
    assert!(
        stderr.contains("the record starting on line 50001 runs past 1,048,576 bytes")
            && stderr.contains("--max-record-size"),
        "{stderr}"
    );
    let report = read_report(&report_path);
    let stored = pg.scalar("SELECT count(*) FROM readings");
    assert_eq!(report["rows_loaded"], stored, "{report}");
    assert!(
        stored <= 49_999,
        "rows after the stray quote were loaded: {stored}"
    );
    assert_eq!(report["rows_rejected"], 0, "{report}");

    // Raised above the rest of the file, the same input loads all but that one record.
    let run = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--header", "--threads", "2", "--batch", "1000", "--quiet"])
        .args([
            "--max-record-size",
            "64MiB",
            "--truncate",
            "--target",
            &pg.url(),
        ])
        .arg("--reject-file")
        .arg_path(&dir.path().join("rejects.ndjson"))
        .run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(pg.scalar("SELECT count(*) FROM readings"), 49_999);
}
