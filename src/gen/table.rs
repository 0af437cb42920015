//! A batch of generated rows of any table: [`TableBatch`] fills its reused cells column by
//! column from a [`TablePlan`] and encodes them, row by row, in every row format.
//!
//! The hot path: once the cells, the arena and the output buffer have grown to a batch's size,
//! filling and encoding fixed-width columns allocates nothing.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use crate::encode::{self, binary, TimestampStyle, PG_EPOCH_OFFSET_MICROS};
use crate::gen::model::{Cell, Field, Store, ValueType};
use crate::gen::Shard;
use crate::reject::RowOrigin;
use crate::rows::{Batch, RowEncoders, RowFormat, Unencodable};

/// The columns a load generates, in the order they are sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TablePlan {
    pub columns: Vec<Field>,
}

/// A reused buffer of generated rows: one [`Cell`] per row and column, row-major.
#[derive(Debug, Clone)]
pub struct TableBatch {
    plan: Arc<TablePlan>,
    seed: u64,
    seq: u64,
    ids: Vec<u64>,
    cells: Vec<Cell>,
    arena: Vec<u8>,
    items: Vec<Cell>,
    json: Vec<u8>,
}

impl TableBatch {
    pub(crate) fn with_capacity(plan: Arc<TablePlan>, seed: u64, capacity: usize) -> TableBatch {
        let width = plan.columns.len();
        TableBatch {
            plan,
            seed,
            seq: 0,
            ids: Vec::with_capacity(capacity),
            cells: Vec::with_capacity(capacity * width),
            arena: Vec::new(),
            items: Vec::new(),
            json: Vec::new(),
        }
    }

    /// Refills the batch with the rows at the shard-local positions `local`.
    pub fn fill(&mut self, seq: u64, local: Range<u64>, shard: Shard) {
        self.seq = seq;
        self.ids.clear();
        self.ids
            .extend(local.map(|position| shard.global_id(position)));
        self.arena.clear();
        self.items.clear();
        let width = self.plan.columns.len();
        self.cells.clear();
        self.cells.resize(self.ids.len() * width, Cell::Null);
        let mut store = Store {
            arena: &mut self.arena,
            items: &mut self.items,
            json: &mut self.json,
        };
        for (column, field) in self.plan.columns.iter().enumerate() {
            let cells = self.cells[column..].iter_mut().step_by(width);
            field.fill(self.seed, &self.ids, cells, &mut store);
        }
    }

    /// The cells of row `row`.
    pub(crate) fn row(&self, row: usize) -> &[Cell] {
        let width = self.plan.columns.len();
        &self.cells[row * width..(row + 1) * width]
    }

    /// The value of row `row`, column `column`, as CSV spells it.
    #[cfg(test)]
    pub(crate) fn text_of(&self, row: usize, column: usize) -> String {
        let mut out = Vec::new();
        let field = &self.plan.columns[column];
        text_cell(
            field,
            self.row(row)[column],
            &self.arena,
            &self.items,
            Style::Csv,
            &mut out,
        );
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Batch for TableBatch {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of_val(self.cells.as_slice())
            + self.arena.len()
            + std::mem::size_of_val(self.items.as_slice())
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn first_row(&self) -> u64 {
        self.ids.first().copied().unwrap_or(0)
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
        self.ids[row].to_string()
    }

    fn origin(&self, row: usize) -> RowOrigin {
        let mut record = Vec::new();
        self.csv(self.row(row), &mut record);
        RowOrigin {
            source: "gen".into(),
            line: self.ids[row],
            record: String::from_utf8_lossy(&record).into_owned(),
        }
    }
}

impl RowEncoders for TableBatch {
    type Row<'a> = &'a [Cell];

    #[inline]
    fn rows(&self, rows: Range<usize>) -> impl Iterator<Item = &[Cell]> {
        let width = self.plan.columns.len();
        self.cells[rows.start * width..rows.end * width].chunks_exact(width)
    }

    #[inline]
    fn binary_fields(&self) -> i16 {
        self.plan.columns.len() as i16
    }

    #[inline]
    fn binary(&self, row: &[Cell], out: &mut Vec<u8>) -> Result<(), Unencodable> {
        for (field, &cell) in self.plan.columns.iter().zip(row) {
            binary_cell(&field.value_type, field, cell, &self.arena, out)?;
        }
        Ok(())
    }

    #[inline]
    fn copy_text(&self, row: &[Cell], out: &mut Vec<u8>) {
        self.delimited(row, b'\t', Style::CopyText, out);
    }

    #[inline]
    fn sql_values(&self, row: &[Cell], out: &mut Vec<u8>) {
        self.delimited(row, b',', Style::Sql, out);
    }

    #[inline]
    fn csv(&self, row: &[Cell], out: &mut Vec<u8>) {
        self.delimited(row, b',', Style::Csv, out);
    }

    #[inline]
    fn json_members(&self, row: &[Cell], format: RowFormat, out: &mut Vec<u8>) {
        let style = match format {
            RowFormat::JsonEachRow => TimestampStyle::Seconds,
            _ => TimestampStyle::Rfc3339,
        };
        for (i, (field, &cell)) in self.plan.columns.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            encode::json_string(out, &field.name);
            out.push(b':');
            text_cell(
                field,
                cell,
                &self.arena,
                &self.items,
                Style::Json(style),
                out,
            );
        }
    }

    #[inline]
    fn json_array(&self, row: &[Cell], out: &mut Vec<u8>) {
        self.delimited(row, b',', Style::Json(TimestampStyle::Rfc3339), out);
    }
}

impl TableBatch {
    #[inline]
    fn delimited(&self, row: &[Cell], separator: u8, style: Style, out: &mut Vec<u8>) {
        for (i, (field, &cell)) in self.plan.columns.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(separator);
            }
            text_cell(field, cell, &self.arena, &self.items, style, out);
        }
    }
}

