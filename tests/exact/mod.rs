//! Exact on every ending: loads whose target table does part of the work itself (generated and
//! identity columns, deferred constraints, triggers that drop rows), each checked by counting on
//! the real PostgreSQL the test starts, against the report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::support::{figure, read_report, scratch, Loader, Pg};

fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write a test input");
    path
}

/// `rows` CSV lines `i,x<i>` for i in 1..=rows.
fn pairs_csv(rows: u64) -> String {
    let mut csv = String::new();
    for i in 1..=rows {
        let _ = writeln!(csv, "{i},x{i}");
    }
    csv
}

#[test]
fn generated_and_identity_always_columns_are_left_to_the_server() {
    let pg = Pg::start();
    let dir = scratch();
    let path = write_file(dir.path(), "pairs.csv", &pairs_csv(1000));
    for method in ["copy-binary", "copy-text", "insert"] {
        pg.execute(
            "DROP TABLE IF EXISTS t, u, loader_ledger; \
             CREATE TABLE t (a int, b text, g int GENERATED ALWAYS AS (a * 2) STORED); \
             CREATE TABLE u (id bigint GENERATED ALWAYS AS IDENTITY, a int, b text)",
        );
        for table in ["t", "u"] {
            let report_path = dir.path().join(format!("{method}-{table}.json"));
            let run = Loader::new()
                .arg("copy")
                .arg_path(&path)
                .args(["--table", table, "--method", method, "--batch", "300"])
                .args(["--quiet", "--target", &pg.url(), "--report"])
                .arg_path(&report_path)
                .arg("--reject-file")
                .arg_path(&dir.path().join(format!("{method}-{table}.ndjson")))
                .run();
            assert_eq!(run.code(), 0, "{method} into {table}: {}", run.stderr());
            let count = pg.scalar(&format!("SELECT count(*) FROM {table}"));
            assert_eq!(count, 1000, "{method} into {table}");
            assert_eq!(read_report(&report_path)["rows_loaded"], count);
        }
        assert_eq!(pg.scalar("SELECT count(*) FROM t WHERE g = a * 2"), 1000);
        assert_eq!(pg.scalar("SELECT sum(a)::bigint FROM t"), 500_500);
        assert_eq!(
            pg.scalar("SELECT count(DISTINCT id) FROM u WHERE b = 'x' || a"),
            1000,
            "{method}: the server numbered every row"
        );
    }
    // Named, a generated column is sent and the server's refusal says why.
    let run = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args([
            "--table",
            "t",
            "--columns",
            "a,g",
            "--quiet",
            "--target",
            &pg.url(),
        ])
        .arg("--reject-file")
        .arg_path(&dir.path().join("named.ndjson"))
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stderr().contains("generated column"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_deferred_unique_violation_at_commit_rejects_the_one_row_and_loads_the_rest() {
    let pg = Pg::start();
    let dir = scratch();
    // Line 500 repeats key 7 of a row already in the table: the server says so only at COMMIT.
    let mut csv = String::new();
    for i in 1..=1000u64 {
        let key = if i == 500 { 7_000_000 } else { i };
        let _ = writeln!(csv, "{key},x{i}");
    }
    let path = write_file(dir.path(), "keys.csv", &csv);
    for method in ["copy-binary", "insert"] {
        pg.execute(
            "DROP TABLE IF EXISTS d, loader_ledger; \
             CREATE TABLE d (k bigint UNIQUE DEFERRABLE INITIALLY DEFERRED, b text); \
             INSERT INTO d VALUES (7000000, 'there before')",
        );
        let rejects_path = dir.path().join(format!("{method}.ndjson"));
        let report_path = dir.path().join(format!("{method}.json"));
        let run = Loader::new()
            .arg("copy")
            .arg_path(&path)
            .args(["--table", "d", "--method", method, "--batch", "1000"])
            .args(["--quiet", "--target", &pg.url(), "--reject-file"])
            .arg_path(&rejects_path)
            .arg("--report")
            .arg_path(&report_path)
            .run();
        assert_eq!(run.code(), 1, "{method}: {}", run.stderr());
        assert_eq!(pg.scalar("SELECT count(*) FROM d"), 1000, "{method}");
        assert_eq!(pg.scalar("SELECT count(*) FROM d WHERE k = 7000000"), 1);
        let report = read_report(&report_path);
        assert_eq!(report["rows_loaded"], 999, "{method}: {report}");
        assert_eq!(report["rows_rejected"], 1, "{method}: {report}");
        assert_eq!(
            pg.scalar("SELECT sum(rows)::bigint FROM loader_ledger"),
            999,
            "{method}: the ledger row counts the rows stored"
        );
        let rejects = std::fs::read_to_string(&rejects_path).unwrap();
        let lines: Vec<serde_json::Value> = rejects
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{method}: {rejects}");
        assert_eq!(lines[0]["line"], 500, "{method}: {rejects}");
        let error = lines[0]["error"].as_str().unwrap();
        assert!(error.contains("duplicate key"), "{method}: {error}");
        assert!(error.contains("23505"), "{method}: {error}");
    }
}

#[test]
fn rows_a_trigger_drops_are_not_counted_as_loaded() {
    let pg = Pg::start();
    let dir = scratch();
    // 5 rows in one batch, then 10,000 in batches of 1,000 (one transaction, then three batches
    // per transaction); the trigger drops the even ids.
    let runs = [
        (5u64, "1000", "1", "copy-binary"),
        (10_000, "1000", "1", "insert"),
    ]
    .into_iter()
    .chain([(10_000, "1000", "3", "copy-text")]);
    for (rows, batch, commit_every, method) in runs {
        let what = format!("{rows} rows, {method}, --commit-every {commit_every}");
        pg.execute(
            "DROP TABLE IF EXISTS k, loader_ledger; CREATE TABLE k (id bigint, b text); \
             CREATE OR REPLACE FUNCTION odd_only() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.id % 2 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER odd_only BEFORE INSERT ON k FOR EACH ROW EXECUTE FUNCTION odd_only()",
        );
        let path = write_file(dir.path(), "k.csv", &pairs_csv(rows));
        let report_path = dir.path().join("k.json");
        let run_id = format!("k-{method}");
        let load = || {
            Loader::new()
                .arg("copy")
                .arg_path(&path)
                .args(["--table", "k", "--method", method, "--batch", batch])
                .args(["--commit-every", commit_every, "--threads", "1"])
                .args(["--run-id", &run_id, "--target", &pg.url(), "--report"])
                .arg_path(&report_path)
                .arg("--reject-file")
                .arg_path(&dir.path().join("k.ndjson"))
        };
        let run = load().run();
        assert_eq!(run.code(), 0, "{what}: {}", run.stderr());
        let stored = pg.scalar("SELECT count(*) FROM k");
        let expected = (rows as i64 + 1) / 2;
        assert_eq!(stored, expected, "{what}");
        let report = read_report(&report_path);
        assert_eq!(report["rows_loaded"], expected, "{what}: {report}");
        assert_eq!(report["rows_sent"], rows, "{what}: {report}");
        assert_eq!(
            report["rows_skipped_by_server"],
            rows as i64 - expected,
            "{what}: {report}"
        );
        assert_eq!(
            pg.scalar("SELECT sum(rows)::bigint FROM loader_ledger"),
            expected,
            "{what}: the ledger counts the rows stored"
        );
        let summary = format!("sent {}, stored {}", figure(rows), figure(expected as u64));
        assert!(run.stdout().contains(&summary), "{what}: {}", run.stdout());
        // The ledger's rows, rejects and dropped rows add up to each batch's records: resumable.
        let run = load().arg("--resume").run();
        assert_eq!(run.code(), 0, "{what}, resumed: {}", run.stderr());
        assert_eq!(pg.scalar("SELECT count(*) FROM k"), expected, "{what}");
        let report = read_report(&report_path);
        assert_eq!(report["rows_loaded"], 0, "{what}: {report}");
        assert_eq!(report["resumed"]["skipped_rows"], expected, "{what}");
    }
}

#[test]
fn rows_a_rule_drops_are_not_counted_as_loaded() {
    let pg = Pg::start();
    let dir = scratch();
    let path = write_file(dir.path(), "k.csv", &pairs_csv(3_000));
    // INSERT obeys rules; COPY never does (PostgreSQL applies no rules to COPY FROM), so there
    // every row is stored.
    let cases = [
        ("insert", "WHERE NEW.id % 2 = 0", 1_500),
        ("insert", "", 0),
        ("copy-binary", "WHERE NEW.id % 2 = 0", 3_000),
    ];
    for (method, condition, expected) in cases {
        let what = format!("{method}, DO INSTEAD NOTHING {condition}");
        pg.execute(&format!(
            "DROP TABLE IF EXISTS k, loader_ledger; CREATE TABLE k (id bigint, b text); \
             CREATE RULE skip AS ON INSERT TO k {condition} DO INSTEAD NOTHING"
        ));
        let report_path = dir.path().join("k.json");
        let run = Loader::new()
            .arg("copy")
            .arg_path(&path)
            .args(["--table", "k", "--method", method, "--batch", "1000"])
            .args(["--threads", "2", "--target", &pg.url(), "--report"])
            .arg_path(&report_path)
            .run();
        assert_eq!(run.code(), 0, "{what}: {}", run.stderr());
        let report = read_report(&report_path);
        assert_eq!(pg.scalar("SELECT count(*) FROM k"), expected, "{what}");
        assert_eq!(report["rows_loaded"], expected, "{what}: {report}");
        assert_eq!(report["rows_sent"], 3_000, "{what}: {report}");
    }
}
