//! Text values to PostgreSQL binary COPY fields, by the target column's type.
//!
//! The parsers are strict on purpose: they accept the spellings files commonly hold (integers,
//! decimal and exponent floats, ISO dates and timestamps with a zone, canonical UUIDs, `\x` hex
//! bytea) and answer [`Unencodable`] for anything else. The batch is then sent as text COPY, so
//! the server's own input functions decide, and a bad value is rejected with the server's message.

use crate::encode::binary::bytes as sized;
use crate::encode::{binary, days_from_civil, days_in_month, PG_EPOCH_OFFSET_MICROS};
use crate::rows::{SqlType, Unencodable};

/// Appends `text` as one binary field (length and payload) of type `sql_type`.
pub(crate) fn encode_field(
    sql_type: SqlType,
    text: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Unencodable> {
    match sql_type {
        SqlType::Text | SqlType::Json => sized(out, text),
        SqlType::Jsonb => binary::jsonb(out, text),
        SqlType::Int2 => sized(
            out,
            &i16::try_from(integer(text)?)
                .map_err(|_| Unencodable)?
                .to_be_bytes(),
        ),
        SqlType::Int4 => sized(
            out,
            &i32::try_from(integer(text)?)
                .map_err(|_| Unencodable)?
                .to_be_bytes(),
        ),
        SqlType::Int8 => sized(out, &integer(text)?.to_be_bytes()),
        SqlType::Float4 => sized(out, &float::<f32>(text)?.to_bits().to_be_bytes()),
        SqlType::Float8 => sized(out, &float::<f64>(text)?.to_bits().to_be_bytes()),
        SqlType::Bool => sized(out, &[u8::from(boolean(text)?)]),
        SqlType::Date => sized(out, &date(text)?.to_be_bytes()),
        SqlType::Timestamptz => sized(out, &timestamp(text, true)?.to_be_bytes()),
        SqlType::Timestamp => sized(out, &timestamp(text, false)?.to_be_bytes()),
        SqlType::Time => match time_of_day(text.trim_ascii())? {
            (micros, []) => sized(out, &micros.to_be_bytes()),
            _ => return Err(Unencodable),
        },
        SqlType::Uuid => sized(out, &uuid(text)?),
        SqlType::Bytea => {
            let hex = text.strip_prefix(b"\\x").ok_or(Unencodable)?;
            if hex.len() % 2 != 0 {
                return Err(Unencodable);
            }
            out.extend_from_slice(&(hex.len() as i32 / 2).to_be_bytes());
            for pair in hex.chunks_exact(2) {
                out.push(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?);
            }
        }
        // Arrays from text are left to the server's parser.
        SqlType::Numeric => {
            let (units, scale) = decimal(text)?;
            binary::numeric(out, units, scale);
        }
        SqlType::Other | SqlType::Float4Array => return Err(Unencodable),
    }
    Ok(())
}

fn trimmed(text: &[u8]) -> Result<&str, Unencodable> {
    std::str::from_utf8(text.trim_ascii()).map_err(|_| Unencodable)
}

/// A finite float. Out-of-range text, which PostgreSQL refuses but Rust rounds to infinity or
/// zero, and the spellings of infinity and NaN are left to the server.
fn float<T>(text: &[u8]) -> Result<T, Unencodable>
where
    T: std::str::FromStr + Into<f64> + Copy,
{
    let text = trimmed(text)?;
    let value: T = text.parse().map_err(|_| Unencodable)?;
    let as_f64: f64 = value.into();
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let underflowed = as_f64 == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if !as_f64.is_finite() || underflowed {
        return Err(Unencodable);
    }
    Ok(value)
}

/// An optionally signed decimal integer, blanks around it allowed; checked for overflow.
/// A decimal without an exponent (`-12.50`), as units × 10^-scale, when its digits fit an `i64`;
/// longer ones, exponents, `NaN` and the infinities are left to the server, which keeps every
/// digit.
fn decimal(text: &[u8]) -> Result<(i64, u8), Unencodable> {
    let text = text.trim_ascii();
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    let (mut units, mut scale, mut seen_point, mut seen_digit) = (0i64, 0u8, false, false);
    for &byte in digits {
        match byte {
            b'.' if !seen_point => seen_point = true,
            b'0'..=b'9' => {
                seen_digit = true;
                units = units
                    .checked_mul(10)
                    .and_then(|units| units.checked_add(i64::from(byte - b'0')))
                    .ok_or(Unencodable)?;
                scale += u8::from(seen_point);
            }
            _ => return Err(Unencodable),
        }
    }
    if !seen_digit {
        return Err(Unencodable);
    }
    Ok((if negative { -units } else { units }, scale))
}

fn integer(text: &[u8]) -> Result<i64, Unencodable> {
    let text = text.trim_ascii();
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(Unencodable);
    }
    // Accumulated as a negative number, so that i64::MIN parses too.
    let mut value = 0i64;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(Unencodable);
        }
        value = value
            .checked_mul(10)
            .and_then(|value| value.checked_sub(i64::from(digit - b'0')))
            .ok_or(Unencodable)?;
    }
    if negative {
        Ok(value)
    } else {
        value.checked_neg().ok_or(Unencodable)
    }
}

