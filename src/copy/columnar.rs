//! Arrow arrays (a Parquet file's decoded rows) into the text cells of a copy batch: the SQL type
//! each Arrow type loads as (what `--create` makes of a Parquet schema), and every value spelled
//! as the PostgreSQL text the batch's encoders take (binary COPY parses it back by the column's
//! type, so one set of encoders serves text and Parquet inputs). Nested values (lists, structs,
//! maps) become JSON text.
//!
//! Each column is converted in one loop over its rows with the array downcast once, into the
//! batch's reused buffers: no allocation per value, nested values aside.

use std::io::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float16Type,
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::Array;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{ArrowError, DataType, TimeUnit};

use super::batch::CellWriter;
use crate::encode::{self, TimestampStyle};
use crate::rows::SqlType;

/// Appends the text of the value at a row of the array it was made for.
type ValueWriter<'a> = Box<dyn Fn(usize, &mut Vec<u8>) + 'a>;

/// The column type values of `data_type` load as; `uuid` when the Parquet column is of the UUID
/// logical type (16 fixed bytes).
pub(crate) fn sql_type(data_type: &DataType, uuid: bool) -> SqlType {
    match data_type {
        DataType::Boolean => SqlType::Bool,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => SqlType::Int2,
        DataType::Int32 | DataType::UInt16 => SqlType::Int4,
        // An unsigned 64-bit value above bigint's range is a rejected row (`write_column`).
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::Int8,
        DataType::Float16 | DataType::Float32 => SqlType::Float4,
        DataType::Float64 => SqlType::Float8,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::Text,
        DataType::FixedSizeBinary(16) if uuid => SqlType::Uuid,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => SqlType::Bytea,
        DataType::Date32 | DataType::Date64 => SqlType::Date,
        // Arrow keeps a zoned timestamp as a UTC instant: timestamptz. A plain one is wall time.
        DataType::Timestamp(_, Some(_)) => SqlType::Timestamptz,
        DataType::Timestamp(_, None) => SqlType::Timestamp,
        DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
        DataType::Decimal128(..) | DataType::Decimal256(..) => SqlType::Numeric,
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(..)
        | DataType::Struct(_)
        | DataType::Map(..) => SqlType::Jsonb,
        DataType::Dictionary(_, values) => sql_type(values, uuid),
        // Durations, intervals and the rest: their text, as Arrow spells it.
        _ => SqlType::Text,
    }
}

/// Writes `array` into `column` of the cells, a value per row (NULL where the array has none).
/// `sql_type` is the target column's: an integer outside its range rejects the row, so that no
/// target wraps or truncates it. `uuid` spells 16 fixed bytes as a UUID.
pub(crate) fn write_column(
    array: &dyn Array,
    sql_type: SqlType,
    uuid: bool,
    column: usize,
    cells: &mut CellWriter<'_>,
) -> Result<(), ArrowError> {
    let unpacked;
    let array = match array.data_type() {
        DataType::Dictionary(_, values) => {
            unpacked = arrow_cast::cast(array, values)?;
            unpacked.as_ref()
        }
        _ => array,
    };
    reject_out_of_range(array, sql_type, cells);
    let value = text_writer(array, uuid)?;
    for row in 0..array.len() {
        if array.is_valid(row) {
            cells.set(row, column, |out| value(row, out));
        }
    }
    Ok(())
}

/// Rejects the rows of an integer array whose value the integer column type cannot hold.
fn reject_out_of_range(array: &dyn Array, sql_type: SqlType, cells: &mut CellWriter<'_>) {
    let (low, high, name) = match sql_type {
        SqlType::Int2 => (i128::from(i16::MIN), i128::from(i16::MAX), "smallint"),
        SqlType::Int4 => (i128::from(i32::MIN), i128::from(i32::MAX), "integer"),
        SqlType::Int8 => (i128::from(i64::MIN), i128::from(i64::MAX), "bigint"),
        _ => return,
    };
    let range = (low, high, name);
    match array.data_type() {
        DataType::Int8 => reject_outside::<Int8Type>(array, range, cells),
        DataType::Int16 => reject_outside::<Int16Type>(array, range, cells),
        DataType::Int32 => reject_outside::<Int32Type>(array, range, cells),
        DataType::Int64 => reject_outside::<Int64Type>(array, range, cells),
        DataType::UInt8 => reject_outside::<UInt8Type>(array, range, cells),
        DataType::UInt16 => reject_outside::<UInt16Type>(array, range, cells),
        DataType::UInt32 => reject_outside::<UInt32Type>(array, range, cells),
        DataType::UInt64 => reject_outside::<UInt64Type>(array, range, cells),
        _ => {}
    }
}

