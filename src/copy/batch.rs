//! A worker's copy batch: parses the records of one chunk into fields (CSV and TSV with
//! PostgreSQL's own rules, NDJSON by key), sets aside the records that cannot be rows (wrong field
//! count, invalid UTF-8, bad JSON) with a message worded as the server words it, and encodes the
//! rows in every [`RowFormat`]. Buffers are reused from chunk to chunk.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::split::Chunk;
use super::typed;
use super::{Dialect, InputFormat};
use crate::encode::{self, binary};
use crate::reject::Reject;
use crate::reject::RowOrigin;
use crate::rows::{Batch, RowEncoders, RowFormat, Schema, SqlType, Unencodable};

/// A chunk in hand, as the reader sent it.
#[derive(Debug, Clone)]
pub struct RawBatch {
    /// Sequence number over the whole run (all inputs): the ledger key.
    pub seq: u64,
    /// Index of the input in the run's list of input names.
    pub input: usize,
    pub chunk: Chunk,
}

/// A field's bytes in `values`, or NULL.
#[derive(Debug, Clone, Copy)]
struct Field {
    start: u32,
    end: u32,
}

impl Field {
    const NULL: Field = Field {
        start: u32::MAX,
        end: u32::MAX,
    };
}

/// A parsed row: where its record is in the chunk and which line it starts on.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    raw: Range<usize>,
}

/// One worker's reused batch.
#[derive(Debug, Clone)]
pub struct CopyBatch {
    dialect: Arc<Dialect>,
    schema: Arc<Schema>,
    /// The NDJSON key of each column: the name as given (`--columns`), else the table's.
    keys: Arc<[String]>,
    inputs: Arc<[String]>,
    seq: u64,
    input: usize,
    first_line: u64,
    data: Vec<u8>,
    values: Vec<u8>,
    /// `schema.columns.len()` fields per row.
    fields: Vec<Field>,
    rows: Vec<Row>,
    invalid: Vec<Reject>,
    /// Records set aside for their field count, and the field count of the first of them.
    wrong_widths: (usize, Option<usize>),
}

impl CopyBatch {
    pub fn new(dialect: Arc<Dialect>, schema: Arc<Schema>, inputs: Arc<[String]>) -> CopyBatch {
        CopyBatch {
            keys: schema.columns.iter().map(|c| c.name.to_string()).collect(),
            dialect,
            schema,
            inputs,
            seq: 0,
            input: 0,
            first_line: 0,
            data: Vec::new(),
            values: Vec::new(),
            fields: Vec::new(),
            rows: Vec::new(),
            invalid: Vec::new(),
            wrong_widths: (0, None),
        }
    }

    /// Takes NDJSON values by these keys, one per column, instead of the columns' names.
    pub fn with_keys(mut self, keys: Arc<[String]>) -> CopyBatch {
        self.keys = keys;
        self
    }

    /// Parses `raw` into this batch, replacing what it held.
    pub fn fill(&mut self, raw: RawBatch) {
        self.seq = raw.seq;
        self.input = raw.input;
        self.first_line = raw.chunk.first_line;
        self.data = raw.chunk.data;
        self.values.clear();
        self.fields.clear();
        self.rows.clear();
        self.invalid.clear();
        self.wrong_widths = (0, None);
        let utf8_ok = std::str::from_utf8(&self.data).is_ok();
        let mut line = self.first_line;
        let mut start = 0;
        while start < self.data.len() {
            let fields_before = self.fields.len();
            let values_before = self.values.len();
            let parsed = match self.dialect.format {
                InputFormat::Csv => self.parse_csv(start),
                InputFormat::Tsv | InputFormat::Ndjson | InputFormat::Parquet => {
                    let (end, lines) = if self.dialect.format == InputFormat::Tsv {
                        escaped_record_end(&self.data, start)
                    } else {
                        let end = memchr::memchr(b'\n', &self.data[start..])
                            .map_or(self.data.len(), |i| start + i + 1);
                        (end, 1)
                    };
                    let record = trim_line_end(&self.data[start..end]);
                    let result = if record.is_empty() {
                        Ok(())
                    } else if self.dialect.format == InputFormat::Tsv {
                        self.parse_tsv(start..start + record.len())
                    } else {
                        self.parse_ndjson(start..start + record.len())
                    };
                    Parsed { end, lines, result }
                }
            };
            let raw = start..parsed.end;
            let record = trim_line_end(&self.data[raw.clone()]);
            let mut result = parsed.result;
            if result.is_ok() && !record.is_empty() {
                result = self.check_row(fields_before, record, utf8_ok);
                let width = self.fields.len() - fields_before;
                if width != self.schema.columns.len() {
                    self.wrong_widths.0 += 1;
                    self.wrong_widths.1.get_or_insert(width);
                }
            }
            match result {
                Ok(()) if record.is_empty() => {
                    self.fields.truncate(fields_before);
                    self.values.truncate(values_before);
                }
                Ok(()) => self.rows.push(Row { line, raw }),
                Err(error) => {
                    self.fields.truncate(fields_before);
                    self.values.truncate(values_before);
                    self.invalid.push(Reject {
                        origin: self.origin_of(line, raw),
                        kind: "parse",
                        error,
                    });
                }
            }
            line += parsed.lines;
            start = parsed.end;
        }
    }

