//! `loader copy FILE.parquet` end to end: a million rows of every primitive type, nulls in each
//! column and several row groups, written with the parquet crate and loaded with `--create` into
//! PostgreSQL and ClickHouse, checked value by value against what the test wrote; a resumed run,
//! a value the target cannot hold, and the inputs Parquet cannot be read from.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::support::clickhouse::ClickHouse;
use crate::support::{
    count_or_zero, read_report, scratch, wait_until, wait_with_limit, Loader, Pg,
};

/// Rows of the big file, and of each of its row groups.
const ROWS: u64 = 1_000_000;
const ROW_GROUP_ROWS: usize = 300_000;
/// 2026-01-01 00:00:00 UTC in microseconds since 1970.
const BASE_MICROS: i64 = 1_767_225_600_000_000;

/// The columns of the test file, each nullable, in order.
const COLUMNS: [&str; 15] = [
    "id", "tiny", "small", "medium", "unsigned", "single", "double", "flag", "name", "blob", "day",
    "at_utc", "at_local", "amount", "tags",
];

/// Whether column `column` (its index in [`COLUMNS`]) of row `i` is NULL: never the id, and a
/// different pattern for every other column.
fn is_null(column: usize, i: u64) -> bool {
    column > 0 && (i + column as u64) % (10 + column as u64) == 0
}

fn tiny(i: u64) -> i8 {
    (i % 200) as i8 - 100
}
fn small(i: u64) -> i16 {
    (i % 60_000) as i16 - 30_000
}
fn medium(i: u64) -> i32 {
    i as i32 * 7 - 3_000_000
}
/// Up to 4e9: past integer, within bigint.
fn unsigned(i: u64) -> u32 {
    i as u32 * 4_000
}
fn single(i: u64) -> f32 {
    i as f32 / 4.0
}
fn double(i: u64) -> f64 {
    i as f64 * 0.5 - 1000.0
}
fn flag(i: u64) -> bool {
    i % 3 == 0
}
fn name(i: u64) -> String {
    format!("name {i}, \"q\"\t✓")
}
fn blob(i: u64) -> Vec<u8> {
    vec![i as u8, (i >> 8) as u8, 0, 255]
}
fn day(i: u64) -> i32 {
    18_000 + (i % 1000) as i32
}
fn micros(i: u64) -> i64 {
    BASE_MICROS + i as i64 * 1_000_123
}
/// Units of 0.01 in a decimal(10,2).
fn cents(i: u64) -> i128 {
    i as i128 * 101 - 5_000_000
}
/// [`cents`] as the decimal's text.
fn amount(i: u64) -> String {
    let cents = cents(i);
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}
fn tags(i: u64) -> Vec<i32> {
    if i % 4 == 0 {
        Vec::new()
    } else {
        vec![(i % 5) as i32, (i % 7) as i32]
    }
}

fn schema() -> Arc<Schema> {
    let utc = Some(Arc::from("UTC"));
    let types = [
        DataType::Int64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::UInt32,
        DataType::Float32,
        DataType::Float64,
        DataType::Boolean,
        DataType::Utf8,
        DataType::Binary,
        DataType::Date32,
        DataType::Timestamp(TimeUnit::Microsecond, utc),
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Decimal128(10, 2),
        DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
    ];
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .zip(types)
            .map(|(name, data_type)| Field::new(*name, data_type, true))
            .collect::<Vec<_>>(),
    ))
}

