//! `loader copy FILE --create` without a dialect or types given: the sniffed delimiter, encoding,
//! header and null markers, the inferred column types on a real PostgreSQL (every value compared
//! with what PostgreSQL's own COPY loads into hand-written DDL), a later value that breaks its
//! type rejected with its line, NDJSON's nested values as jsonb, and `--sniff`'s output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{read_report, scratch, Loader, Pg};

fn write_file(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write a test input");
    path
}

/// The columns of the typed file and the types `--create` must give them.
const TYPED_COLUMNS: [(&str, &str); 13] = [
    ("id", "smallint"),
    ("flag", "boolean"),
    ("small", "smallint"),
    ("big", "bigint"),
    ("exact", "numeric"),
    ("ratio", "double precision"),
    ("day", "date"),
    ("at", "timestamp without time zone"),
    ("at_tz", "timestamp with time zone"),
    ("clock", "time without time zone"),
    ("uid", "uuid"),
    ("doc", "jsonb"),
    ("note", "text"),
];

/// `rows` records of every type, `;`-separated with a header. `null(i, column)` spells the NULL of
/// row `i` (the loader's file spells it three ways, PostgreSQL's reference file one way).
fn typed_csv(rows: u32, null: impl Fn(u32) -> &'static str, line_end: &str) -> String {
    let header: Vec<&str> = TYPED_COLUMNS.iter().map(|(name, _)| *name).collect();
    let mut csv = header.join(";") + line_end;
    for i in 0..rows {
        let nullable = |value: String| {
            if i % 10 == 3 {
                null(i).to_string()
            } else {
                value
            }
        };
        let fields = [
            i.to_string(),
            ["true", "f", "yes"][i as usize % 3].to_string(),
            nullable(format!("{}", i % 300)),
            nullable(format!("{}", i64::from(i) * 10_000_000_000)),
            nullable(format!("{i}.12345678901234567890")),
            nullable(format!("{}", f64::from(i) / 8.0 + 0.5)),
            nullable(format!("2026-01-{:02}", i % 28 + 1)),
            nullable(format!("2026-02-03 04:05:{:02}.5", i % 60)),
            nullable(format!("2026-02-03T04:05:{:02}Z", i % 60)),
            nullable(format!("12:{:02}:00", i % 60)),
            nullable(format!("a0eebc99-9c0b-4ef8-bb6d-{i:012}")),
            nullable(format!(
                "\"{{\"\"n\"\": {i}, \"\"list\"\": [1, \"\"a;b\"\"]}}\""
            )),
            match i % 4 {
                0 => format!("\"line one\nline two; {i}\""),
                1 => format!("\"say \"\"hi\"\" {i}\""),
                2 => "café".to_string(),
                _ => format!("plain {i}"),
            },
        ];
        csv.push_str(&fields.join(";"));
        csv.push_str(line_end);
    }
    csv
}

/// The table's rows in id order, hashed.
fn checksum(pg: &Pg, table: &str) -> String {
    pg.text(&format!(
        "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM {table} t"
    ))
}