    /// Fills this batch with `rows` rows whose cells `fill` writes column by column (an input
    /// that is not text: Parquet), replacing what it held. Row `i` is row `first_row + i` of
    /// input `input`; a row `fill` rejects is set aside with its reason, the others load.
    pub(crate) fn fill_cells(
        &mut self,
        seq: u64,
        input: usize,
        first_row: u64,
        rows: usize,
        fill: impl FnOnce(&mut CellWriter<'_>),
    ) -> Result<(), String> {
        self.seq = seq;
        self.input = input;
        self.first_line = first_row;
        self.data.clear();
        self.values.clear();
        self.fields.clear();
        self.rows.clear();
        self.invalid.clear();
        self.wrong_widths = (0, None);
        let width = self.schema.columns.len();
        self.fields.resize(rows * width, Field::NULL);
        let mut rejected = Vec::new();
        fill(&mut CellWriter {
            values: &mut self.values,
            fields: &mut self.fields,
            width,
            rejected: &mut rejected,
        });
        // Field offsets are 32-bit, as a text chunk is at most 16 MiB.
        if u32::try_from(self.values.len()).is_err() {
            return Err(format!(
                "batch {seq} holds more than 4 GiB of values; lower --batch"
            ));
        }
        rejected.sort_by_key(|(row, _)| *row);
        rejected.dedup_by_key(|(row, _)| *row);
        let mut rejected = rejected.into_iter().peekable();
        let mut kept = 0;
        for row in 0..rows {
            let line = first_row + row as u64;
            if let Some((_, error)) = rejected.next_if(|(at, _)| *at == row) {
                let origin = RowOrigin {
                    source: self.inputs[self.input].clone(),
                    line,
                    record: self.cells_as_csv(row),
                };
                self.invalid.push(Reject {
                    origin,
                    kind: "data",
                    error,
                });
                continue;
            }
            // Rows before `row` only move down, so row `row`'s cells are still in place.
            if kept != row {
                self.fields
                    .copy_within(row * width..(row + 1) * width, kept * width);
            }
            self.rows.push(Row { line, raw: 0..0 });
            kept += 1;
        }
        self.fields.truncate(kept * width);
        Ok(())
    }

    /// Row `row`'s cells as one CSV record: what a reject file shows of a row that came without
    /// text of its own.
    fn cells_as_csv(&self, row: usize) -> String {
        let mut record = Vec::new();
        self.csv(row, &mut record);
        String::from_utf8_lossy(&record).into_owned()
    }

    /// What makes this batch, the first of an input, look like the wrong layout, with its fix:
    /// every record with another field count than the table's columns, or a first line that
    /// names the columns (no `--header`). Checked on the load's first batch, which stops the load
    /// instead of rejecting every row one by one.
    pub fn layout_problem(&self) -> Option<String> {
        let columns = &self.schema.columns;
        let names: Vec<&str> = columns.iter().map(|column| column.name.as_ref()).collect();
        let input = self
            .inputs
            .get(self.input)
            .map_or("the input", String::as_str);
        if let (count, Some(width)) = self.wrong_widths {
            if self.rows.is_empty() && count == self.invalid.len() {
                let fix = if width == 1 && columns.len() > 1 {
                    "check --delimiter (or --format), or name the columns with --columns"
                } else {
                    "name the columns the fields go to with --columns A,B,…, or load into a \
                     table of that many columns"
                };
                return Some(format!(
                    "{input}: its records have {width} fields, the table has {} ({}); {fix}",
                    columns.len(),
                    names.join(", ")
                ));
            }
        }
        if self.dialect.format == InputFormat::Ndjson {
            return None;
        }
        let first = self.rows.first().filter(|row| row.line == 1)?;
        let fields: Vec<&[u8]> = self.row_fields(0).map(Option::unwrap_or_default).collect();
        let as_names = fields.iter().zip(&names).all(|(field, name)| {
            std::str::from_utf8(field).is_ok_and(|field| field.eq_ignore_ascii_case(name))
        });
        let names_a_number_column = fields.iter().zip(columns.iter()).any(|(field, column)| {
            let numeric = matches!(
                column.sql_type,
                SqlType::Int2 | SqlType::Int4 | SqlType::Int8 | SqlType::Float4 | SqlType::Float8
            );
            numeric && is_identifier(field)
        });
        let all_names = fields.iter().all(|field| is_identifier(field));
        (all_names && (as_names || names_a_number_column)).then(|| {
            format!(
                "{input}: line 1 ({}) names columns rather than holding values; add --header to \
                 take the column names from it (or --skip-lines 1)",
                String::from_utf8_lossy(trim_line_end(&self.data[first.raw.clone()]))
            )
        })
    }

    /// Checks the field count and, where the chunk is not all valid UTF-8, the record's encoding.
    fn check_row(&self, fields_before: usize, record: &[u8], utf8_ok: bool) -> Result<(), String> {
        let columns = &self.schema.columns;
        let count = self.fields.len() - fields_before;
        if count < columns.len() {
            return Err(format!(
                "missing data for column \"{}\"",
                columns[count].name
            ));
        }
        if count > columns.len() {
            return Err("extra data after last expected column".into());
        }
        if !utf8_ok {
            if let Err(err) = std::str::from_utf8(record) {
                let at = err.valid_up_to();
                let bad = &record[at..at + err.error_len().unwrap_or(record.len() - at)];
                let bytes: Vec<String> = bad.iter().map(|b| format!("0x{b:02x}")).collect();
                return Err(format!(
                    "invalid byte sequence for encoding \"UTF8\": {}",
                    bytes.join(" ")
                ));
            }
        }
        Ok(())
    }

    fn origin_of(&self, line: u64, raw: Range<usize>) -> RowOrigin {
        RowOrigin {
            source: self.inputs[self.input].clone(),
            line,
            record: String::from_utf8_lossy(trim_line_end(&self.data[raw])).into_owned(),
        }
    }

    /// Parses one CSV record at `start` with PostgreSQL's rules: a quote anywhere opens a quoted
    /// section, a doubled quote inside one is a quote, and an unquoted field equal to the null
    /// string is NULL (a quoted one never is).
    fn parse_csv(&mut self, start: usize) -> Parsed {
        let dialect = Arc::clone(&self.dialect);
        let (delimiter, quote, null_string) =
            (dialect.delimiter, dialect.quote, &dialect.null_string);
        let (data, values, fields) = (&self.data, &mut self.values, &mut self.fields);
        let mut at = start;
        let mut lines = 1;
        let mut column = 0;
        let is_null = |value: &[u8], column: usize| {
            value == &null_string[..] || dialect.is_null_marker(column, value)
        };
        loop {
            let value_start = values.len();
            let mut quoted = false;
            let mut in_quotes = false;
            // Where the field's bytes end in `values` before any trailing unquoted CR.
            loop {
                if in_quotes {
                    match memchr::memchr(quote, &data[at..]) {
                        None => {
                            return Parsed {
                                end: data.len(),
                                lines: lines
                                    + memchr::memchr_iter(b'\n', &data[at..]).count() as u64
                                    - 1,
                                result: Err("unterminated CSV quoted field".into()),
                            };
                        }
                        Some(i) => {
                            let run = &data[at..at + i];
                            lines += memchr::memchr_iter(b'\n', run).count() as u64;
                            values.extend_from_slice(run);
                            at += i + 1;
                            if data.get(at) == Some(&quote) {
                                values.push(quote);
                                at += 1;
                            } else {
                                in_quotes = false;
                            }
                        }
                    }
                    continue;
                }
                let i = memchr::memchr3(delimiter, quote, b'\n', &data[at..])
                    .expect("every record ends with a line feed");
                values.extend_from_slice(&data[at..at + i]);
                at += i + 1;
                match data[at - 1] {
                    byte if byte == quote => {
                        quoted = true;
                        in_quotes = true;
                    }
                    b'\n' => {
                        if i > 0 && data[at - 2] == b'\r' {
                            values.pop();
                        }
                        let null = !quoted && is_null(&values[value_start..], column);
                        push_field(values, fields, value_start, null);
                        return Parsed {
                            end: at,
                            lines,
                            result: Ok(()),
                        };
                    }
                    _ => {
                        let null = !quoted && is_null(&values[value_start..], column);
                        push_field(values, fields, value_start, null);
                        column += 1;
                        break;
                    }
                }
            }
        }
    }

    /// Parses one line of PostgreSQL's text format: fields split at the delimiter, a field equal to
    /// the null string is NULL, backslash escapes decoded.
    fn parse_tsv(&mut self, record: Range<usize>) -> Result<(), String> {
        let dialect = Arc::clone(&self.dialect);
        let (line, values, fields) = (&self.data[record], &mut self.values, &mut self.fields);
        let mut column = 0;
        let mut emit = |raw: &[u8]| {
            column += 1;
            if raw == dialect.null_string.as_slice() || dialect.is_null_marker(column - 1, raw) {
                fields.push(Field::NULL);
            } else {
                let value_start = values.len();
                unescape_text(raw, values);
                push_field(values, fields, value_start, false);
            }
        };
        // A delimiter after a backslash is data, not a separator.
        let (mut field_start, mut at) = (0, 0);
        while let Some(i) = memchr::memchr2(dialect.delimiter, b'\\', &line[at..]) {
            if line[at + i] == b'\\' {
                at = (at + i + 2).min(line.len());
            } else {
                emit(&line[field_start..at + i]);
                at += i + 1;
                field_start = at;
            }
        }
        emit(&line[field_start..]);
        Ok(())
    }

    /// Parses one JSON object and takes the schema's columns from it by key: a missing key or JSON
    /// null is NULL, a string is its text, anything else its JSON text.
    fn parse_ndjson(&mut self, record: Range<usize>) -> Result<(), String> {
        let (values, fields) = (&mut self.values, &mut self.fields);
        let object: HashMap<String, &RawValue> = serde_json::from_slice(&self.data[record])
            .map_err(|err| format!("invalid JSON object: {err}"))?;
        for key in self.keys.iter() {
            let value_start = values.len();
            // Numbers and nested values keep their JSON text exactly (no float round trip).
            match object.get(key).map(|raw| raw.get()) {
                None | Some("null") => fields.push(Field::NULL),
                Some(text) if text.starts_with('"') => {
                    let text: String = serde_json::from_str(text)
                        .map_err(|err| format!("invalid JSON string: {err}"))?;
                    values.extend_from_slice(text.as_bytes());
                    push_field(values, fields, value_start, false);
                }
                Some(text) => {
                    values.extend_from_slice(text.as_bytes());
                    push_field(values, fields, value_start, false);
                }
            }
        }
        Ok(())
    }

    /// The fields of row `row`: bytes, or `None` for NULL.
    pub(crate) fn row_fields(&self, row: usize) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        let width = self.schema.columns.len();
        self.fields[row * width..(row + 1) * width]
            .iter()
            .map(|field| {
                (field.start != u32::MAX)
                    .then(|| &self.values[field.start as usize..field.end as usize])
            })
    }
}