/// Rows `range` of the test file as one record batch.
fn record_batch(schema: &Arc<Schema>, range: std::ops::Range<u64>) -> RecordBatch {
    let of = |column: usize| {
        let range = range.clone();
        range.map(move |i| (i, !is_null(column, i)))
    };
    let mut tags_builder = ListBuilder::new(Int32Builder::new());
    for (i, present) in of(14) {
        if present {
            tags_builder.values().append_slice(&tags(i));
            tags_builder.append(true);
        } else {
            tags_builder.append(false);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter(of(0).map(|(i, _)| Some(i as i64)))),
        Arc::new(Int8Array::from_iter(of(1).map(|(i, p)| p.then(|| tiny(i))))),
        Arc::new(Int16Array::from_iter(
            of(2).map(|(i, p)| p.then(|| small(i))),
        )),
        Arc::new(Int32Array::from_iter(
            of(3).map(|(i, p)| p.then(|| medium(i))),
        )),
        Arc::new(UInt32Array::from_iter(
            of(4).map(|(i, p)| p.then(|| unsigned(i))),
        )),
        Arc::new(Float32Array::from_iter(
            of(5).map(|(i, p)| p.then(|| single(i))),
        )),
        Arc::new(Float64Array::from_iter(
            of(6).map(|(i, p)| p.then(|| double(i))),
        )),
        Arc::new(BooleanArray::from_iter(
            of(7).map(|(i, p)| p.then(|| flag(i))),
        )),
        Arc::new(StringArray::from_iter(
            of(8).map(|(i, p)| p.then(|| name(i))),
        )),
        Arc::new(BinaryArray::from_iter(
            of(9).map(|(i, p)| p.then(|| blob(i))),
        )),
        Arc::new(Date32Array::from_iter(
            of(10).map(|(i, p)| p.then(|| day(i))),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter(of(11).map(|(i, p)| p.then(|| micros(i))))
                .with_timezone("UTC"),
        ),
        Arc::new(TimestampMicrosecondArray::from_iter(
            of(12).map(|(i, p)| p.then(|| micros(i))),
        )),
        Arc::new(
            Decimal128Array::from_iter(of(13).map(|(i, p)| p.then(|| cents(i))))
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
        Arc::new(tags_builder.finish()),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns).unwrap()
}

/// Writes the test file of `rows` rows (snappy, row groups of [`ROW_GROUP_ROWS`]).
fn write_parquet(dir: &Path, rows: u64) -> PathBuf {
    let path = dir.join("every.parquet");
    let schema = schema();
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .build();
    let file = File::create(&path).unwrap();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(properties)).unwrap();
    let mut start = 0;
    while start < rows {
        let end = (start + 100_000).min(rows);
        writer.write(&record_batch(&schema, start..end)).unwrap();
        start = end;
    }
    writer.close().unwrap();
    path
}

/// The NULLs of column `column` among the first `rows` rows.
fn nulls(column: usize, rows: u64) -> i64 {
    (0..rows).filter(|&i| is_null(column, i)).count() as i64
}

/// The sum over the non-NULL rows of column `column` of `value`.
fn sum_of(column: usize, rows: u64, value: impl Fn(u64) -> i128) -> i128 {
    (0..rows).filter(|&i| !is_null(column, i)).map(value).sum()
}

/// `YYYY-MM-DD` of days since 1970 (the test's dates are all after 2000).
fn civil(days: i64) -> String {
    let (mut year, mut left) = (1970, days);
    loop {
        let length = if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) {
            366
        } else {
            365
        };
        if left < length {
            break;
        }
        left -= length;
        year += 1;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let months = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while left >= months[month] {
        left -= months[month];
        month += 1;
    }
    format!("{year}-{:02}-{:02}", month + 1, left + 1)
}

/// `YYYY-MM-DD hh:mm:ss.ffffff` of microseconds since 1970, UTC.
fn timestamp(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02}.{fraction:06}",
        civil(seconds.div_euclid(86_400)),
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Row `i` as PostgreSQL's `concat_ws('|', …)` of [`PG_ROW`] spells it.
fn pg_row(i: u64) -> String {
    let value = |column: usize, text: String| {
        if is_null(column, i) {
            "∅".to_string()
        } else {
            text
        }
    };
    let hex: String = blob(i).iter().map(|b| format!("{b:02x}")).collect();
    let tags = tags(i)
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    [
        i.to_string(),
        value(1, tiny(i).to_string()),
        value(2, small(i).to_string()),
        value(3, medium(i).to_string()),
        value(4, unsigned(i).to_string()),
        value(5, single(i).to_string()),
        value(6, double(i).to_string()),
        value(7, flag(i).to_string()),
        value(8, name(i)),
        value(9, format!("\\x{hex}")),
        value(10, civil(i64::from(day(i)))),
        value(11, format!("{}+00", timestamp(micros(i)))),
        value(12, timestamp(micros(i))),
        value(13, amount(i)),
        value(14, format!("[{tags}]")),
    ]
    .join("|")
}

/// One row of the loaded table as text, NULL as `∅`, in the session's UTC; floats by Rust's
/// spelling (PostgreSQL's shortest float text agrees for these values).
const PG_ROW: &str = "concat_ws('|', id, coalesce(tiny::text, '∅'), coalesce(small::text, '∅'), \
     coalesce(medium::text, '∅'), coalesce(unsigned::text, '∅'), coalesce(single::text, '∅'), \
     coalesce(double::text, '∅'), coalesce(flag::text, '∅'), coalesce(name, '∅'), \
     coalesce(blob::text, '∅'), coalesce(day::text, '∅'), \
     coalesce(to_char(at_utc AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00', '∅'), \
     coalesce(to_char(at_local, 'YYYY-MM-DD HH24:MI:SS.US'), '∅'), coalesce(amount::text, '∅'), \
     coalesce(tags::text, '∅'))";

/// Rows compared whole: the first ones, a row of each pattern of NULLs, row-group edges, the last.
fn sample_ids(rows: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = (0..40).collect();
    let edge = ROW_GROUP_ROWS as u64;
    ids.extend([edge - 1, edge, edge + 1, 2 * edge, rows / 2, rows - 1]);
    ids.retain(|&id| id < rows);
    ids.sort_unstable();
    ids
}

#[test]
fn every_parquet_type_loads_into_postgresql_exactly() {
    let pg = Pg::start();
    let dir = scratch();
    let path = write_parquet(dir.path(), ROWS);
    let report_path = dir.path().join("r.json");
    Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--table", "every", "--create", "--quiet", "--threads", "2"])
        .args(["--batch", "50000", "--target", &pg.url(), "--report"])
        .arg_path(&report_path)
        .run()
        .assert_success();
    let types = pg.text(
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) \
         FROM information_schema.columns WHERE table_name = 'every'",
    );
    assert_eq!(
        types,
        "id bigint, tiny smallint, small smallint, medium integer, unsigned bigint, \
         single real, double double precision, flag boolean, name text, blob bytea, day date, \
         at_utc timestamp with time zone, at_local timestamp without time zone, \
         amount numeric, tags jsonb"
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM every"), ROWS as i64);
    assert_eq!(read_report(&report_path)["rows_loaded"], ROWS);
    for (column, name) in COLUMNS.iter().enumerate() {
        assert_eq!(
            pg.scalar(&format!("SELECT count(*) FROM every WHERE {name} IS NULL")),
            nulls(column, ROWS),
            "NULLs of {name}"
        );
    }
    let sums = [
        ("id", sum_of(0, ROWS, |i| i as i128)),
        ("tiny", sum_of(1, ROWS, |i| tiny(i).into())),
        ("small", sum_of(2, ROWS, |i| small(i).into())),
        ("medium", sum_of(3, ROWS, |i| medium(i).into())),
        ("unsigned", sum_of(4, ROWS, |i| unsigned(i).into())),
        ("(single * 4)::bigint", sum_of(5, ROWS, |i| i as i128)),
        (
            "(double * 2)::bigint",
            sum_of(6, ROWS, |i| i as i128 - 2000),
        ),
        ("flag::int", sum_of(7, ROWS, |i| flag(i).into())),
        (
            "length(name)",
            sum_of(8, ROWS, |i| name(i).chars().count() as i128),
        ),
        (
            "get_byte(blob, 0) + get_byte(blob, 3)",
            sum_of(9, ROWS, |i| i128::from(i as u8) + 255),
        ),
        (
            "day - date '1970-01-01'",
            sum_of(10, ROWS, |i| day(i).into()),
        ),
        (
            "(extract(epoch FROM at_utc) * 1000000)::bigint",
            sum_of(11, ROWS, |i| micros(i).into()),
        ),
        (
            "(extract(epoch FROM at_local) * 1000000)::bigint",
            sum_of(12, ROWS, |i| micros(i).into()),
        ),
        ("(amount * 100)::bigint", sum_of(13, ROWS, cents)),
        (
            "jsonb_array_length(tags) * 1000 + coalesce((tags->>1)::int, 0)",
            sum_of(14, ROWS, |i| {
                let tags = tags(i);
                tags.len() as i128 * 1000 + tags.get(1).map_or(0, |t| i128::from(*t))
            }),
        ),
    ];
    for (expression, expected) in sums {
        assert_eq!(
            pg.text(&format!("SELECT sum({expression})::text FROM every")),
            expected.to_string(),
            "sum of {expression}"
        );
    }
    let ids = sample_ids(ROWS);
    let listed: Vec<String> = ids.iter().map(u64::to_string).collect();
    let loaded = pg.text(&format!(
        "SELECT string_agg({PG_ROW}, E'\\n' ORDER BY id) FROM every WHERE id IN ({})",
        listed.join(",")
    ));
    let expected: Vec<String> = ids.iter().map(|&i| pg_row(i)).collect();
    assert_eq!(loaded, expected.join("\n"));
}

#[test]
fn every_parquet_type_loads_into_clickhouse() {
    let clickhouse = ClickHouse::start();
    let dir = scratch();
    let rows = 200_000;
    let path = write_parquet(dir.path(), rows);
    Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args([
            "--table", "every", "--create", "--quiet", "--batch", "20000",
        ])
        .args(["--target", &clickhouse.url()])
        .run()
        .assert_success();
    assert_eq!(
        clickhouse
            .query("SELECT name, type FROM system.columns WHERE table = 'every' FORMAT TSV")
            .unwrap(),
        "id\tNullable(Int64)\ntiny\tNullable(Int16)\nsmall\tNullable(Int16)\n\
         medium\tNullable(Int32)\nunsigned\tNullable(Int64)\nsingle\tNullable(Float32)\n\
         double\tNullable(Float64)\nflag\tNullable(UInt8)\nname\tNullable(String)\n\
         blob\tNullable(String)\nday\tNullable(Date)\nat_utc\tNullable(DateTime(\\'UTC\\'))\n\
         at_local\tNullable(DateTime(\\'UTC\\'))\namount\tNullable(String)\n\
         tags\tNullable(String)"
    );
    assert_eq!(clickhouse.scalar("SELECT count() FROM every"), rows as i64);
    for (column, name) in COLUMNS.iter().enumerate() {
        assert_eq!(
            clickhouse.scalar(&format!("SELECT count() FROM every WHERE isNull({name})")),
            nulls(column, rows),
            "NULLs of {name}"
        );
    }
    let seconds = |i: u64| i128::from(micros(i).div_euclid(1_000_000));
    let sums = [
        ("id", sum_of(0, rows, |i| i as i128)),
        ("tiny", sum_of(1, rows, |i| tiny(i).into())),
        ("small", sum_of(2, rows, |i| small(i).into())),
        ("medium", sum_of(3, rows, |i| medium(i).into())),
        ("unsigned", sum_of(4, rows, |i| unsigned(i).into())),
        ("toInt64(single * 4)", sum_of(5, rows, |i| i as i128)),
        ("toInt64(double * 2)", sum_of(6, rows, |i| i as i128 - 2000)),
        ("flag", sum_of(7, rows, |i| flag(i).into())),
        (
            "lengthUTF8(name)",
            sum_of(8, rows, |i| name(i).chars().count() as i128),
        ),
        ("toUInt32(day)", sum_of(10, rows, |i| day(i).into())),
        ("toUnixTimestamp(at_utc)", sum_of(11, rows, seconds)),
        ("toUnixTimestamp(at_local)", sum_of(12, rows, seconds)),
        (
            "toInt64(round(toFloat64OrZero(assumeNotNull(amount)) * 100))",
            sum_of(13, rows, cents),
        ),
    ];
    for (expression, expected) in sums {
        assert_eq!(
            clickhouse
                .query(&format!("SELECT toString(sum({expression})) FROM every"))
                .unwrap(),
            expected.to_string(),
            "sum of {expression}"
        );
    }
    // Row 1: every column set (row 0's pattern leaves some NULL).
    let one = clickhouse
        .query("SELECT * FROM every WHERE id = 1 FORMAT TSV")
        .unwrap();
    let seconds_text = |i: u64| timestamp(micros(i))[..19].to_string();
    assert_eq!(
        one,
        [
            "1".to_string(),
            tiny(1).to_string(),
            small(1).to_string(),
            medium(1).to_string(),
            unsigned(1).to_string(),
            single(1).to_string(),
            double(1).to_string(),
            "0".to_string(),
            name(1).replace('\t', "\\t"),
            "\\\\x010000ff".to_string(),
            civil(i64::from(day(1))),
            seconds_text(1),
            seconds_text(1),
            amount(1),
            "[1,1]".to_string(),
        ]
        .join("\t")
    );
}

#[test]
fn a_parquet_load_resumes_after_the_batches_it_committed() {
    let pg = Pg::start();
    let dir = scratch();
    let rows = 700_000;
    let path = write_parquet(dir.path(), rows);
    let load = |extra: &[&str]| {
        Loader::new()
            .arg("copy")
            .arg_path(&path)
            .args([
                "--table", "every", "--create", "--quiet", "--batch", "100000",
            ])
            .args(["--run-id", "parquet-resume", "--target", &pg.url()])
            .args(extra)
            .run()
    };
    // The first attempt stops after 400,000 rows: row group 0 and a batch of row group 1, the
    // same batches the whole load numbers 0 to 3.
    load(&["--limit", "400000"]).assert_success();
    assert_eq!(pg.scalar("SELECT count(*) FROM every"), 400_000);
    let report_path = dir.path().join("resumed.json");
    load(&["--resume", "--report", report_path.to_str().unwrap()]).assert_success();
    assert_eq!(pg.scalar("SELECT count(*) FROM every"), rows as i64);
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT id) FROM every"),
        rows as i64
    );
    assert_eq!(
        pg.scalar("SELECT sum(id)::bigint FROM every"),
        (rows * (rows - 1) / 2) as i64
    );
    let report = read_report(&report_path);
    assert_eq!(report["rows_loaded"], rows - 400_000, "{report}");
    assert_eq!(report["resumed"]["skipped_rows"], 400_000, "{report}");
    // Another --batch numbers other batches: refused, naming the first that moved.
    let moved = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--table", "every", "--quiet", "--batch", "70000"])
        .args([
            "--run-id",
            "parquet-resume",
            "--resume",
            "--target",
            &pg.url(),
        ])
        .run();
    assert_eq!(moved.code(), 3, "{}", moved.stderr());
    assert!(
        moved.stderr().contains("cannot resume: batch 0"),
        "{}",
        moved.stderr()
    );
}