fn column_types(pg: &Pg, table: &str) -> Vec<(String, String)> {
    pg.client()
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[test]
fn a_file_of_every_type_is_created_typed_and_loads_what_postgres_copy_loads() {
    let pg = Pg::start();
    let dir = scratch();
    let rows = 10_000;
    // A byte order mark, CRLF, `;`, quoted line breaks, and NULL as empty, NA and NULL.
    let sniffed = typed_csv(rows, |i| ["", "NA", "NULL"][i as usize % 3], "\r\n");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(sniffed.as_bytes());
    let path = write_file(dir.path(), "typed.csv", &bytes);
    let reference = write_file(
        dir.path(),
        "reference.csv",
        typed_csv(rows, |_| "", "\n").as_bytes(),
    );
    let report_path = dir.path().join("r.json");
    Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--create", "--table", "typed", "--threads", "2", "--quiet"])
        .args(["--batch", "1000", "--target", &pg.url(), "--report"])
        .arg_path(&report_path)
        .run()
        .assert_success();
    let expected: Vec<(String, String)> = TYPED_COLUMNS
        .iter()
        .map(|(name, sql_type)| (name.to_string(), sql_type.to_string()))
        .collect();
    assert_eq!(column_types(&pg, "typed"), expected);

    let ddl: Vec<String> = TYPED_COLUMNS
        .iter()
        .map(|(name, sql_type)| format!("{name} {sql_type}"))
        .collect();
    pg.execute(&format!("CREATE TABLE typed_psql ({})", ddl.join(", ")));
    let psql = Command::new("psql")
        .args([&pg.url(), "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!(
            "\\copy typed_psql FROM '{}' (FORMAT csv, HEADER, DELIMITER ';')",
            reference.display()
        ))
        .output()
        .expect("run psql");
    assert!(psql.status.success(), "{psql:?}");

    assert_eq!(pg.scalar("SELECT count(*) FROM typed"), i64::from(rows));
    assert_eq!(read_report(&report_path)["rows_loaded"], i64::from(rows));
    assert_eq!(checksum(&pg, "typed"), checksum(&pg, "typed_psql"));
    // The three spellings of NULL all became NULL, the hazards survived.
    assert_eq!(
        pg.scalar("SELECT count(*) FROM typed WHERE small IS NULL AND doc IS NULL"),
        i64::from(rows / 10)
    );
    assert_eq!(
        pg.text("SELECT exact::text FROM typed WHERE id = 7"),
        "7.12345678901234567890"
    );
    assert_eq!(
        pg.text("SELECT note FROM typed WHERE id = 4"),
        "line one\nline two; 4"
    );
    assert_eq!(pg.text("SELECT note FROM typed WHERE id = 2"), "café");
}

#[test]
fn a_latin1_file_is_transcoded_and_its_header_sniffed() {
    let pg = Pg::start();
    let dir = scratch();
    let mut latin1 = b"id,city,temp\n".to_vec();
    for i in 0..1000 {
        latin1.extend_from_slice(format!("{i},").as_bytes());
        latin1.extend_from_slice(b"Z\xfcrich caf\xe9");
        latin1.extend_from_slice(format!(",{i}.5\n").as_bytes());
    }
    let path = write_file(dir.path(), "latin1.csv", &latin1);
    Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args([
            "--create",
            "--table",
            "cities",
            "--quiet",
            "--target",
            &pg.url(),
        ])
        .run()
        .assert_success();
    assert_eq!(
        column_types(&pg, "cities"),
        [
            ("id".to_string(), "smallint".to_string()),
            ("city".to_string(), "text".to_string()),
            ("temp".to_string(), "double precision".to_string())
        ]
    );
    assert_eq!(
        pg.scalar("SELECT count(*) FROM cities WHERE city = 'Zürich café'"),
        1000
    );
    // --encoding and --schema win over the sample.
    let run = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args([
            "--create",
            "--table",
            "cities2",
            "--encoding",
            "utf-8",
            "--header",
        ])
        .args(["--schema", "temp:numeric", "--quiet", "--target", &pg.url()])
        .arg("--reject-file")
        .arg_path(&dir.path().join("rejects.ndjson"))
        .run();
    assert_eq!(
        run.code(),
        1,
        "the Latin-1 bytes are not UTF-8: {}",
        run.stderr()
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM cities2"), 0);
    let rejected = std::fs::read_to_string(dir.path().join("rejects.ndjson")).unwrap();
    assert_eq!(rejected.lines().count(), 1000, "every record, as not UTF-8");
    assert_eq!(
        column_types(&pg, "cities2")[2],
        ("temp".to_string(), "numeric".to_string())
    );
}

#[test]
fn row_50000_breaking_its_inferred_type_is_rejected_with_its_line() {
    let pg = Pg::start();
    let dir = scratch();
    let mut csv = String::from("id,reading,day\n");
    for k in 0..100_000u32 {
        let reading = if k == 50_000 {
            "broken".to_string()
        } else {
            format!("{}", k % 1000)
        };
        let _ = writeln!(csv, "{k},{reading},2026-03-{:02}", k % 28 + 1);
    }
    let path = write_file(dir.path(), "late.csv", csv.as_bytes());
    let rejects = dir.path().join("rejects.ndjson");
    let report = dir.path().join("report.json");
    let run = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--create", "--table", "late", "--threads", "2"])
        .args(["--target", &pg.url(), "--reject-file"])
        .arg_path(&rejects)
        .arg("--report")
        .arg_path(&report)
        .run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(pg.scalar("SELECT count(*) FROM late"), 99_999);
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(figures["rows_disagreeing_with_sample"], 1, "{figures}");
    assert!(
        run.stdout()
            .contains("1 row disagreed with the types sniffed from the sample"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        column_types(&pg, "late")[1],
        ("reading".to_string(), "integer".to_string())
    );
    let text = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    // Record k is on line k + 2: the header is line 1.
    assert_eq!(lines[0]["line"], 50_002, "{text}");
    let error = lines[0]["error"].as_str().unwrap();
    assert!(error.contains("type integer"), "{error}");
}

#[test]
fn ndjson_nested_values_become_jsonb_equal_to_the_input() {
    let pg = Pg::start();
    let dir = scratch();
    let mut ndjson = String::new();
    for i in 0..2000 {
        let _ = writeln!(
            ndjson,
            r#"{{"id":{i},"meta":{{"k":{i},"deep":{{"list":[1,"two",null,{{"x":1.5}}]}}}},"tags":["a","b{i}"],"at":"2026-01-01T00:00:{:02}Z","ok":{}}}"#,
            i % 60,
            i % 2 == 0
        );
    }
    let path = write_file(dir.path(), "nested.ndjson", ndjson.as_bytes());
    Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args([
            "--create",
            "--table",
            "nested",
            "--quiet",
            "--target",
            &pg.url(),
        ])
        .run()
        .assert_success();
    assert_eq!(
        column_types(&pg, "nested"),
        [
            ("id", "smallint"),
            ("meta", "jsonb"),
            ("tags", "jsonb"),
            ("at", "timestamp with time zone"),
            ("ok", "boolean")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    pg.execute("CREATE TABLE nested_input (line jsonb)");
    let mut client = pg.client();
    let mut writer = client
        .copy_in("COPY nested_input FROM STDIN (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')")
        .unwrap();
    std::io::Write::write_all(&mut writer, ndjson.as_bytes()).unwrap();
    writer.finish().unwrap();
    assert_eq!(
        pg.scalar(
            "SELECT count(*) FROM nested n JOIN nested_input i ON (i.line->>'id')::int = n.id \
             WHERE n.meta = i.line->'meta' AND n.tags = i.line->'tags' \
             AND n.ok = (i.line->>'ok')::boolean AND n.at = (i.line->>'at')::timestamptz"
        ),
        2000
    );
}

#[test]
fn sniff_prints_the_dialect_the_ddl_and_rows_and_loads_nothing() {
    let dir = scratch();
    let path = write_file(
        dir.path(),
        "s.csv",
        b"\xEF\xBB\xBFid|name|price|day\r\n1|\"caf\xc3\xa9|bar\"|1.5|2026-01-01\r\n2|x|NA|N/A\r\n",
    );
    let run = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--sniff", "--table", "shop"])
        .run();
    run.assert_success();
    let expected = format!(
        "input:      {}
format:     csv
encoding:   UTF-8, with a byte order mark
line end:   CRLF
delimiter:  |
quote:      \" (escaped by doubling: \"\")
header:     yes (sniffed)
null:       an empty unquoted field
            also NA, NULL, \\N, null, N/A in price, day
sampled:    2 rows

CREATE TABLE IF NOT EXISTS \"shop\" (\"id\" smallint, \"name\" text, \"price\" double precision, \"day\" date);

id | name | price | day
1 | café|bar | 1.5 | 2026-01-01
2 | x | NULL | NULL
",
        path.display()
    );
    assert_eq!(run.stdout(), expected);
    let clickhouse = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--sniff", "--table", "shop", "--no-header"])
        .args(["--target", "clickhouse+http://127.0.0.1:1"])
        .run();
    clickhouse.assert_success();
    assert!(
        clickhouse.stdout().contains(
            "CREATE TABLE IF NOT EXISTS `shop` (`column1` Nullable(String), `column2` \
             Nullable(String), `column3` Nullable(String), `column4` Nullable(String)) ENGINE = \
             MergeTree ORDER BY tuple();"
        ),
        "{}",
        clickhouse.stdout()
    );
}

#[test]
fn clickhouse_gets_nullable_typed_columns_from_the_sample() {
    let clickhouse = crate::support::clickhouse::ClickHouse::start();
    let dir = scratch();
    let mut csv = String::from("id,count,ratio,day,at,note\n");
    for i in 0..5000u32 {
        let missing = ["", "NA", "NULL"][i as usize % 3];
        let count = if i % 10 == 3 {
            missing.to_string()
        } else {
            (i * 7).to_string()
        };
        let _ = writeln!(
            csv,
            "{i},{count},{},2026-01-{:02},2026-02-03 04:05:{:02},\"n, {i}\"",
            f64::from(i) / 4.0,
            i % 28 + 1,
            i % 60
        );
    }
    let path = write_file(dir.path(), "ch.csv", csv.as_bytes());
    Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--create", "--table", "sniffed", "--quiet"])
        .args(["--target", &clickhouse.url()])
        .run()
        .assert_success();
    assert_eq!(
        clickhouse
            .query("SELECT name, type FROM system.columns WHERE table = 'sniffed' FORMAT TSV")
            .unwrap(),
        "id\tNullable(Int16)\ncount\tNullable(Int32)\nratio\tNullable(Float64)\n\
         day\tNullable(Date)\nat\tNullable(DateTime(\\'UTC\\'))\nnote\tNullable(String)"
    );
    assert_eq!(clickhouse.scalar("SELECT count() FROM sniffed"), 5000);
    assert_eq!(
        clickhouse.scalar("SELECT count() FROM sniffed WHERE isNull(count)"),
        500
    );
    assert_eq!(
        clickhouse
            .query("SELECT id, count, ratio, day, at, note FROM sniffed WHERE id = 4999 FORMAT TSV")
            .unwrap(),
        "4999\t34993\t1249.75\t2026-01-16\t2026-02-03 04:05:19\tn, 4999"
    );
    assert_eq!(
        clickhouse.scalar("SELECT sum(id) FROM sniffed"),
        4999 * 5000 / 2
    );
}

#[test]
fn standard_input_is_sniffed_as_a_file_is_and_its_sample_is_loaded_once() {
    let pg = Pg::start();
    let dir = scratch();
    // Five times the sample: the load reads the sampled records again, then the rest of the pipe.
    let csv = typed_csv(100_000, |i| ["", "NA", "NULL"][i as usize % 3], "\r\n");
    let path = write_file(dir.path(), "typed.csv", csv.as_bytes());
    let load = |input: Loader, table: &str| {
        input
            .args([
                "--create",
                "--table",
                table,
                "--quiet",
                "--target",
                &pg.url(),
            ])
            .args(["--threads", "2", "--batch", "7000"])
    };
    load(Loader::new().arg("copy").arg_path(&path), "from_file")
        .run()
        .assert_success();
    load(Loader::new().args(["copy", "-"]), "from_stdin")
        .run_with_stdin(csv.into_bytes())
        .assert_success();
    let from_file = column_types(&pg, "from_file");
    assert_eq!(from_file.len(), TYPED_COLUMNS.len());
    assert_eq!(column_types(&pg, "from_stdin"), from_file);
    let digest = |table: &str| {
        pg.text(&format!(
            "SELECT md5(string_agg(t::text, '|' ORDER BY id)) || ' ' || count(*) FROM {table} t"
        ))
    };
    assert_eq!(digest("from_stdin"), digest("from_file"));
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT id) FROM from_stdin"),
        100_000
    );
}

#[test]
fn sniff_of_standard_input_prints_the_dialect_without_loading() {
    let csv = typed_csv(50, |_| "NA", "\n");
    let run = Loader::new()
        .args(["copy", "-", "--sniff", "--table", "piped"])
        .run_with_stdin(csv.into_bytes());
    run.assert_success();
    let out = run.stdout();
    assert!(out.contains("delimiter:  ;"), "{out}");
    assert!(out.contains("\"clock\" time"), "{out}");
}