/// Why a header line gives no column names; worded to follow "the header line".
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderError {
    /// The line does not parse as a record, in the words of the rows' parser.
    #[error("{0}")]
    Record(String),
    #[error("NDJSON and Parquet have no header line")]
    NoHeaderLine,
    /// A field that reads as NULL.
    #[error("has an empty column name (column {column})")]
    NullName { column: usize },
    #[error("is not valid UTF-8")]
    NotUtf8,
    #[error("has an empty column name")]
    EmptyName,
    #[error("names column `{name}` twice (column {column})")]
    Repeated { name: String, column: usize },
}

/// A column name rather than a value: a letter or `_` first, then letters, digits and `_`;
/// none of the spellings a number column takes (`NaN`, `Infinity`).
fn is_identifier(field: &[u8]) -> bool {
    let starts_as_name = field
        .first()
        .is_some_and(|first| first.is_ascii_alphabetic() || *first == b'_');
    let spelled_as_number = [&b"nan"[..], b"infinity", b"inf"]
        .iter()
        .any(|number| field.eq_ignore_ascii_case(number));
    starts_as_name
        && !spelled_as_number
        && field
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'_')
}

/// The fields of a header line, parsed as rows are: the column names it gives.
pub(crate) fn parse_header(
    dialect: Arc<Dialect>,
    record: &[u8],
) -> Result<Vec<String>, HeaderError> {
    let format = dialect.format;
    let no_columns = Arc::new(Schema {
        columns: std::borrow::Cow::Borrowed(&[]),
    });
    let mut batch = CopyBatch::new(dialect, no_columns, Arc::from(Vec::new()));
    batch.data = record.to_vec();
    batch.data.push(b'\n');
    match format {
        InputFormat::Csv => batch.parse_csv(0).result.map_err(HeaderError::Record)?,
        InputFormat::Tsv => batch
            .parse_tsv(0..record.len())
            .map_err(HeaderError::Record)?,
        InputFormat::Ndjson | InputFormat::Parquet => return Err(HeaderError::NoHeaderLine),
    }
    let names: Vec<String> = (0..batch.fields.len())
        .map(|i| {
            let field = batch.fields[i];
            if field.start == u32::MAX {
                return Err(HeaderError::NullName { column: i + 1 });
            }
            String::from_utf8(batch.values[field.start as usize..field.end as usize].to_vec())
                .map_err(|_| HeaderError::NotUtf8)
        })
        .collect::<Result<_, _>>()?;
    if names.iter().any(String::is_empty) {
        return Err(HeaderError::EmptyName);
    }
    if let Some((i, name)) = names
        .iter()
        .enumerate()
        .find(|(i, name)| names[..*i].contains(name))
    {
        return Err(HeaderError::Repeated {
            name: name.clone(),
            column: i + 1,
        });
    }
    Ok(names)
}