fn reject_outside<T>(array: &dyn Array, range: (i128, i128, &str), cells: &mut CellWriter<'_>)
where
    T: ArrowPrimitiveType,
    T::Native: Into<i128>,
{
    let (low, high, name) = range;
    for (row, value) in array.as_primitive::<T>().iter().enumerate() {
        if let Some(value) = value.map(Into::into).filter(|v| *v < low || *v > high) {
            cells.reject(
                row,
                format!("value {value} is out of range for type {name}"),
            );
        }
    }
}

/// The writer of an array's values as PostgreSQL text.
fn text_writer(array: &dyn Array, uuid: bool) -> Result<ValueWriter<'_>, ArrowError> {
    Ok(match array.data_type() {
        DataType::Boolean => {
            let values = array.as_boolean();
            Box::new(move |row, out| {
                out.extend_from_slice(if values.value(row) { b"true" } else { b"false" });
            })
        }
        DataType::Int8 => integers::<Int8Type>(array),
        DataType::Int16 => integers::<Int16Type>(array),
        DataType::Int32 => integers::<Int32Type>(array),
        DataType::Int64 => integers::<Int64Type>(array),
        DataType::UInt8 => integers::<UInt8Type>(array),
        DataType::UInt16 => integers::<UInt16Type>(array),
        DataType::UInt32 => integers::<UInt32Type>(array),
        DataType::UInt64 => integers::<UInt64Type>(array),
        DataType::Float16 => {
            let values = array.as_primitive::<Float16Type>();
            Box::new(move |row, out| float(out, f32::from(values.value(row))))
        }
        DataType::Float32 => {
            let values = array.as_primitive::<Float32Type>();
            Box::new(move |row, out| float(out, values.value(row)))
        }
        DataType::Float64 => {
            let values = array.as_primitive::<Float64Type>();
            Box::new(move |row, out| float(out, values.value(row)))
        }
        DataType::Utf8 => {
            let values = array.as_string::<i32>();
            Box::new(move |row, out| out.extend_from_slice(values.value(row).as_bytes()))
        }
        DataType::LargeUtf8 => {
            let values = array.as_string::<i64>();
            Box::new(move |row, out| out.extend_from_slice(values.value(row).as_bytes()))
        }
        DataType::Utf8View => {
            let values = array.as_string_view();
            Box::new(move |row, out| out.extend_from_slice(values.value(row).as_bytes()))
        }
        DataType::Binary => {
            let values = array.as_binary::<i32>();
            Box::new(move |row, out| bytea(out, values.value(row)))
        }
        DataType::LargeBinary => {
            let values = array.as_binary::<i64>();
            Box::new(move |row, out| bytea(out, values.value(row)))
        }
        DataType::BinaryView => {
            let values = array.as_binary_view();
            Box::new(move |row, out| bytea(out, values.value(row)))
        }
        DataType::FixedSizeBinary(16) if uuid => {
            let values = array.as_fixed_size_binary();
            Box::new(move |row, out| uuid_text(out, values.value(row)))
        }
        DataType::FixedSizeBinary(_) => {
            let values = array.as_fixed_size_binary();
            Box::new(move |row, out| bytea(out, values.value(row)))
        }
        DataType::Date32 => {
            let values = array.as_primitive::<Date32Type>();
            Box::new(move |row, out| date(out, i64::from(values.value(row))))
        }
        DataType::Date64 => {
            let values = array.as_primitive::<Date64Type>();
            Box::new(move |row, out| date(out, values.value(row).div_euclid(86_400_000)))
        }
        DataType::Timestamp(unit, zone) => {
            let style = match zone {
                Some(_) => TimestampStyle::Postgres,
                None => TimestampStyle::Unzoned,
            };
            let (values, to_micros) = match unit {
                TimeUnit::Second => (
                    array.as_primitive::<TimestampSecondType>().values(),
                    micros_of_seconds as fn(i64) -> i64,
                ),
                TimeUnit::Millisecond => (
                    array.as_primitive::<TimestampMillisecondType>().values(),
                    micros_of_millis as fn(i64) -> i64,
                ),
                TimeUnit::Microsecond => (
                    array.as_primitive::<TimestampMicrosecondType>().values(),
                    micros_of_micros as fn(i64) -> i64,
                ),
                TimeUnit::Nanosecond => (
                    array.as_primitive::<TimestampNanosecondType>().values(),
                    micros_of_nanos as fn(i64) -> i64,
                ),
            };
            Box::new(move |row, out| encode::timestamp(out, to_micros(values[row]), style))
        }
        DataType::Time32(TimeUnit::Second) => {
            let values = array.as_primitive::<Time32SecondType>();
            Box::new(move |row, out| time(out, micros_of_seconds(i64::from(values.value(row)))))
        }
        DataType::Time32(_) => {
            let values = array.as_primitive::<Time32MillisecondType>();
            Box::new(move |row, out| time(out, micros_of_millis(i64::from(values.value(row)))))
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            let values = array.as_primitive::<Time64NanosecondType>();
            Box::new(move |row, out| time(out, micros_of_nanos(values.value(row))))
        }
        DataType::Time64(_) => {
            let values = array.as_primitive::<Time64MicrosecondType>();
            Box::new(move |row, out| time(out, values.value(row)))
        }
        DataType::Decimal128(_, scale) => {
            let (values, scale) = (array.as_primitive::<Decimal128Type>(), *scale);
            Box::new(move |row, out| {
                decimal(out, itoa::Buffer::new().format(values.value(row)), scale);
            })
        }
        DataType::Decimal256(_, scale) => {
            let (values, scale) = (array.as_primitive::<Decimal256Type>(), *scale);
            Box::new(move |row, out| decimal(out, &values.value(row).to_string(), scale))
        }
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(..)
        | DataType::Struct(_)
        | DataType::Map(..) => json_writer(array)?,
        _ => displayed(array)?,
    })
}

