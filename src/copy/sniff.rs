//! The sniffer: reads a sample of the first input (the first `--sniff-rows` records) and works out
//! what the flags did not say: the encoding (a UTF-8 byte order mark, or Windows-1252 when the
//! sample is not UTF-8), the line ending, the delimiter, whether the first record is a header,
//! which null markers a column holds, and each column's type (`infer.rs`). Explicit flags always
//! win over what the sample shows.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use serde::de::{IgnoredAny, MapAccess, Visitor};

use super::batch::{CopyBatch, RawBatch};
use super::infer::ColumnEvidence;
use super::split::{SplitError, Splitter};
use super::{Dialect, Encoding, Input, InputFormat, NULL_MARKERS};
use crate::ddl::{self, Flavor};
use crate::rows::{Batch, Column, Schema, SqlType};
use crate::sql::TableName;
use std::fmt::Write;

/// The delimiters a CSV sample is tried with.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// The longest sample, in bytes.
const MAX_SAMPLE_BYTES: usize = 64 << 20;

/// What the sniffer may decide and how much it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SniffSettings {
    /// Records sampled (`--sniff-rows`).
    pub rows: u64,
    /// `loader copy --sniff`: print what was found and load nothing.
    pub print_only: bool,
    pub delimiter_given: bool,
    pub null_given: bool,
    /// `--header` (true) or `--no-header` (false); `None` lets the sample decide.
    pub header: Option<bool>,
    pub encoding: Option<Encoding>,
    /// `--schema`: column types that replace the inferred ones.
    pub overrides: Vec<(String, SqlType)>,
}

/// What the sample showed.
#[derive(Debug, Clone)]
pub(crate) struct Sniffed {
    pub dialect: Dialect,
    pub header: bool,
    /// Whether the header was decided from the sample (no `--header`/`--no-header`).
    pub header_sniffed: bool,
    pub bom: bool,
    pub crlf: bool,
    /// The column names the header or the NDJSON keys give.
    pub names: Option<Vec<String>>,
    /// One type per column, in order.
    pub types: Vec<SqlType>,
    /// Data records sampled.
    pub sampled: usize,
    /// The first data rows, as parsed.
    pub first_rows: Vec<Vec<Option<String>>>,
}

impl Sniffed {
    /// The named, typed columns, when the names are known.
    pub(crate) fn schema(&self, names: &[String]) -> Option<Schema> {
        (names.len() == self.types.len()).then(|| Schema {
            columns: names
                .iter()
                .zip(&self.types)
                .map(|(name, &sql_type)| Column {
                    name: name.clone().into(),
                    sql_type,
                })
                .collect::<Vec<_>>()
                .into(),
        })
    }
}

impl Sniffed {
    /// What `loader copy --sniff` prints: the dialect, the `CREATE TABLE` that `--create` would
    /// run on the target, and the first rows as parsed.
    pub(crate) fn describe(
        &self,
        input: &str,
        table: &TableName,
        flavor: Flavor,
        columns: Option<&[String]>,
    ) -> String {
        let mut out = String::new();
        let yes_no = |yes: bool| if yes { "yes" } else { "no" };
        let dialect = &self.dialect;
        let format = format!("{:?}", dialect.format).to_lowercase();
        let _ = writeln!(out, "input:      {input}");
        let _ = writeln!(out, "format:     {format}");
        let mut encoding = dialect.encoding.label().to_string();
        if self.bom {
            encoding.push_str(", with a byte order mark");
        }
        let _ = writeln!(out, "encoding:   {encoding}");
        let _ = writeln!(out, "line end:   {}", if self.crlf { "CRLF" } else { "LF" });
        if dialect.format != InputFormat::Ndjson {
            let delimiter = match dialect.delimiter {
                b'\t' => "tab (\\t)".to_string(),
                byte => format!("{}", char::from(byte)),
            };
            let _ = writeln!(out, "delimiter:  {delimiter}");
            if dialect.format == InputFormat::Csv {
                let quote = char::from(dialect.quote);
                let _ = writeln!(
                    out,
                    "quote:      {quote} (escaped by doubling: {quote}{quote})"
                );
            }
            let how = if self.header_sniffed {
                "sniffed"
            } else {
                "given"
            };
            let _ = writeln!(out, "header:     {} ({how})", yes_no(self.header));
        }
        let null = match dialect.null_string.as_slice() {
            b"" => "an empty unquoted field".to_string(),
            other => String::from_utf8_lossy(other).into_owned(),
        };
        let _ = writeln!(out, "null:       {null}");
        let names = columns
            .map(<[String]>::to_vec)
            .or_else(|| self.names.clone())
            .unwrap_or_else(|| {
                (1..=self.types.len())
                    .map(|i| format!("column{i}"))
                    .collect()
            });
        let marked: Vec<&str> = names
            .iter()
            .zip(&dialect.null_markers)
            .filter(|(_, &marked)| marked)
            .map(|(name, _)| name.as_str())
            .collect();
        if !marked.is_empty() {
            let markers: Vec<String> = NULL_MARKERS.iter().map(|m| text(m)).collect();
            let _ = writeln!(
                out,
                "            also {} in {}",
                markers.join(", "),
                marked.join(", ")
            );
        }
        let _ = writeln!(out, "sampled:    {} rows", self.sampled);
        out.push('\n');
        if let Some(schema) = self.schema(&names) {
            let _ = writeln!(out, "{};", ddl::create_table(flavor, table, &schema, true));
            out.push('\n');
        }
        let _ = writeln!(out, "{}", names.join(" | "));
        for row in &self.first_rows {
            let values: Vec<String> = row
                .iter()
                .map(|v| {
                    v.as_deref()
                        .map_or("NULL".into(), |v| v.escape_debug().to_string())
                })
                .collect();
            let _ = writeln!(out, "{}", values.join(" | "));
        }
        out
    }
}