/// Ends a field whose bytes start at `start` in `values`.
fn push_field(values: &mut Vec<u8>, fields: &mut Vec<Field>, start: usize, null: bool) {
    if null {
        values.truncate(start);
        fields.push(Field::NULL);
    } else {
        fields.push(Field {
            start: start as u32,
            end: values.len() as u32,
        });
    }
}

/// Writes the cells of a batch that [`CopyBatch::fill_cells`] fills: any cell not written is NULL.
pub(crate) struct CellWriter<'a> {
    values: &'a mut Vec<u8>,
    fields: &'a mut [Field],
    width: usize,
    rejected: &'a mut Vec<(usize, String)>,
}

impl CellWriter<'_> {
    /// Sets the cell of `row` and `column` to the bytes `write` appends.
    #[inline]
    pub(crate) fn set(&mut self, row: usize, column: usize, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.values.len();
        write(self.values);
        self.fields[row * self.width + column] = Field {
            start: start as u32,
            end: self.values.len() as u32,
        };
    }

    /// Sets `row` aside: a value of it the target cannot take, for `error`.
    pub(crate) fn reject(&mut self, row: usize, error: String) {
        self.rejected.push((row, error));
    }
}

/// What parsing one record found.
struct Parsed {
    /// Where the next record starts.
    end: usize,
    /// Physical lines the record spans.
    lines: u64,
    result: Result<(), String>,
}