#[test]
fn a_killed_parquet_load_resumes_with_every_row_once() {
    let pg = Pg::start();
    let dir = scratch();
    let path = write_parquet(dir.path(), ROWS);
    let load = || {
        Loader::new()
            .arg("copy")
            .arg_path(&path)
            .args(["--table", "every", "--create", "--quiet", "--threads", "2"])
            .args([
                "--batch",
                "2000",
                "--run-id",
                "parquet-kill",
                "--target",
                &pg.url(),
            ])
    };
    let child = load().spawn();
    wait_until(Duration::from_secs(60), "a tenth of the rows", || {
        count_or_zero(&pg, "every") > 100_000
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill -9 loader");
    let _ = wait_with_limit(child, Duration::from_secs(10));
    let after_crash = pg.scalar("SELECT count(*) FROM every");
    assert!(
        after_crash < ROWS as i64,
        "the kill came too late to test anything"
    );
    // The two workers were in different row groups: the committed batches are not one prefix.
    let report_path = dir.path().join("r.json");
    load()
        .args(["--resume", "--report"])
        .arg_path(&report_path)
        .run()
        .assert_success();
    assert_eq!(pg.scalar("SELECT count(*) FROM every"), ROWS as i64);
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT id) FROM every"),
        ROWS as i64
    );
    let report = read_report(&report_path);
    assert_eq!(report["resumed"]["skipped_rows"], after_crash, "{report}");
    assert_eq!(report["rows_loaded"], ROWS as i64 - after_crash, "{report}");
}

