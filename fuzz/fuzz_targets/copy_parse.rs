//! `copy_parse`: copy mode's record parser and encoders (`src/copy/batch.rs`, `src/copy/typed.rs`)
//! on arbitrary bytes in any dialect (format, delimiter, quote, null string) and column types.
//!
//! The input is split into chunks by the real splitter, as the reader thread does, and each chunk
//! is parsed by a `CopyBatch`, as a worker does. Checked:
//! - every non-blank record of a chunk is a row or a parse reject: `len() + invalid().len() ==
//!   chunk.records` (what `--resume` compares), and rows and rejects name lines inside the chunk,
//!   in order;
//! - every row format encodes without a panic; binary COPY either refuses (`Unencodable`) or gives
//!   tuples of the right field count whose lengths add up; the JSON formats are valid JSON with one
//!   value per column; with two or more columns, the CSV and text COPY encodings parse back (with
//!   the default dialects) to the same rows;
//! - a header line parses to distinct, non-empty names or an error;
//! - one field through `encode_field` agrees with Rust's own integer and float parsing.
#![no_main]

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use loader::fuzzing;
use loader::parts::{
    Batch, Chunk, Column, CopyBatch, Dialect, InputFormat, RawBatch, RowFormat, Schema, SqlType,
};

const TYPES: [SqlType; 16] = [
    SqlType::Text,
    SqlType::Int2,
    SqlType::Int4,
    SqlType::Int8,
    SqlType::Float4,
    SqlType::Float8,
    SqlType::Bool,
    SqlType::Date,
    SqlType::Timestamp,
    SqlType::Timestamptz,
    SqlType::Uuid,
    SqlType::Bytea,
    SqlType::Json,
    SqlType::Jsonb,
    SqlType::Float4Array,
    SqlType::Other,
];
const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

fn schema(types: &[SqlType]) -> Schema {
    Schema {
        columns: Cow::Owned(
            types
                .iter()
                .zip(NAMES)
                .map(|(&sql_type, name)| Column {
                    name: Cow::Borrowed(name),
                    sql_type,
                })
                .collect(),
        ),
    }
}

/// An ASCII byte that --delimiter and --quote accept (not a line break).
fn ascii(byte: u8) -> u8 {
    match byte & 0x7f {
        b'\n' | b'\r' => b'|',
        byte => byte,
    }
}

fn encoded(batch: &dyn Batch, format: RowFormat) -> Vec<u8> {
    let mut out = Vec::new();
    batch
        .encode(0..batch.len(), format, &mut out)
        .expect("only binary COPY can refuse a value");
    out
}

/// The rows of `batch` as JSON arrays (a lossless view for valid UTF-8, NULL as null).
fn as_json(batch: &dyn Batch) -> serde_json::Value {
    let mut text = b"[".to_vec();
    text.extend_from_slice(&encoded(batch, RowFormat::JsonArrays));
    text.push(b']');
    serde_json::from_slice(&text).expect("JsonArrays is JSON")
}

/// Parses `data` (whole records) as copy mode does, with the default dialect of `format`.
fn reparse(format: InputFormat, columns: usize, data: Vec<u8>) -> CopyBatch {
    let mut batch = CopyBatch::new(
        Arc::new(Dialect::new(format, None, None, None)),
        Arc::new(schema(&vec![SqlType::Text; columns])),
        Arc::from(vec!["again".to_string()]),
    );
    batch.fill(RawBatch {
        seq: 0,
        input: 0,
        chunk: Chunk {
            data,
            first_line: 1,
            records: 0,
        },
    });
    batch
}