/// The end of the text-format record at `start` (after its line feed; a line feed after a
/// backslash is data) and the lines it spans.
fn escaped_record_end(data: &[u8], start: usize) -> (usize, u64) {
    let (mut at, mut lines) = (start, 1);
    while let Some(i) = memchr::memchr2(b'\\', b'\n', &data[at..]) {
        if data[at + i] == b'\n' {
            return (at + i + 1, lines);
        }
        lines += u64::from(data.get(at + i + 1) == Some(&b'\n'));
        at = (at + i + 2).min(data.len());
    }
    (data.len(), lines)
}

fn trim_line_end(record: &[u8]) -> &[u8] {
    let record = record.strip_suffix(b"\n").unwrap_or(record);
    record.strip_suffix(b"\r").unwrap_or(record)
}

/// Decodes PostgreSQL text-format escapes: `\b \f \n \r \t \v`, octal `\ooo`, hex `\xhh`, and
/// any other escaped byte as itself.
fn unescape_text(raw: &[u8], out: &mut Vec<u8>) {
    let mut rest = raw;
    while let Some(i) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..i]);
        rest = &rest[i + 1..];
        let Some(&escaped) = rest.first() else {
            out.push(b'\\');
            break;
        };
        let digits_of = |rest: &[u8], max: usize, radix: u32| {
            rest.iter()
                .take(max)
                .take_while(|b| (**b as char).is_digit(radix))
                .count()
        };
        let (byte, used) = match escaped {
            b'b' => (8, 1),
            b'f' => (12, 1),
            b'n' => (b'\n', 1),
            b'r' => (b'\r', 1),
            b't' => (b'\t', 1),
            b'v' => (11, 1),
            b'0'..=b'7' => {
                let width = digits_of(rest, 3, 8);
                let text = std::str::from_utf8(&rest[..width]).unwrap_or("0");
                (u32::from_str_radix(text, 8).unwrap_or(0) as u8, width)
            }
            b'x' if digits_of(&rest[1..], 2, 16) > 0 => {
                let width = digits_of(&rest[1..], 2, 16);
                let text = std::str::from_utf8(&rest[1..=width]).unwrap_or("0");
                (u8::from_str_radix(text, 16).unwrap_or(0), width + 1)
            }
            other => (other, 1),
        };
        out.push(byte);
        rest = &rest[used..];
    }
    out.extend_from_slice(rest);
}