/// Why the sample cannot be read; the load does not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SniffError {
    #[error("cannot read {input} to sniff it: {err}")]
    Read { input: String, err: std::io::Error },
    #[error("{input}: {err}")]
    Split { input: String, err: SplitError },
    #[error("--schema needs the column names: give --header or --columns")]
    Unnamed,
    #[error(
        "--schema names column `{name}`, which the input does not have; its columns are {columns}"
    )]
    UnknownColumn { name: String, columns: String },
}

/// Rows of the sample `--sniff` prints.
const SHOWN_ROWS: usize = 5;

/// Sniffs `input` (a regular file: it is opened again for the load) starting from `given`, the
/// dialect of the flags; `columns` are the names of `--columns`.
pub(crate) fn sniff(
    input: &Input,
    given: &Dialect,
    settings: &SniffSettings,
    skip_lines: u64,
    columns: Option<&[String]>,
    max_record_bytes: usize,
) -> Result<Sniffed, SniffError> {
    let read_error = |err| SniffError::Read {
        input: input.name(),
        err,
    };
    let split_error = |err| SniffError::Split {
        input: input.name(),
        err,
    };
    // Standard input is sampled once, and the load reads the sample again; a file is opened
    // twice.
    let (raw, input_may_go_on): (Box<dyn Read + Send>, bool) = match input {
        Input::Stdin => {
            let (sample, whole) =
                super::reader::sample_stdin(skip_lines + settings.rows + 2, MAX_SAMPLE_BYTES)
                    .map_err(read_error)?;
            (Box::new(std::io::Cursor::new(sample)), !whole)
        }
        _ => (input.open_raw().map_err(read_error)?, false),
    };
    let mut stream = BufReader::with_capacity(1 << 16, raw);
    let bom = stream
        .fill_buf()
        .map_err(read_error)?
        .starts_with(b"\xEF\xBB\xBF");
    if bom {
        stream.consume(3);
    }
    let mut splitter =
        Splitter::new(Box::new(stream), given.framing()).max_record_bytes(max_record_bytes);
    splitter.prefetch().map_err(split_error)?;
    splitter.skip_lines(skip_lines).map_err(split_error)?;
    let chunk = splitter
        .next_chunk(settings.rows + 1, MAX_SAMPLE_BYTES)
        .map_err(split_error)?;
    // The sample is the whole input when nothing follows it.
    let whole = !input_may_go_on && splitter.take_record().map_err(split_error)?.is_none();
    let mut dialect = given.clone();
    let header_default = settings.header.unwrap_or(false);
    let Some(mut chunk) = chunk else {
        return Ok(Sniffed {
            dialect,
            header: header_default,
            header_sniffed: false,
            bom,
            crlf: false,
            names: None,
            types: Vec::new(),
            sampled: 0,
            first_rows: Vec::new(),
        });
    };
    dialect.encoding = settings
        .encoding
        .unwrap_or(if bom || !reads_as_latin1(&chunk.data) {
            Encoding::Utf8
        } else {
            Encoding::Latin1
        });
    chunk.data = dialect.encoding.decode_all(chunk.data);
    let first_end = memchr::memchr(b'\n', &chunk.data).unwrap_or(0);
    let crlf = first_end > 0 && chunk.data[first_end - 1] == b'\r';
    let (width, names) = match dialect.format {
        InputFormat::Ndjson | InputFormat::Parquet => {
            let keys = match columns {
                Some(columns) => columns.to_vec(),
                None => ndjson_keys(&chunk.data),
            };
            (keys.len(), Some(keys))
        }
        InputFormat::Csv | InputFormat::Tsv => {
            let quote = (dialect.format == InputFormat::Csv).then_some(dialect.quote);
            if dialect.format == InputFormat::Csv && !settings.delimiter_given {
                dialect.delimiter = choose_delimiter(&chunk.data, dialect.quote);
            }
            (field_counts(&chunk.data, dialect.delimiter, quote).0, None)
        }
    };
    let first_line = chunk.first_line;
    let rows = parse(&dialect, width, names.clone(), chunk);
    let (header, header_sniffed) = match (dialect.format, settings.header) {
        (InputFormat::Ndjson | InputFormat::Parquet, _) => (false, false),
        (_, Some(header)) => (header, false),
        (_, None) if columns.is_some() => (false, false),
        (_, None) => (
            rows.first().is_some_and(|(line, first)| {
                *line == first_line && looks_like_header(first, &rows[1..])
            }),
            true,
        ),
    };
    let data = if header && rows.first().is_some_and(|(line, _)| *line == first_line) {
        &rows[1..]
    } else {
        &rows[..]
    };
    let data = &data[..data.len().min(settings.rows as usize)];
    let names = names.or_else(|| {
        header.then(|| {
            rows.first().map_or_else(Vec::new, |(_, first)| {
                first
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        name.as_deref()
                            .map_or_else(|| format!("column{}", i + 1), text)
                    })
                    .collect()
            })
        })
    });
    let evidence = evidence(data, width);
    // Whole numbers of a sample that is not the whole input keep headroom: an id counting past
    // 32,767 after the sample must not break its column.
    let mut types: Vec<SqlType> = evidence
        .iter()
        .map(|seen| match seen.sql_type() {
            SqlType::Int2 if !whole => SqlType::Int4,
            other => other,
        })
        .collect();
    let named = names.clone().or(columns.map(<[String]>::to_vec));
    if !settings.overrides.is_empty() && named.is_none() {
        return Err(SniffError::Unnamed);
    }
    if let Some(names) = &named {
        for (name, sql_type) in &settings.overrides {
            let Some(i) = names.iter().position(|n| n == name) else {
                return Err(SniffError::UnknownColumn {
                    name: name.clone(),
                    columns: names.join(", "),
                });
            };
            types[i] = *sql_type;
        }
    }
    if !settings.null_given {
        dialect.null_markers = evidence
            .iter()
            .zip(&types)
            .map(|(seen, &sql_type)| seen.markers > 0 && sql_type != SqlType::Text)
            .collect();
    }
    let shown = Arc::new(dialect.clone());
    let first_rows = data
        .iter()
        .take(SHOWN_ROWS)
        .map(|(_, row)| {
            row.iter()
                .enumerate()
                .map(|(column, value)| {
                    value
                        .as_deref()
                        .filter(|value| !shown.is_null_marker(column, value))
                        .map(text)
                })
                .collect()
        })
        .collect();
    Ok(Sniffed {
        dialect,
        header,
        header_sniffed,
        bom,
        crlf,
        names,
        types,
        sampled: data.len(),
        first_rows,
    })
}