/// The writer of an array's values as JSON: numbers and booleans bare, nested values as arrays
/// and objects, anything else as a string of its text; NULL as `null`.
fn json_writer(array: &dyn Array) -> Result<ValueWriter<'_>, ArrowError> {
    let value: ValueWriter<'_> = match array.data_type() {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => text_writer(array, false)?,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let text = text_writer(array, false)?;
            Box::new(move |row, out| {
                let start = out.len();
                text(row, out);
                // NaN and the infinities (`NaN`, `inf`, `-inf`) are no JSON numbers.
                if matches!(out.last(), Some(b'N' | b'f')) {
                    out.truncate(start);
                    out.extend_from_slice(b"null");
                }
            })
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let items = json_writer(list.values().as_ref())?;
            Box::new(move |row, out| {
                let offsets = list.value_offsets();
                json_list(
                    out,
                    offsets[row] as usize..offsets[row + 1] as usize,
                    &items,
                );
            })
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            let items = json_writer(list.values().as_ref())?;
            Box::new(move |row, out| {
                let offsets = list.value_offsets();
                json_list(
                    out,
                    offsets[row] as usize..offsets[row + 1] as usize,
                    &items,
                );
            })
        }
        DataType::FixedSizeList(_, size) => {
            let (list, size) = (array.as_fixed_size_list(), *size as usize);
            let items = json_writer(list.values().as_ref())?;
            Box::new(move |row, out| {
                let start = list.value_offset(row) as usize;
                json_list(out, start..start + size, &items);
            })
        }
        DataType::Struct(fields) => {
            let members = array.as_struct();
            let children: Vec<(&str, ValueWriter<'_>)> = fields
                .iter()
                .zip(members.columns())
                .map(|(field, child)| Ok((field.name().as_str(), json_writer(child.as_ref())?)))
                .collect::<Result<_, ArrowError>>()?;
            Box::new(move |row, out| {
                out.push(b'{');
                for (i, (name, child)) in children.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    encode::json_string(out, name);
                    out.push(b':');
                    child(row, out);
                }
                out.push(b'}');
            })
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let keys = quoted_writer(map.keys().as_ref())?;
            let values = json_writer(map.values().as_ref())?;
            Box::new(move |row, out| {
                let offsets = map.value_offsets();
                out.push(b'{');
                for (i, entry) in (offsets[row] as usize..offsets[row + 1] as usize).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    keys(entry, out);
                    out.push(b':');
                    values(entry, out);
                }
                out.push(b'}');
            })
        }
        _ => quoted_writer(array)?,
    };
    Ok(Box::new(move |row, out| {
        if array.is_null(row) {
            out.extend_from_slice(b"null");
        } else {
            value(row, out);
        }
    }))
}

/// Appends the JSON array of the items at `rows`.
fn json_list(out: &mut Vec<u8>, rows: std::ops::Range<usize>, items: &ValueWriter<'_>) {
    out.push(b'[');
    for (i, item) in rows.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        items(item, out);
    }
    out.push(b']');
}

/// The writer of an array's values as JSON strings of their text.
fn quoted_writer(array: &dyn Array) -> Result<ValueWriter<'_>, ArrowError> {
    let text = text_writer(array, false)?;
    Ok(Box::new(move |row, out| {
        let mut spelled = Vec::new();
        text(row, &mut spelled);
        encode::json_string(out, &String::from_utf8_lossy(&spelled));
    }))
}

/// The writer of the values of a type loader spells no other way: as Arrow displays them.
fn displayed(array: &dyn Array) -> Result<ValueWriter<'_>, ArrowError> {
    let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
    Ok(Box::new(move |row, out| {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{}", formatter.value(row));
    }))
}

fn integers<T>(array: &dyn Array) -> ValueWriter<'_>
where
    T: ArrowPrimitiveType,
    T::Native: itoa::Integer,
{
    let values = array.as_primitive::<T>();
    Box::new(move |row, out| encode::integer(out, values.value(row)))
}

