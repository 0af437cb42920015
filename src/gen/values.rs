//! A [`Cell`]'s value in each format: binary COPY fields, and the text spellings of text COPY,
//! CSV, SQL literals and JSON, by the column's [`ValueType`].

use std::cell::RefCell;

use crate::encode::{self, binary, TimestampStyle, PG_EPOCH_OFFSET_MICROS};
use crate::gen::model::{Cell, Field, Generator, ValueType};
use crate::rows::Unencodable;

/// How a value is spelled: the text formats differ in NULL, quoting and escaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    CopyText,
    Csv,
    Sql,
    Json(TimestampStyle),
}

/// Appends one binary COPY field. Types the binary encoders here do not write (time, interval,
/// inet, enums, arrays: the sinks load a table with such a column as text) answer [`Unencodable`]: the batch goes as text COPY.
#[inline]
pub(crate) fn binary_cell(
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
        (ValueType::Numeric { scale, .. }, Cell::Int(units)) => binary::numeric(out, units, *scale),
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
pub(crate) fn text_cell(
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
            let Generator::Array { element, .. } = &field.generator else {
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
                TimestampStyle::Seconds | TimestampStyle::Unzoned => 0,
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