/// A sampled row: its line and its fields (`None` for NULL).
type SampleRow = (u64, Vec<Option<Vec<u8>>>);

/// The sample's records parsed as the load parses them, `width` fields each (the records of
/// another width left out).
fn parse(
    dialect: &Dialect,
    width: usize,
    keys: Option<Vec<String>>,
    chunk: super::Chunk,
) -> Vec<SampleRow> {
    let placeholder: Vec<String> = (1..=width).map(|i| format!("column{i}")).collect();
    let keys: Arc<[String]> = keys.unwrap_or_else(|| placeholder.clone()).into();
    let mut batch = CopyBatch::new(
        Arc::new(dialect.clone()),
        Arc::new(Schema::text(&placeholder)),
        Arc::from(vec!["sample".to_string()]),
    )
    .with_keys(keys);
    batch.fill(RawBatch {
        seq: 0,
        input: 0,
        chunk,
    });
    (0..batch.len())
        .map(|row| {
            let fields = batch
                .row_fields(row)
                .map(|field| field.map(<[u8]>::to_vec))
                .collect();
            (batch.origin(row).line, fields)
        })
        .collect()
}

/// Per column, what the values of `rows` showed.
fn evidence(rows: &[SampleRow], width: usize) -> Vec<ColumnEvidence> {
    let mut columns = vec![ColumnEvidence::default(); width];
    for (_, row) in rows {
        for (column, value) in columns.iter_mut().zip(row) {
            match value {
                Some(value) if NULL_MARKERS.contains(&value.as_slice()) => column.markers += 1,
                Some(value) => column.see(value),
                None => {}
            }
        }
    }
    columns
}