/// A float as the shortest text that reads back as the same value (ryu: several times quicker
/// than `Display`, which took a third of a Parquet load's client time); `NaN`, `inf` and `-inf`,
/// which PostgreSQL reads too, for the others.
fn float<T>(out: &mut Vec<u8>, value: T)
where
    T: ryu::Float + Into<f64> + std::fmt::Display + Copy,
{
    if value.into().is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    } else {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{value}");
    }
}

/// `\x` and two hex digits a byte: bytea's text.
fn bytea(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(b"\\x");
    hex(out, bytes);
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 15)]);
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn uuid_text(out: &mut Vec<u8>, bytes: &[u8]) {
    for (i, group) in [0..4, 4..6, 6..8, 8..10, 10..16].into_iter().enumerate() {
        if i > 0 {
            out.push(b'-');
        }
        hex(out, &bytes[group]);
    }
}

/// `YYYY-MM-DD` of days since 1970-01-01 (years 0 to 9999).
fn date(out: &mut Vec<u8>, days: i64) {
    let (year, month, day) = encode::civil_from_days(days);
    encode::push_digits(out, year.clamp(0, 9999) as u32, 4);
    out.push(b'-');
    encode::push_digits(out, month, 2);
    out.push(b'-');
    encode::push_digits(out, day, 2);
}

/// `hh:mm:ss.ffffff` of microseconds since midnight.
fn time(out: &mut Vec<u8>, micros: i64) {
    let seconds = micros.div_euclid(1_000_000);
    encode::push_digits(out, (seconds / 3600).clamp(0, 24) as u32, 2);
    out.push(b':');
    encode::push_digits(out, (seconds / 60 % 60) as u32, 2);
    out.push(b':');
    encode::push_digits(out, (seconds % 60) as u32, 2);
    out.push(b'.');
    encode::push_digits(out, micros.rem_euclid(1_000_000) as u32, 6);
}

/// A decimal of `digits` (an integer, maybe signed) units of `10^-scale`.
fn decimal(out: &mut Vec<u8>, digits: &str, scale: i8) {
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(magnitude) => ("-", magnitude),
        None => ("", digits),
    };
    out.extend_from_slice(sign.as_bytes());
    if scale <= 0 {
        out.extend_from_slice(digits.as_bytes());
        if digits != "0" {
            out.resize(out.len() + usize::from(scale.unsigned_abs()), b'0');
        }
        return;
    }
    let scale = usize::from(scale.unsigned_abs());
    if digits.len() <= scale {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + scale - digits.len(), b'0');
        out.extend_from_slice(digits.as_bytes());
    } else {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(whole.as_bytes());
        out.push(b'.');
        out.extend_from_slice(fraction.as_bytes());
    }
}

fn micros_of_seconds(seconds: i64) -> i64 {
    seconds.saturating_mul(1_000_000)
}

fn micros_of_millis(millis: i64) -> i64 {
    millis.saturating_mul(1_000)
}

fn micros_of_micros(micros: i64) -> i64 {
    micros
}

/// PostgreSQL keeps microseconds: nanoseconds are cut to the microsecond below.
fn micros_of_nanos(nanos: i64) -> i64 {
    nanos.div_euclid(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spelled(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(spelled(|o| decimal(o, "-305", 2)), "-3.05");
        assert_eq!(spelled(|o| decimal(o, "5", 3)), "0.005");
        assert_eq!(spelled(|o| decimal(o, "-5", 3)), "-0.005");
        assert_eq!(spelled(|o| decimal(o, "12", -2)), "1200");
        assert_eq!(spelled(|o| decimal(o, "0", -2)), "0");
        assert_eq!(spelled(|o| decimal(o, "12", 0)), "12");
    }

    #[test]
    fn dates_times_and_uuids() {
        assert_eq!(spelled(|o| date(o, 0)), "1970-01-01");
        assert_eq!(spelled(|o| date(o, -1)), "1969-12-31");
        assert_eq!(spelled(|o| time(o, 3_723_000_004)), "01:02:03.000004");
        assert_eq!(
            spelled(|o| uuid_text(o, &(0..16).collect::<Vec<u8>>())),
            "00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
        assert_eq!(spelled(|o| bytea(o, &[0, 255])), "\\x00ff");
        assert_eq!(micros_of_nanos(-1), -1);
        assert_eq!(spelled(|o| float(o, 0.1f32)), "0.1");
        assert_eq!(spelled(|o| float(o, -2.5f64)), "-2.5");
        assert_eq!(spelled(|o| float(o, f64::NEG_INFINITY)), "-inf");
        assert_eq!(spelled(|o| float(o, f32::NAN)), "NaN");
    }
}