impl Batch for CopyBatch {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn size_bytes(&self) -> usize {
        self.data.len() + self.values.len()
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn first_row(&self) -> u64 {
        self.first_line
    }

    fn encode(
        &self,
        rows: Range<usize>,
        format: RowFormat,
        out: &mut Vec<u8>,
    ) -> Result<(), Unencodable> {
        self.encode_rows(rows, format, out)
    }

    fn row_key(&self, row: usize) -> String {
        format!("{}:{}", self.inputs[self.input], self.rows[row].line)
    }

    fn origin(&self, row: usize) -> RowOrigin {
        let at = &self.rows[row];
        let mut origin = self.origin_of(at.line, at.raw.clone());
        if self.dialect.format == InputFormat::Parquet {
            origin.record = self.cells_as_csv(row);
        }
        origin
    }

    fn invalid(&self) -> &[Reject] {
        &self.invalid
    }
}

/// Binary COPY encodes each field by its column's type; the other formats spell the field's text
/// as it came, and the target converts it.
impl RowEncoders for CopyBatch {
    /// The row's position: [`CopyBatch::row_fields`] finds its fields.
    type Row<'a> = usize;

    #[inline]
    fn rows(&self, rows: Range<usize>) -> impl Iterator<Item = usize> {
        rows
    }

    #[inline]
    fn binary_fields(&self) -> i16 {
        self.schema.columns.len() as i16
    }