/// Whether `first` names the columns of `rest`: every field of it is a distinct, non-empty name,
/// and at least one column whose other values share a type (not text) has a first field that is
/// not of that type, while no such column's first field is.
fn looks_like_header(first: &[Option<Vec<u8>>], rest: &[SampleRow]) -> bool {
    let names: Vec<&[u8]> = first.iter().filter_map(|f| f.as_deref()).collect();
    if names.len() != first.len()
        || names
            .iter()
            .enumerate()
            .any(|(i, n)| n.is_empty() || names[..i].contains(n))
    {
        return false;
    }
    let mut named = false;
    for (column, evidence) in evidence(rest, first.len()).iter().enumerate() {
        let sql_type = evidence.sql_type();
        if sql_type == SqlType::Text {
            continue;
        }
        let mut with_first = evidence.clone();
        with_first.see(names[column]);
        if with_first.sql_type() == sql_type || NULL_MARKERS.contains(&names[column]) {
            return false;
        }
        named = true;
    }
    named
}

/// The delimiter that splits the sample's records into the same number of fields most often
/// (more than one); `,` when none does.
fn choose_delimiter(sample: &[u8], quote: u8) -> u8 {
    let mut best = (b',', 0.0, 0);
    for delimiter in DELIMITERS {
        let (width, share) = field_counts(sample, delimiter, Some(quote));
        if width > 1 && (share, width) > (best.1, best.2) {
            best = (delimiter, share, width);
        }
    }
    best.0
}

/// The most common field count of the sample's first records split at `delimiter` (quotes
/// respected when `quote` is given), and the share of records that have it.
fn field_counts(sample: &[u8], delimiter: u8, quote: Option<u8>) -> (usize, f64) {
    let mut counts: Vec<usize> = Vec::new();
    let (mut fields, mut in_quotes, mut empty) = (1, false, true);
    for &byte in sample {
        match byte {
            b'\n' if !in_quotes => {
                if !empty {
                    counts.push(fields);
                }
                (fields, empty) = (1, true);
                if counts.len() == 1000 {
                    break;
                }
                continue;
            }
            b'\r' if !in_quotes => continue,
            _ if Some(byte) == quote => in_quotes = !in_quotes,
            _ if byte == delimiter && !in_quotes => fields += 1,
            _ => {}
        }
        empty = false;
    }
    if counts.is_empty() {
        return (0, 0.0);
    }
    let mut tally: Vec<(usize, usize)> = Vec::new();
    for count in &counts {
        match tally.iter_mut().find(|(c, _)| c == count) {
            Some((_, seen)) => *seen += 1,
            None => tally.push((*count, 1)),
        }
    }
    let (width, seen) = tally
        .into_iter()
        .max_by_key(|&(width, seen)| (seen, width))
        .expect("one count at least");
    (width, seen as f64 / counts.len() as f64)
}