/// How a value is spelled: the text formats differ in NULL, quoting and escaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    CopyText,
    Csv,
    Sql,
    Json(TimestampStyle),
}

/// Appends one binary COPY field. Types the binary encoders here do not write (numeric, time,
/// interval, inet, arrays) answer [`Unencodable`]: the batch goes as text COPY.
#[inline]
fn binary_cell(
    value_type: &ValueType,
    field: &Field,
    cell: Cell,
    arena: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Unencodable> {
    match (value_type, cell) {
        (_, Cell::Null) => binary::null(out),
        (ValueType::Int { bytes: 8 }, Cell::Int(v)) => binary::int8(out, v),
        (ValueType::Int { bytes: 4 }, Cell::Int(v)) => binary::int4(out, v as i32),
        (ValueType::Int { .. }, Cell::Int(v)) => binary::bytes(out, &(v as i16).to_be_bytes()),
        (ValueType::Float { bytes, decimals }, cell) => {
            let value = match (cell, decimals) {
                (Cell::Int(units), Some(d)) => units as f64 / 10f64.powi(i32::from(*d)),
                (Cell::Float(value), _) => value,
                _ => return Err(Unencodable),
            };
            if *bytes == 4 {
                binary::bytes(out, &(value as f32).to_bits().to_be_bytes());
            } else {
                binary::float8(out, value);
            }
        }
        (ValueType::Bool, Cell::Int(v)) => binary::bytes(out, &[u8::from(v != 0)]),
        (ValueType::Date, Cell::Int(micros)) => {
            let days = (micros - PG_EPOCH_OFFSET_MICROS).div_euclid(86_400_000_000) as i32;
            binary::bytes(out, &days.to_be_bytes());
        }
        (ValueType::Timestamp | ValueType::Timestamptz, Cell::Int(micros)) => {
            binary::timestamptz(out, micros);
        }
        (ValueType::Text { .. } | ValueType::Enum | ValueType::Json, Cell::Label(i)) => {
            binary::text(out, &field.labels[i as usize]);
        }
        (
            ValueType::Text { .. } | ValueType::Enum | ValueType::Json | ValueType::Bytea,
            Cell::Bytes { start, len },
        )
        | (ValueType::Uuid, Cell::Bytes { start, len }) => {
            binary::bytes(out, &arena[start as usize..(start + len) as usize]);
        }
        (ValueType::Jsonb, Cell::Bytes { start, len }) => {
            binary::jsonb(out, &arena[start as usize..(start + len) as usize]);
        }
        (ValueType::Jsonb, Cell::Label(i)) => {
            binary::jsonb(out, field.labels[i as usize].as_bytes());
        }
        _ => return Err(Unencodable),
    }
    Ok(())
}

thread_local! {
    /// Where an array's literal is composed before it is escaped for its format.
    static ARRAY_LITERAL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Appends one value in `style`.
fn text_cell(
    field: &Field,
    cell: Cell,
    arena: &[u8],
    items: &[Cell],
    style: Style,
    out: &mut Vec<u8>,
) {
    let value_type = &field.value_type;
    match cell {
        Cell::Null => out.extend_from_slice(match style {
            Style::CopyText => b"\\N",
            Style::Csv => b"",
            Style::Sql => b"NULL",
            Style::Json(_) => b"null",
        }),
        Cell::Int(v) => int_text(value_type, v, style, out),
        Cell::Float(v) => {
            if matches!(value_type, ValueType::Float { bytes: 4, .. }) {
                float_text(out, f64::from(v as f32), true);
            } else {
                float_text(out, v, false);
            }
        }
        Cell::Label(i) => {
            let label = &field.labels[i as usize];
            let raw_json = matches!(value_type, ValueType::Json | ValueType::Jsonb)
                && matches!(style, Style::Json(s) if s != TimestampStyle::Seconds);
            if value_type.is_number() || raw_json {
                out.extend_from_slice(label.as_bytes());
            } else {
                escaped(label.as_bytes(), style, out);
            }
        }
        Cell::Bytes { start, len } => {
            let bytes = &arena[start as usize..(start + len) as usize];
            match value_type {
                ValueType::Uuid => {
                    quote(style, out);
                    uuid_text(bytes, out);
                    quote(style, out);
                }
                ValueType::Bytea => {
                    quote(style, out);
                    out.extend_from_slice(match style {
                        Style::CopyText | Style::Json(_) => b"\\\\x",
                        _ => b"\\x",
                    });
                    hex(bytes, out);
                    quote(style, out);
                }
                // JSON nests in JSON, except in ClickHouse's JSONEachRow, whose columns for
                // it are strings.
                ValueType::Json | ValueType::Jsonb if matches!(style, Style::Json(s) if s != TimestampStyle::Seconds) =>
                {
                    out.extend_from_slice(bytes);
                }
                _ => escaped(bytes, style, out),
            }
        }
        Cell::Items { start, len } => {
            let elements = &items[start as usize..(start + len) as usize];
            let crate::gen::model::Generator::Array { element, .. } = &field.generator else {
                return;
            };
            let element = &**element;
            if let Style::Json(_) = style {
                out.push(b'[');
                encode::separated(out, b',', elements, |out, &cell| {
                    text_cell(element, cell, arena, items, style, out);
                });
                out.push(b']');
                return;
            }
            ARRAY_LITERAL.with_borrow_mut(|literal| {
                literal.clear();
                array_literal(element, elements, arena, items, literal);
                escaped(literal, style, out);
            });
        }
    }
}

/// Appends a PostgreSQL array literal, `{1,2}` or `{"a","b c"}`.
fn array_literal(element: &Field, cells: &[Cell], arena: &[u8], items: &[Cell], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, &cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if cell == Cell::Null {
            out.extend_from_slice(b"NULL");
            continue;
        }
        let mut text = Vec::new();
        text_cell(element, cell, arena, items, Style::Csv, &mut text);
        if element.value_type.is_number() {
            out.extend_from_slice(&text);
            continue;
        }
        // CSV spells a value unquoted unless it must; an element is always quoted here.
        let text = if text.first() == Some(&b'"') {
            let inner = &text[1..text.len() - 1];
            let mut unquoted = Vec::with_capacity(inner.len());
            let mut bytes = inner.iter().peekable();
            while let Some(&byte) = bytes.next() {
                if byte == b'"' {
                    bytes.next();
                }
                unquoted.push(byte);
            }
            unquoted
        } else {
            text
        };
        out.push(b'"');
        for byte in text {
            if matches!(byte, b'"' | b'\\') {
                out.push(b'\\');
            }
            out.push(byte);
        }
        out.push(b'"');
    }
    out.push(b'}');
}

/// Appends an integer-held value of its type.
#[inline]
fn int_text(value_type: &ValueType, v: i64, style: Style, out: &mut Vec<u8>) {
    match value_type {
        ValueType::Int { .. } => encode::integer(out, v),
        ValueType::Numeric { scale, .. } => encode::decimal(out, v, *scale),
        ValueType::Float { decimals, .. } => encode::decimal(out, v, decimals.unwrap_or(0)),
        ValueType::Bool => out.extend_from_slice(match (style, v != 0) {
            (Style::CopyText | Style::Csv, true) => b"t",
            (Style::CopyText | Style::Csv, false) => b"f",
            (_, true) => b"true",
            (_, false) => b"false",
        }),
        ValueType::Inet => {
            quote(style, out);
            let [_, _, _, _, a, b, c, d] = v.to_be_bytes();
            encode::separated(out, b'.', [a, b, c, d], |out, octet| {
                encode::integer(out, octet)
            });
            quote(style, out);
        }
        _ => {
            quote(style, out);
            time_text(value_type, v, style, out);
            quote(style, out);
        }
    }
}

/// Appends a date, time, timestamp or interval held as microseconds.
fn time_text(value_type: &ValueType, micros: i64, style: Style, out: &mut Vec<u8>) {
    let timestamp_style = match style {
        Style::Json(json) => json,
        Style::Csv => TimestampStyle::Rfc3339,
        _ => TimestampStyle::Postgres,
    };
    let at = out.len();
    match value_type {
        ValueType::Date => {
            encode::timestamp(out, micros, TimestampStyle::Rfc3339);
            out.truncate(at + 10);
        }
        ValueType::Timestamp => {
            encode::timestamp(out, micros, timestamp_style);
            // No zone: the column has none.
            let zone = match timestamp_style {
                TimestampStyle::Postgres => 3,
                TimestampStyle::Rfc3339 => 1,
                TimestampStyle::Seconds => 0,
            };
            out.truncate(out.len() - zone);
        }
        ValueType::Time => {
            encode::timestamp(
                out,
                micros.rem_euclid(86_400_000_000),
                TimestampStyle::Rfc3339,
            );
            out.truncate(out.len() - 1);
            out.drain(at..at + 11);
        }
        ValueType::Interval => {
            let magnitude = micros.unsigned_abs();
            if micros < 0 {
                out.push(b'-');
            }
            encode::integer(out, magnitude / 3_600_000_000);
            let rest = magnitude % 3_600_000_000;
            out.push(b':');
            encode::push_digits(out, (rest / 60_000_000) as u32, 2);
            out.push(b':');
            encode::push_digits(out, (rest / 1_000_000 % 60) as u32, 2);
            out.push(b'.');
            encode::push_digits(out, (rest % 1_000_000) as u32, 6);
        }
        _ => encode::timestamp(out, micros, timestamp_style),
    }
}

/// Appends a float, shortest round-trip, as PostgreSQL and JSON read it.
#[inline]
fn float_text(out: &mut Vec<u8>, value: f64, single: bool) {
    use std::io::Write;
    let written = if single {
        write!(out, "{}", value as f32)
    } else {
        write!(out, "{value}")
    };
    written.expect("writing to a Vec cannot fail");
}

/// The quote around a non-numeric value that needs no escaping: SQL's `'`, JSON's `"`.
#[inline]
fn quote(style: Style, out: &mut Vec<u8>) {
    match style {
        Style::Sql => out.push(b'\''),
        Style::Json(_) => out.push(b'"'),
        _ => {}
    }
}

/// Appends text escaped for `style`.
#[inline]
fn escaped(text: &[u8], style: Style, out: &mut Vec<u8>) {
    match style {
        Style::CopyText => encode::copy_text(out, text),
        Style::Csv => encode::csv_field(out, text),
        Style::Sql => encode::quoted(out, text, b'\''),
        Style::Json(_) => encode::json_string(out, &String::from_utf8_lossy(text)),
    }
}

fn hex(bytes: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 15)]);
    }
}