    #[inline]
    fn binary(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Unencodable> {
        for (field, column) in self.row_fields(row).zip(self.schema.columns.iter()) {
            match field {
                None => binary::null(out),
                Some(value) => typed::encode_field(column.sql_type, value, out)?,
            }
        }
        Ok(())
    }

    #[inline]
    fn copy_text(&self, row: usize, out: &mut Vec<u8>) {
        encode::separated(out, b'\t', self.row_fields(row), |out, field| match field {
            None => out.extend_from_slice(b"\\N"),
            Some(value) => encode::copy_text(out, value),
        });
    }

    #[inline]
    fn sql_values(&self, row: usize, out: &mut Vec<u8>) {
        encode::separated(out, b',', self.row_fields(row), |out, field| match field {
            None => out.extend_from_slice(b"NULL"),
            Some(value) => encode::quoted(out, value, b'\''),
        });
    }

    #[inline]
    fn csv(&self, row: usize, out: &mut Vec<u8>) {
        encode::separated(out, b',', self.row_fields(row), |out, field| match field {
            None => {}
            Some([]) => out.extend_from_slice(b"\"\""),
            Some(value) => encode::csv_field(out, value),
        });
    }

    #[inline]
    fn json_members(&self, row: usize, format: RowFormat, out: &mut Vec<u8>) {
        let fields = self.row_fields(row).zip(self.schema.columns.iter());
        encode::separated(out, b',', fields, |out, (field, column)| {
            encode::json_string(out, &column.name);
            out.push(b':');
            match (format, field) {
                (RowFormat::JsonEachRow, Some(value)) => {
                    json_value(Some(clickhouse_spelling(column.sql_type, value)), out)
                }
                _ => json_value(field, out),
            }
        });
    }

    #[inline]
    fn json_array(&self, row: usize, out: &mut Vec<u8>) {
        encode::separated(out, b',', self.row_fields(row), |out, field| {
            json_value(field, out)
        });
    }
}

/// A value as ClickHouse 18 reads it into the column a type is created as: a UTC timestamp to
/// the second (`DateTime` has no fractions; `2026-01-01 00:00:00.5+00` is `2026-01-01 00:00:00`),
/// `true` and `false` as the `UInt8` 1 and 0. Anything else as it is.
fn clickhouse_spelling(sql_type: SqlType, value: &[u8]) -> &[u8] {
    match sql_type {
        SqlType::Timestamp | SqlType::Timestamptz if value.len() > 19 && value[10] == b' ' => {
            let rest = &value[19..];
            let digits = rest.strip_prefix(b".").map_or(rest, |fraction| {
                let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
                &fraction[count..]
            });
            if matches!(digits, b"" | b"+00" | b"Z") {
                &value[..19]
            } else {
                value
            }
        }
        SqlType::Bool if value == b"true" => b"1",
        SqlType::Bool if value == b"false" => b"0",
        _ => value,
    }
}

/// A field as a JSON value: a string (the targets convert it to their column types), NULL as null.
fn json_value(field: Option<&[u8]>, out: &mut Vec<u8>) {
    match field {
        None => out.extend_from_slice(b"null"),
        Some(value) => encode::json_string(out, &String::from_utf8_lossy(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{Column, SqlType};
    use std::borrow::Cow;

    fn batch(format: InputFormat, columns: &[&str], text: &str) -> CopyBatch {
        let dialect = Dialect::new(format, None, None, None);
        let schema = Schema {
            columns: Cow::Owned(
                columns
                    .iter()
                    .map(|name| Column {
                        name: Cow::Owned(name.to_string()),
                        sql_type: SqlType::Text,
                    })
                    .collect(),
            ),
        };
        let mut batch = CopyBatch::new(
            Arc::new(dialect),
            Arc::new(schema),
            Arc::from(vec!["in.csv".to_string()]),
        );
        batch.fill(RawBatch {
            seq: 7,
            input: 0,
            chunk: Chunk {
                data: text.as_bytes().to_vec(),
                first_line: 2,
                records: 0,
            },
        });
        batch
    }

    fn rows(batch: &CopyBatch) -> Vec<Vec<Option<String>>> {
        (0..batch.len())
            .map(|row| {
                batch
                    .row_fields(row)
                    .map(|field| field.map(|v| String::from_utf8(v.to_vec()).unwrap()))
                    .collect()
            })
            .collect()
    }

    fn s(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn csv_quotes_nulls_and_line_numbers() {
        let batch = batch(
            InputFormat::Csv,
            &["a", "b"],
            "1,\"x,\"\"y\"\"\nz\"\r\n,\"\"\n\n3\n4,5,6\n",
        );
        assert_eq!(
            rows(&batch),
            [vec![s("1"), s("x,\"y\"\nz")], vec![None, s("")]]
        );
        let invalid: Vec<(u64, &str)> = batch
            .invalid()
            .iter()
            .map(|r| (r.origin.line, r.error.as_str()))
            .collect();
        assert_eq!(
            invalid,
            [
                (6, "missing data for column \"b\""),
                (7, "extra data after last expected column")
            ]
        );
        assert_eq!(batch.origin(1).line, 4);
        assert_eq!(batch.origin(0).record, "1,\"x,\"\"y\"\"\nz\"");
    }

    #[test]
    fn csv_rejects_bad_utf8_and_unterminated_quotes() {
        let mut text = b"ok,1\nbad,\xff\n".to_vec();
        text.extend_from_slice(b"open,\"never closed\n");
        let dialect = Arc::new(Dialect::new(InputFormat::Csv, None, None, None));
        let schema = Arc::new(Schema {
            columns: Cow::Owned(vec![
                Column {
                    name: "a".into(),
                    sql_type: SqlType::Text,
                },
                Column {
                    name: "b".into(),
                    sql_type: SqlType::Text,
                },
            ]),
        });
        let mut batch = CopyBatch::new(dialect, schema, Arc::from(vec!["-".to_string()]));
        batch.fill(RawBatch {
            seq: 0,
            input: 0,
            chunk: Chunk {
                data: text,
                first_line: 1,
                records: 3,
            },
        });
        assert_eq!(batch.len(), 1);
        let errors: Vec<&str> = batch.invalid().iter().map(|r| r.error.as_str()).collect();
        assert_eq!(
            errors,
            [
                "invalid byte sequence for encoding \"UTF8\": 0xff",
                "unterminated CSV quoted field"
            ]
        );
    }

    #[test]
    fn tsv_escapes_and_nulls() {
        let batch = batch(
            InputFormat::Tsv,
            &["a", "b"],
            "a\\tb\\\\\t\\N\n\\101\\x41\tx\nx\\\ny\tz\\\tw\n",
        );
        assert_eq!(
            rows(&batch),
            [
                vec![s("a\tb\\"), None],
                vec![s("AA"), s("x")],
                vec![s("x\ny"), s("z\tw")]
            ]
        );
        assert_eq!(batch.origin(2).line, 4);
    }

    #[test]
    fn ndjson_takes_columns_by_key() {
        let batch = batch(
            InputFormat::Ndjson,
            &["id", "tags", "name"],
            "{\"name\":\"n\",\"id\":1,\"tags\":[1, 2],\"extra\":true}\n{\"id\":null}\n[1]\n",
        );
        assert_eq!(
            rows(&batch),
            [vec![s("1"), s("[1, 2]"), s("n")], vec![None, None, None]]
        );
        assert_eq!(batch.invalid().len(), 1);
    }

    #[test]
    fn ndjson_keeps_numbers_exact_and_takes_keys_as_given() {
        let exact = batch(
            InputFormat::Ndjson,
            &["id", "amount"],
            "{\"id\":12345678901234567890123,\"amount\":1.10}\n",
        );
        assert_eq!(
            rows(&exact),
            [vec![s("12345678901234567890123"), s("1.10")]]
        );
        let by_key = batch(InputFormat::Ndjson, &["a"], "{\"A\":1}\n")
            .with_keys(Arc::from(vec!["A".to_string()]));
        assert_eq!(by_key.keys[0], "A");
    }

    #[test]
    fn clickhouse_reads_timestamps_to_the_second_and_booleans_as_numbers() {
        let spelled = |sql_type, value: &str| {
            String::from_utf8(clickhouse_spelling(sql_type, value.as_bytes()).to_vec()).unwrap()
        };
        let at = SqlType::Timestamptz;
        assert_eq!(
            spelled(at, "2026-01-01 00:00:01.5+00"),
            "2026-01-01 00:00:01"
        );
        assert_eq!(
            spelled(SqlType::Timestamp, "2026-01-01 00:00:01.000123"),
            "2026-01-01 00:00:01"
        );
        // Another zone is left for ClickHouse to refuse rather than shifted silently.
        assert_eq!(
            spelled(at, "2026-01-01 00:00:01+02"),
            "2026-01-01 00:00:01+02"
        );
        assert_eq!(spelled(SqlType::Bool, "true"), "1");
        assert_eq!(spelled(SqlType::Text, "true"), "true");
    }

    #[test]
    fn cells_filled_by_column_load_and_a_rejected_row_is_set_aside() {
        let mut batch = batch(InputFormat::Parquet, &["a", "b"], "");
        batch
            .fill_cells(3, 0, 11, 3, |cells| {
                for row in 0..3 {
                    cells.set(row, 0, |out| {
                        out.extend_from_slice(format!("{row}").as_bytes())
                    });
                }
                cells.set(2, 1, |out| out.extend_from_slice(b"x"));
                cells.reject(1, "too big".into());
            })
            .unwrap();
        assert_eq!(rows(&batch), [vec![s("0"), None], vec![s("2"), s("x")]]);
        assert_eq!((batch.seq(), batch.first_row()), (3, 11));
        assert_eq!(batch.row_key(1), "in.csv:13");
        assert_eq!(batch.origin(1).record, "2,x");
        let rejected = &batch.invalid()[0];
        assert_eq!(
            (
                rejected.origin.line,
                rejected.origin.record.as_str(),
                rejected.error.as_str()
            ),
            (12, "1,", "too big")
        );
    }

    #[test]
    fn encodes_text_csv_and_sql() {
        let batch = batch(InputFormat::Csv, &["a", "b"], "\"x\ty\",it's\n,\"\"\n");
        let encoded = |format| {
            let mut out = Vec::new();
            batch.encode(0..2, format, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(encoded(RowFormat::CopyText), "x\\ty\tit's\n\\N\t\n");
        assert_eq!(encoded(RowFormat::SqlValues), "('x\ty','it''s'),(NULL,'')");
        assert_eq!(encoded(RowFormat::Csv), "x\ty,it's\n,\"\"\n");
        assert_eq!(
            encoded(RowFormat::Ndjson),
            "{\"a\":\"x\\ty\",\"b\":\"it's\"}\n{\"a\":null,\"b\":\"\"}\n"
        );
    }
}