/// The keys of the sample's JSON objects, in the order first seen.
fn ndjson_keys(sample: &[u8]) -> Vec<String> {
    struct Keys<'a>(&'a mut Vec<String>);
    impl<'de> Visitor<'de> for Keys<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
            while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                if !self.0.contains(&key) {
                    self.0.push(key);
                }
            }
            Ok(())
        }
    }
    let mut keys = Vec::new();
    for line in sample.split(|&b| b == b'\n') {
        let mut reader = serde_json::Deserializer::from_slice(line);
        // A line that is not an object is the load's to reject; it names no keys.
        let _ = serde::Deserializer::deserialize_map(&mut reader, Keys(&mut keys));
    }
    keys
}

/// Whether a sample is Latin-1 rather than UTF-8: it has bytes that are not UTF-8, and no
/// character beyond ASCII that is (a UTF-8 file with a stray bad byte stays UTF-8, and the record
/// holding the byte is rejected).
fn reads_as_latin1(sample: &[u8]) -> bool {
    let (mut invalid, mut multibyte) = (false, false);
    for chunk in sample.utf8_chunks() {
        invalid |= !chunk.invalid().is_empty();
        multibyte |= !chunk.valid().is_ascii();
    }
    invalid && !multibyte
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniffed(bytes: &[u8], format: InputFormat) -> Sniffed {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample");
        std::fs::write(&path, bytes).unwrap();
        let settings = SniffSettings {
            rows: 20_000,
            print_only: false,
            delimiter_given: false,
            null_given: false,
            header: None,
            encoding: None,
            overrides: Vec::new(),
        };
        let input = Input::File { path, gzip: false };
        sniff(
            &input,
            &Dialect::new(format, None, None, None),
            &settings,
            0,
            None,
            crate::copy::split::DEFAULT_MAX_RECORD_BYTES,
        )
        .unwrap()
    }

    #[test]
    fn a_semicolon_latin1_file_with_a_header_and_markers() {
        let found = sniffed(
            b"id;name;price\r\n1;caf\xe9;1.5\r\n2;\"a;b\";NA\r\n3;x;NULL\r\n",
            InputFormat::Csv,
        );
        assert_eq!(found.dialect.delimiter, b';');
        assert_eq!(found.dialect.encoding, Encoding::Latin1);
        assert!(found.header && found.header_sniffed && found.crlf && !found.bom);
        assert_eq!(
            found.names.as_deref(),
            Some(&["id", "name", "price"].map(String::from)[..])
        );
        assert_eq!(found.types, [SqlType::Int2, SqlType::Text, SqlType::Float8]);
        assert_eq!(found.dialect.null_markers, [false, false, true]);
        assert_eq!(found.first_rows[0][1].as_deref(), Some("café"));
        assert_eq!(found.first_rows[1][2], None);
        assert!(
            !reads_as_latin1(b"caf\xc3\xa9 \xff"),
            "UTF-8 with a stray byte"
        );
        assert!(reads_as_latin1(b"caf\xe9"));
        assert!(!reads_as_latin1(b"plain"));
    }

    #[test]
    fn no_header_when_the_first_row_fits_the_types() {
        let found = sniffed(
            b"\xEF\xBB\xBF1|2026-01-01\n2|2026-01-02\n",
            InputFormat::Csv,
        );
        assert_eq!(found.dialect.delimiter, b'|');
        assert!(found.bom && !found.header);
        assert_eq!(found.types, [SqlType::Int2, SqlType::Date]);
        let narrow_first = sniffed(b"1,x1\n7000000,x2\n", InputFormat::Csv);
        assert!(!narrow_first.header, "1 fits the integer column of 7000000");
        let texts = sniffed(b"a,b\nc,d\n", InputFormat::Csv);
        assert!(!texts.header, "a file of text alone keeps its first row");
    }

    #[test]
    fn ndjson_keys_in_order_and_nested_values_as_jsonb() {
        let found = sniffed(
            b"{\"id\":1,\"tags\":[\"a\"],\"at\":\"2026-01-01T00:00:00Z\"}\n{\"id\":2,\"meta\":{\"k\":1}}\n",
            InputFormat::Ndjson,
        );
        assert_eq!(
            found.names.as_deref(),
            Some(&["id", "tags", "at", "meta"].map(String::from)[..])
        );
        assert_eq!(
            found.types,
            [
                SqlType::Int2,
                SqlType::Jsonb,
                SqlType::Timestamptz,
                SqlType::Jsonb
            ]
        );
    }
}