/// PostgreSQL's boolean spellings (case-insensitive, surrounding blanks allowed).
fn boolean(text: &[u8]) -> Result<bool, Unencodable> {
    match trimmed(text)?.to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Ok(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Ok(false),
        _ => Err(Unencodable),
    }
}

fn hex_digit(byte: u8) -> Result<u8, Unencodable> {
    match byte {
        b'0'..=b'9' => Ok(byte - b'0'),
        b'a'..=b'f' => Ok(byte - b'a' + 10),
        b'A'..=b'F' => Ok(byte - b'A' + 10),
        _ => Err(Unencodable),
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` or 32 bare hex digits.
fn uuid(text: &[u8]) -> Result<[u8; 16], Unencodable> {
    let text = text.trim_ascii();
    let digits: Vec<u8> = match text.len() {
        36 if [8, 13, 18, 23].iter().all(|&i| text[i] == b'-') => {
            text.iter().copied().filter(|&b| b != b'-').collect()
        }
        32 => text.to_vec(),
        _ => return Err(Unencodable),
    };
    if digits.len() != 32 {
        return Err(Unencodable);
    }
    let mut bytes = [0u8; 16];
    for (slot, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *slot = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Ok(bytes)
}

/// A fixed-width run of ASCII digits.
fn digits(text: &[u8]) -> Result<u32, Unencodable> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(Unencodable);
    }
    Ok(text
        .iter()
        .fold(0, |value, &digit| value * 10 + u32::from(digit - b'0')))
}

/// `YYYY-MM-DD` as days since 2000-01-01.
fn date(text: &[u8]) -> Result<i32, Unencodable> {
    let text = text.trim_ascii();
    if text.len() != 10 {
        return Err(Unencodable);
    }
    let days = civil_days(text)?;
    i32::try_from(days - days_from_civil(2000, 1, 1)).map_err(|_| Unencodable)
}

/// Days since 1970-01-01 of the `YYYY-MM-DD` at the start of `text`, checked.
fn civil_days(text: &[u8]) -> Result<i64, Unencodable> {
    if text.len() < 10 || text[4] != b'-' || text[7] != b'-' {
        return Err(Unencodable);
    }
    let (year, month, day) = (
        digits(&text[..4])?,
        digits(&text[5..7])?,
        digits(&text[8..10])?,
    );
    // There is no year 0 (PostgreSQL refuses it; 1 BC is spelled with `BC`).
    if year == 0 {
        return Err(Unencodable);
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(i64::from(year), month) {
        return Err(Unencodable);
    }
    Ok(days_from_civil(i64::from(year), month, day))
}

/// `YYYY-MM-DD[ T]HH:MM:SS[.ffffff]` and, for `with_zone`, a required `Z` or `±HH[[:]MM]`, as
/// microseconds since 2000-01-01 (UTC for `with_zone`). A zone-less timestamptz, whose meaning
/// depends on the session's time zone, is left to the server.
fn timestamp(text: &[u8], with_zone: bool) -> Result<i64, Unencodable> {
    let text = text.trim_ascii();
    if text.len() < 19 || !matches!(text[10], b' ' | b'T') {
        return Err(Unencodable);
    }
    let days = civil_days(&text[..10])?;
    let (time_micros, rest) = time_of_day(&text[11..])?;
    let offset_seconds = match (with_zone, rest) {
        (false, []) => 0,
        (true, b"Z" | b"z") => 0,
        (true, [sign @ (b'+' | b'-'), zone @ ..]) => {
            let (hours, minutes) = match zone {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return Err(Unencodable),
            };
            if hours > 15 || minutes > 59 {
                return Err(Unencodable);
            }
            let seconds = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return Err(Unencodable),
    };
    Ok((days * 86_400 - offset_seconds) * 1_000_000 + time_micros - PG_EPOCH_OFFSET_MICROS)
}

/// `HH:MM:SS[.ffffff]` at the start of `text` as microseconds since midnight, and what follows.
fn time_of_day(text: &[u8]) -> Result<(i64, &[u8]), Unencodable> {
    if text.len() < 8 || text[2] != b':' || text[5] != b':' {
        return Err(Unencodable);
    }
    let (hour, minute, second) = (
        digits(&text[..2])?,
        digits(&text[3..5])?,
        digits(&text[6..8])?,
    );
    if hour > 23 || minute > 59 || second > 59 {
        return Err(Unencodable);
    }
    let mut rest = &text[8..];
    let mut micros = 0i64;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let width = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if width == 0 || width > 6 {
            return Err(Unencodable);
        }
        micros = i64::from(digits(&fraction[..width])?) * 10i64.pow(6 - width as u32);
        rest = &fraction[width..];
    }
    let seconds = i64::from(hour * 3600 + minute * 60 + second);
    Ok((seconds * 1_000_000 + micros, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(sql_type: SqlType, text: &str) -> Result<Vec<u8>, Unencodable> {
        let mut out = Vec::new();
        encode_field(sql_type, text.as_bytes(), &mut out)?;
        Ok(out[4..].to_vec())
    }

    #[test]
    fn integers_respect_their_width() {
        assert_eq!(
            field(SqlType::Int4, " 42 "),
            Ok(42i32.to_be_bytes().to_vec())
        );
        assert_eq!(
            field(SqlType::Int2, "-32768"),
            Ok((-32768i16).to_be_bytes().to_vec())
        );
        assert_eq!(field(SqlType::Int2, "32768"), Err(Unencodable));
        assert_eq!(field(SqlType::Int8, "1.0"), Err(Unencodable));
        assert_eq!(field(SqlType::Int8, "abc"), Err(Unencodable));
        assert_eq!(
            field(SqlType::Int8, "-9223372036854775808"),
            Ok(i64::MIN.to_be_bytes().to_vec())
        );
        assert_eq!(
            field(SqlType::Int8, "9223372036854775808"),
            Err(Unencodable)
        );
        assert_eq!(field(SqlType::Int8, "+5"), Ok(5i64.to_be_bytes().to_vec()));
        assert_eq!(field(SqlType::Int8, "-"), Err(Unencodable));
    }

    #[test]
    fn timestamps_with_zones_become_pg_microseconds() {
        let expected = |micros: i64| Ok(micros.to_be_bytes().to_vec());
        // 2026-01-01 is 9,497 days (820,540,800 s) after 2000-01-01.
        let start_2026 = 820_540_800_000_000i64;
        assert_eq!(
            field(SqlType::Timestamptz, "2026-01-01T00:00:00.010000Z"),
            expected(start_2026 + 10_000)
        );
        assert_eq!(
            field(SqlType::Timestamptz, "2026-01-01 01:00:00.01+01"),
            expected(start_2026 + 10_000)
        );
        assert_eq!(
            field(SqlType::Timestamptz, "2025-12-31 23:30:00-00:30"),
            expected(start_2026)
        );
        assert_eq!(
            field(SqlType::Timestamp, "2026-01-01 00:00:00"),
            expected(start_2026)
        );
        assert_eq!(
            field(SqlType::Timestamptz, "2026-01-01 00:00:00"),
            Err(Unencodable)
        );
        assert_eq!(
            field(SqlType::Timestamp, "2026-01-01 00:00:00+02"),
            Err(Unencodable)
        );
        assert_eq!(
            field(SqlType::Timestamptz, "2026-02-30 00:00:00Z"),
            Err(Unencodable)
        );
        assert_eq!(
            field(SqlType::Timestamptz, "2026-01-01 00:00:00.1234567Z"),
            Err(Unencodable)
        );
        assert_eq!(
            field(SqlType::Date, "2000-01-02"),
            Ok(1i32.to_be_bytes().to_vec())
        );
        assert_eq!(
            field(SqlType::Date, "1999-12-31"),
            Ok((-1i32).to_be_bytes().to_vec())
        );
    }

    #[test]
    fn other_types() {
        assert_eq!(field(SqlType::Bool, "Yes"), Ok(vec![1]));
        assert_eq!(field(SqlType::Bool, "maybe"), Err(Unencodable));
        assert_eq!(field(SqlType::Bytea, "\\x00fF"), Ok(vec![0, 255]));
        assert_eq!(field(SqlType::Bytea, "\\x0"), Err(Unencodable));
        assert_eq!(
            field(SqlType::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").map(|b| b.len()),
            Ok(16)
        );
        assert_eq!(field(SqlType::Uuid, "a0eebc99"), Err(Unencodable));
        assert_eq!(field(SqlType::Jsonb, "{}"), Ok(b"\x01{}".to_vec()));
        assert_eq!(
            field(SqlType::Float8, "-1.5e3"),
            Ok((-1500f64).to_bits().to_be_bytes().to_vec())
        );
        assert_eq!(field(SqlType::Other, "1.5"), Err(Unencodable));
        // What PostgreSQL refuses as out of range, or spells its own way, goes to the server.
        for text in ["1e400", "-1e400", "1e-400", "inf", "NaN"] {
            assert_eq!(field(SqlType::Float8, text), Err(Unencodable), "{text}");
        }
        for text in ["1e39", "1e-50"] {
            assert_eq!(field(SqlType::Float4, text), Err(Unencodable), "{text}");
        }
        assert_eq!(
            field(SqlType::Float8, "0.0e5"),
            Ok(0f64.to_bits().to_be_bytes().to_vec())
        );
        assert_eq!(field(SqlType::Float8, "1e-310").map(|b| b.len()), Ok(8));
        assert_eq!(field(SqlType::Date, "0000-01-01"), Err(Unencodable));
        assert_eq!(
            field(SqlType::Time, "01:02:03.5"),
            Ok(3_723_500_000i64.to_be_bytes().to_vec())
        );
        assert_eq!(field(SqlType::Time, "24:00:00"), Err(Unencodable));
        assert_eq!(field(SqlType::Time, "01:02:03Z"), Err(Unencodable));
        // The field without its length, as `field` gives it.
        let numeric = |units, scale| {
            let mut out = Vec::new();
            binary::numeric(&mut out, units, scale);
            out.split_off(4)
        };
        assert_eq!(field(SqlType::Numeric, " -12.50 "), Ok(numeric(-1250, 2)));
        assert_eq!(field(SqlType::Numeric, "7"), Ok(numeric(7, 0)));
        assert_eq!(field(SqlType::Numeric, ".5"), Ok(numeric(5, 1)));
        for server_parses in ["1e5", "NaN", "1.2.3", ".", "", "12345678901234567890"] {
            assert_eq!(field(SqlType::Numeric, server_parses), Err(Unencodable));
        }
    }
}