fn check_binary(out: &[u8], rows: usize, columns: usize) {
    let mut at = 0;
    let mut take = |n: usize| {
        let bytes = &out[at..at + n];
        at += n;
        bytes
    };
    for _ in 0..rows {
        let count = i16::from_be_bytes(take(2).try_into().unwrap());
        assert_eq!(count as usize, columns, "binary tuple field count");
        for _ in 0..columns {
            let len = i32::from_be_bytes(take(4).try_into().unwrap());
            assert!(len >= -1, "binary field length {len}");
            if len > 0 {
                take(len as usize);
            }
        }
    }
    assert_eq!(at, out.len(), "binary tuples fill the output exactly");
}

/// One field through `encode_field`, against Rust's own parsing where the rules match.
fn check_field(sql_type: SqlType, text: &[u8]) {
    let mut out = Vec::new();
    let result = fuzzing::encode_field(sql_type, text, &mut out);
    if result.is_ok() {
        let len = i32::from_be_bytes(out[..4].try_into().unwrap());
        assert_eq!(len as usize, out.len() - 4, "field length prefix");
    }
    let trimmed = std::str::from_utf8(text).ok().map(str::trim_ascii);
    let payload: &[u8] = out.get(4..).unwrap_or_default();
    match sql_type {
        SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => {
            let std = trimmed
                .and_then(|t| t.parse::<i64>().ok())
                .filter(|&v| match sql_type {
                    SqlType::Int2 => i16::try_from(v).is_ok(),
                    SqlType::Int4 => i32::try_from(v).is_ok(),
                    _ => true,
                });
            let ours = result.ok().map(|()| match payload.len() {
                2 => i64::from(i16::from_be_bytes(payload.try_into().unwrap())),
                4 => i64::from(i32::from_be_bytes(payload.try_into().unwrap())),
                _ => i64::from_be_bytes(payload.try_into().unwrap()),
            });
            assert_eq!(ours, std, "integer {:?}", String::from_utf8_lossy(text));
        }
        SqlType::Float8 if result.is_ok() => {
            let std: f64 = trimmed.unwrap().parse().unwrap();
            assert_eq!(payload, std.to_bits().to_be_bytes(), "float8");
            assert!(std.is_finite());
        }
        SqlType::Float4 if result.is_ok() => {
            let std: f32 = trimmed.unwrap().parse().unwrap();
            assert_eq!(payload, std.to_bits().to_be_bytes(), "float4");
            assert!(std.is_finite());
        }
        SqlType::Bool if result.is_ok() => assert!(payload == [0] || payload == [1]),
        SqlType::Uuid if result.is_ok() => assert_eq!(payload.len(), 16),
        SqlType::Date if result.is_ok() => assert_eq!(payload.len(), 4),
        SqlType::Timestamp | SqlType::Timestamptz if result.is_ok() => {
            assert_eq!(payload.len(), 8)
        }
        _ => {}
    }
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 5 {
        return;
    }
    let (head, data) = input.split_at(5);
    let format =
        [InputFormat::Csv, InputFormat::Tsv, InputFormat::Ndjson][usize::from(head[0] % 3)];
    let columns = usize::from(head[0] / 3 % 5) + 1;
    let types: Vec<SqlType> = (0..columns)
        .map(|i| TYPES[usize::from(head[1].rotate_left(i as u32 * 3) ^ head[4]) % TYPES.len()])
        .collect();
    let custom = head[2] & 1 != 0;
    let delimiter = (custom && format != InputFormat::Ndjson).then(|| ascii(head[3]));
    let mut quote = (custom && format == InputFormat::Csv).then(|| ascii(head[3].rotate_left(3)));
    if format == InputFormat::Csv && quote.unwrap_or(b'"') == delimiter.unwrap_or(b',') {
        quote = None;
        if delimiter == Some(b'"') {
            return;
        }
    }
    let null_string = match (format, head[2] >> 1 & 3) {
        (InputFormat::Ndjson, _) | (_, 0) => None,
        (_, 1) => Some("NULL"),
        (_, 2) => Some(""),
        _ => Some("\\N"),
    };
    let dialect = Dialect::new(format, delimiter, quote, null_string);
    let max_records = u64::from(head[2] >> 3 & 7) + 1;

    if format != InputFormat::Ndjson {
        let first_line = data.split(|&b| b == b'\n').next().unwrap_or_default();
        if let Ok(names) = fuzzing::parse_header(dialect.clone(), first_line) {
            for (i, name) in names.iter().enumerate() {
                assert!(!name.is_empty(), "an empty header name");
                assert!(!names[..i].contains(name), "a header name twice");
            }
        }
    }
    check_field(types[0], data.get(..40).unwrap_or(data));

    let schema = Arc::new(schema(&types));
    let mut batch = CopyBatch::new(
        Arc::new(dialect.clone()),
        Arc::clone(&schema),
        Arc::from(vec!["fuzz".to_string()]),
    );
    let mut splitter = fuzzing::splitter(
        Box::new(io::Cursor::new(data.to_vec())),
        dialect.framing(),
        4096,
    );
    let mut seq = 0;
    while let Some(chunk) = splitter
        .next_chunk(max_records, usize::MAX)
        .expect("no read errors")
    {
        let (first_line, records) = (chunk.first_line, chunk.records);
        let end_line = first_line + chunk.data.iter().filter(|&&b| b == b'\n').count() as u64;
        batch.fill(RawBatch {
            seq,
            input: 0,
            chunk,
        });
        seq += 1;
        let rows = batch.len();
        assert_eq!(
            (rows + batch.invalid().len()) as u64,
            records,
            "rows and parse rejects add up to the chunk's records"
        );
        let mut lines: Vec<u64> = (0..rows).map(|row| batch.origin(row).line).collect();
        let rejected: Vec<u64> = batch.invalid().iter().map(|r| r.origin.line).collect();
        for line in lines.iter().chain(&rejected) {
            assert!(
                (first_line..end_line).contains(line),
                "line {line} outside the chunk"
            );
        }
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "row lines in order");
        lines.extend(&rejected);
        lines.sort_unstable();
        assert!(
            lines.windows(2).all(|w| w[0] < w[1]),
            "one record per line start"
        );
        if rows == 0 {
            continue;
        }

        let mut binary = Vec::new();
        if batch
            .encode(0..rows, RowFormat::CopyBinary, &mut binary)
            .is_ok()
        {
            check_binary(&binary, rows, columns);
        }
        let _ = encoded(&batch, RowFormat::SqlValues);
        let json = as_json(&batch);
        let json_rows = json.as_array().unwrap();
        assert_eq!(json_rows.len(), rows);
        assert!(json_rows
            .iter()
            .all(|row| row.as_array().unwrap().len() == columns));
        for format in [RowFormat::Ndjson, RowFormat::JsonEachRow] {
            let text = encoded(&batch, format);
            let objects: Vec<serde_json::Value> = text
                .split(|&b| b == b'\n')
                .filter(|line| !line.is_empty())
                .map(|line| serde_json::from_slice(line).expect("an NDJSON line is JSON"))
                .collect();
            assert_eq!(objects.len(), rows);
            assert!(objects
                .iter()
                .all(|o| o.as_object().unwrap().len() == columns));
        }
        // A lone column's NULL (CSV) or empty string (text) is a blank line, which copy mode
        // skips: round trips need two columns or more.
        // Values that are not UTF-8 (a `\xff` escape in text format) go to the server as they
        // are; parsed back, their record is refused as PostgreSQL would refuse it.
        let lossless = !json.to_string().contains('\u{fffd}');
        if columns >= 2 && lossless {
            for (format, input) in [
                (RowFormat::Csv, InputFormat::Csv),
                (RowFormat::CopyText, InputFormat::Tsv),
            ] {
                let again = reparse(input, columns, encoded(&batch, format));
                assert!(
                    again.invalid().is_empty(),
                    "{format:?} parses back without rejects"
                );
                assert_eq!(as_json(&again), json, "{format:?} round trip");
            }
        }
    }
});