#[test]
fn a_value_the_column_cannot_hold_is_a_rejected_row() {
    let pg = Pg::start();
    let dir = scratch();
    let path = dir.path().join("big.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("count", DataType::UInt64, true),
    ]));
    let counts: Vec<Option<u64>> = (0..10u64)
        .map(|i| match i {
            3 => Some(u64::MAX),
            5 => None,
            _ => Some(i * 1_000),
        })
        .collect();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int32Array::from_iter_values(0..10)),
            Arc::new(UInt64Array::from(counts)),
        ],
    )
    .unwrap();
    let mut writer = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let run = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args([
            "--table",
            "big",
            "--create",
            "--quiet",
            "--target",
            &pg.url(),
        ])
        .arg("--reject-file")
        .arg_path(&rejects)
        .run();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(pg.scalar("SELECT count(*) FROM big"), 9);
    assert_eq!(pg.scalar("SELECT sum(count)::bigint FROM big"), 37_000);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["source"], path.display().to_string());
    assert_eq!(lines[0]["line"], 4, "the 4th row, counted from 1");
    assert_eq!(lines[0]["record"], "3,18446744073709551615");
    assert_eq!(
        lines[0]["error"],
        "value 18446744073709551615 is out of range for type bigint"
    );
}

#[test]
fn sniff_prints_the_parquet_schema_the_ddl_and_rows() {
    let dir = scratch();
    let path = write_parquet(dir.path(), 1_000);
    let run = Loader::new()
        .arg("copy")
        .arg_path(&path)
        .args(["--sniff", "--table", "every", "--columns", "id,name,at_utc"])
        .args(["--skip-lines", "2", "--target", "postgres://127.0.0.1:1/x"])
        .run();
    run.assert_success();
    let expected = format!(
        "input:      {}\nformat:     parquet\nrows:       1,000 in 1 row groups\ncolumns:\n  \
         id: Int64 → bigint\n  name: Utf8 → text\n  at_utc: Timestamp(Microsecond, Some(\"UTC\")) \
         → timestamp with time zone\n\nCREATE TABLE IF NOT EXISTS \"every\" (\"id\" bigint, \
         \"name\" text, \"at_utc\" timestamp with time zone);\n\nid | name | at_utc\n",
        path.display()
    );
    let out = run.stdout();
    assert!(out.starts_with(&expected), "{out}");
    let shown: Vec<&str> = out[expected.len()..].lines().collect();
    assert_eq!(shown.len(), 5, "{out}");
    assert_eq!(
        shown[0],
        format!("2 | name 2, \\\"q\\\"\\t✓ | {}+00", timestamp(micros(2)))
    );
}