fn uuid_text(bytes: &[u8], out: &mut Vec<u8>) {
    for (i, group) in [0..4, 4..6, 6..8, 8..10, 10..16].into_iter().enumerate() {
        if i > 0 {
            out.push(b'-');
        }
        hex(&bytes[group], out);
    }
}

/// Appends a cell as a JSON value: what a JSON object's member holds.
pub(crate) fn json_value(
    field: &Field,
    cell: Cell,
    arena: &[u8],
    items: &[Cell],
    out: &mut Vec<u8>,
) {
    text_cell(
        field,
        cell,
        arena,
        items,
        Style::Json(TimestampStyle::Rfc3339),
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::model::Generator;

    fn field(name: &str, value_type: ValueType, generator: Generator) -> Field {
        let mut field = Field::new(name, "t", value_type);
        field.generator = generator;
        field
    }

    fn plan() -> Arc<TablePlan> {
        let mut labels = field(
            "status",
            ValueType::Enum,
            Generator::choice(vec![Cell::Label(0), Cell::Label(1)], None),
        );
        labels.labels = vec!["new".into(), "it's \"odd\"".into()];
        Arc::new(TablePlan {
            columns: vec![
                field(
                    "id",
                    ValueType::Int { bytes: 8 },
                    Generator::Sequence { start: 1, step: 1 },
                ),
                field(
                    "total",
                    ValueType::Numeric {
                        precision: 10,
                        scale: 2,
                    },
                    Generator::UniformInt {
                        min: -500,
                        max: 500,
                    },
                ),
                labels,
                field(
                    "tags",
                    ValueType::Array(Box::new(ValueType::Text {
                        max_chars: None,
                        padded: false,
                    })),
                    Generator::Array {
                        element: Box::new(field(
                            "tag",
                            ValueType::Text {
                                max_chars: None,
                                padded: false,
                            },
                            Generator::Words {
                                min: 1,
                                max: 2,
                                sentence: false,
                                max_chars: None,
                            },
                        )),
                        min: 0,
                        max: 3,
                    },
                ),
                field(
                    "at",
                    ValueType::Time,
                    Generator::TimeRange {
                        start: 0,
                        end: 86_400_000_000,
                    },
                ),
            ],
        })
    }

    #[test]
    fn every_format_spells_the_same_row() {
        let mut batch = TableBatch::with_capacity(plan(), 5, 4);
        batch.fill(0, 0..4, Shard::WHOLE);
        let mut out = Vec::new();
        batch.encode(0..4, RowFormat::Ndjson, &mut out).unwrap();
        for (row, line) in String::from_utf8(out).unwrap().lines().enumerate() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["id"], row as u64 + 1);
            assert!(value["tags"].is_array(), "{line}");
            let total: f64 = batch.text_of(row, 1).parse().unwrap();
            assert_eq!(value["total"].as_f64(), Some(total));
        }
        let mut out = Vec::new();
        batch.encode(0..4, RowFormat::CopyText, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let first: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
        assert_eq!(first.len(), 5);
        assert!(
            first[3].starts_with('{') && first[3].ends_with('}'),
            "{first:?}"
        );
        assert_eq!(first[4].len(), "00:00:00.000000".len());
        let mut out = Vec::new();
        batch.encode(0..4, RowFormat::SqlValues, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("(1,"));
        assert_eq!(
            batch.encode(0..1, RowFormat::CopyBinary, &mut Vec::new()),
            Err(Unencodable),
            "numeric is left to text COPY"
        );
    }

    #[test]
    fn a_column_filled_at_once_equals_its_rows_generated_one_by_one() {
        let plan = plan();
        let mut batch = TableBatch::with_capacity(Arc::clone(&plan), 3, 100);
        batch.fill(0, 0..100, Shard::WHOLE);
        let (mut arena, mut items, mut json) = (Vec::new(), Vec::new(), Vec::new());
        let mut store = Store {
            arena: &mut arena,
            items: &mut items,
            json: &mut json,
        };
        for (column, field) in plan.columns.iter().enumerate().take(3) {
            for row in 0..100 {
                let alone = field.generate(3, row as u64, &mut store);
                assert_eq!(batch.row(row)[column], alone, "{} row {row}", field.name);
            }
        }
    }

    #[test]
    fn fixed_width_rows_refill_and_encode_without_allocating() {
        let plan = Arc::new(TablePlan {
            columns: plan().columns[..2].to_vec(),
        });
        let mut batch = TableBatch::with_capacity(plan, 1, 1000);
        let mut out = Vec::new();
        let round = |seq: u64, batch: &mut TableBatch, out: &mut Vec<u8>| {
            batch.fill(seq, seq * 1000..(seq + 1) * 1000, Shard::WHOLE);
            for format in [RowFormat::CopyText, RowFormat::Csv, RowFormat::Ndjson] {
                out.clear();
                batch.encode(0..batch.len(), format, out).unwrap();
            }
        };
        round(0, &mut batch, &mut out);
        out.reserve(out.capacity());
        let measured = allocation_counter::measure(|| {
            for seq in 1..50 {
                round(seq, &mut batch, &mut out);
            }
        });
        assert_eq!(measured.count_total, 0, "{measured:?}");
    }
}