#[test]
fn parquet_is_refused_where_it_cannot_be_read_by_seeking() {
    let dir = scratch();
    let target = ["--table", "t", "--target", "postgres://127.0.0.1:1/x"];
    let refused = |run: crate::support::Run, words: &str| {
        assert_eq!(run.code(), 2, "{}", run.stderr());
        let stderr = run.stderr();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(words), "{stderr}");
    };
    refused(
        Loader::new()
            .args(["copy", "--format", "parquet"])
            .args(target)
            .run_with_stdin(b"PAR1".to_vec()),
        "is standard input, and Parquet is read by seeking",
    );
    refused(
        Loader::new()
            .args(["copy", "http://127.0.0.1:1/data.parquet"])
            .args(target)
            .run(),
        "is a URL, and Parquet is read by seeking",
    );
    let corrupt = dir.path().join("corrupt.parquet");
    std::fs::write(&corrupt, b"this is not a parquet file at all").unwrap();
    refused(
        Loader::new()
            .arg("copy")
            .arg_path(&corrupt)
            .args(target)
            .run(),
        "corrupt.parquet: cannot read it as Parquet",
    );
    let good = write_parquet(dir.path(), 10);
    refused(
        Loader::new()
            .arg("copy")
            .arg_path(&good)
            .args(["--columns", "id,nope"])
            .args(target)
            .run(),
        "--columns names column `nope`, which",
    );
    refused(
        Loader::new()
            .arg("copy")
            .arg_path(&good)
            .args(["--delimiter", ";"])
            .args(target)
            .run(),
        "--delimiter does not apply to parquet input",
    );
}
