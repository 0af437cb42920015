//! Value encoders shared by the row formats: PostgreSQL binary COPY framing and fields, integers,
//! decimals, timestamps and CSV quoting. They append to a caller's reused buffer and never
//! allocate.

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
pub(crate) const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// PostgreSQL binary COPY framing and field encoders.
pub(crate) mod binary {
    use super::PG_EPOCH_OFFSET_MICROS;

    /// The binary COPY header: signature, flags, header-extension length.
    pub(crate) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    /// The binary COPY trailer: a field count of -1.
    pub(crate) const TRAILER: &[u8] = &(-1i16).to_be_bytes();

    /// Starts a tuple of `fields` fields.
    #[inline]
    pub(crate) fn tuple(out: &mut Vec<u8>, fields: i16) {
        out.extend_from_slice(&fields.to_be_bytes());
    }

    /// A field of these bytes: their length, then them.
    #[inline]
    pub(crate) fn bytes(out: &mut Vec<u8>, payload: &[u8]) {
        out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        out.extend_from_slice(payload);
    }

    #[inline]
    pub(crate) fn int8(out: &mut Vec<u8>, value: i64) {
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }

    #[inline]
    pub(crate) fn int4(out: &mut Vec<u8>, value: i32) {
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }

    #[inline]
    pub(crate) fn float8(out: &mut Vec<u8>, value: f64) {
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&value.to_bits().to_be_bytes());
    }

    #[inline]
    pub(crate) fn text(out: &mut Vec<u8>, value: &str) {
        out.extend_from_slice(&(value.len() as i32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }

    /// A NULL field.
    #[inline]
    pub(crate) fn null(out: &mut Vec<u8>) {
        out.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// A numeric field of `units × 10^-scale`: base-10000 digits, most significant first, with
    /// the weight of the first, the sign and the display scale.
    pub(crate) fn numeric(out: &mut Vec<u8>, units: i64, scale: u8) {
        // Align the decimal point to a digit boundary: pad the fraction to a multiple of 4.
        let pad = (4 - u32::from(scale) % 4) % 4;
        let mut value = u128::from(units.unsigned_abs()) * 10u128.pow(pad);
        let fraction_digits = (i32::from(scale) + pad as i32) / 4;
        let mut digits = [0i16; 12];
        let mut count = 0;
        while value > 0 {
            digits[count] = (value % 10_000) as i16;
            value /= 10_000;
            count += 1;
        }
        let weight = count as i32 - 1 - fraction_digits;
        // Trailing zero digits are implied by the weight.
        let first_kept = digits[..count].iter().take_while(|&&d| d == 0).count();
        let kept = &digits[first_kept..count];
        out.extend_from_slice(&((8 + 2 * kept.len()) as i32).to_be_bytes());
        out.extend_from_slice(&(kept.len() as i16).to_be_bytes());
        out.extend_from_slice(&(if kept.is_empty() { 0 } else { weight as i16 }).to_be_bytes());
        out.extend_from_slice(&(if units < 0 { 0x4000u16 } else { 0 }).to_be_bytes());
        out.extend_from_slice(&u16::from(scale).to_be_bytes());
        for digit in kept.iter().rev() {
            out.extend_from_slice(&digit.to_be_bytes());
        }
    }

    /// A jsonb field: a version byte, then the JSON text.
    #[inline]
    pub(crate) fn jsonb(out: &mut Vec<u8>, json: &[u8]) {
        out.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
        out.push(1);
        out.extend_from_slice(json);
    }

    /// A one-dimensional `real[]` without NULLs: dimensions, no-null flag, element type (float4,
    /// OID 700), length and lower bound 1, then each element as a 4-byte field.
    pub(crate) fn float4_array(out: &mut Vec<u8>, values: &[f32]) {
        const FLOAT4_OID: i32 = 700;
        let header = [1, 0, FLOAT4_OID, values.len() as i32, 1];
        out.extend_from_slice(&((4 * header.len() + 8 * values.len()) as i32).to_be_bytes());
        for word in header {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for value in values {
            out.extend_from_slice(&4i32.to_be_bytes());
            out.extend_from_slice(&value.to_bits().to_be_bytes());
        }
    }

    /// A timestamptz given as microseconds since the Unix epoch.
    #[inline]
    pub(crate) fn timestamptz(out: &mut Vec<u8>, unix_micros: i64) {
        int8(out, unix_micros - PG_EPOCH_OFFSET_MICROS);
    }
}

/// Appends an integer in decimal.
#[inline]
pub(crate) fn integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends a count of units of `10^-scale` as a decimal with `scale` places: `-305`, 2 →
/// `-3.05`.
#[inline]
pub(crate) fn decimal(out: &mut Vec<u8>, units: i64, scale: u8) {
    if units < 0 {
        out.push(b'-');
    }
    let magnitude = units.unsigned_abs();
    if scale == 0 {
        integer(out, magnitude);
        return;
    }
    let divisor = 10u64.pow(u32::from(scale.min(19)));
    integer(out, magnitude / divisor);
    out.push(b'.');
    let mut fraction = magnitude % divisor;
    let mut buffer = [b'0'; 19];
    for slot in buffer[..usize::from(scale.min(19))].iter_mut().rev() {
        *slot = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    out.extend_from_slice(&buffer[..usize::from(scale.min(19))]);
}

/// How a timestamp is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampStyle {
    /// `2026-01-01 00:00:00.010000+00`, PostgreSQL's own output style.
    Postgres,
    /// `2026-01-01T00:00:00.010000Z`, RFC 3339.
    Rfc3339,
    /// `2026-01-01 00:00:00`, UTC to the second: what ClickHouse 18's `DateTime` reads.
    Seconds,
    /// `2026-01-01 00:00:00.010000`: a timestamp without time zone, in PostgreSQL's style.
    Unzoned,
}

/// Appends a UTC timestamp given as microseconds since the Unix epoch (years 0..=9999).
pub(crate) fn timestamp(out: &mut Vec<u8>, unix_micros: i64, style: TimestampStyle) {
    let seconds = unix_micros.div_euclid(1_000_000);
    let micros = unix_micros.rem_euclid(1_000_000) as u32;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400) as u32;
    let (date_time_separator, zone) = match style {
        TimestampStyle::Postgres => (b' ', &b"+00"[..]),
        TimestampStyle::Rfc3339 => (b'T', &b"Z"[..]),
        TimestampStyle::Seconds | TimestampStyle::Unzoned => (b' ', &b""[..]),
    };
    let fields = if style == TimestampStyle::Seconds {
        5
    } else {
        6
    };
    push_digits(out, year.clamp(0, 9999) as u32, 4);
    for (separator, value, width) in [
        (b'-', month, 2),
        (b'-', day, 2),
        (date_time_separator, second_of_day / 3600, 2),
        (b':', second_of_day / 60 % 60, 2),
        (b':', second_of_day % 60, 2),
        (b'.', micros, 6),
    ]
    .into_iter()
    .take(fields)
    {
        out.push(separator);
        push_digits(out, value, width);
    }
    out.extend_from_slice(zone);
}

/// Appends `value` as exactly `width` (at most 6) zero-padded decimal digits.
#[inline]
pub(crate) fn push_digits(out: &mut Vec<u8>, mut value: u32, width: usize) {
    let mut buffer = [b'0'; 6];
    for slot in buffer[..width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&buffer[..width]);
}

/// Appends `value` escaped for PostgreSQL's text COPY format (backslash, tab, line feed, carriage
/// return).
pub(crate) fn copy_text(out: &mut Vec<u8>, value: &[u8]) {
    for &byte in value {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(byte),
        }
    }
}

/// Appends `text` as a JSON string, quoted and escaped.
pub(crate) fn json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing JSON to a Vec cannot fail");
}

/// Appends `text` as a CSV field, quoted only when it holds a comma, quote or line break.
pub(crate) fn csv_field(out: &mut Vec<u8>, text: &[u8]) {
    if !text
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.extend_from_slice(text);
        return;
    }
    quoted(out, text, b'"');
}

/// Days in `month` (1-12) of `year`, proleptic Gregorian.
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Appends each of `items` with `each`, and `separator` between them.
#[inline]
pub(crate) fn separated<T>(
    out: &mut Vec<u8>,
    separator: u8,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut Vec<u8>, T),
) {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(separator);
        }
        each(out, item);
    }
}

/// Appends `text` between `quote`s, doubling any `quote` inside (CSV fields, SQL literals).
pub(crate) fn quoted(out: &mut Vec<u8>, text: &[u8], quote: u8) {
    out.push(quote);
    for &byte in text {
        if byte == quote {
            out.push(quote);
        }
        out.push(byte);
    }
    out.push(quote);
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of [`civil_from_days`]).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_index + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Converts days since 1970-01-01 into a proleptic Gregorian (year, month, day)
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timestamps_in_both_styles() {
        let start_2026 = 1_767_225_600_000_000;
        assert_eq!(
            text(|o| timestamp(o, start_2026 + 10_000, TimestampStyle::Postgres)),
            "2026-01-01 00:00:00.010000+00"
        );
        assert_eq!(
            text(|o| timestamp(
                o,
                951_782_400_000_000 + 3_723_000_001,
                TimestampStyle::Rfc3339
            )),
            "2000-02-29T01:02:03.000001Z"
        );
        assert_eq!(
            text(|o| timestamp(o, 0, TimestampStyle::Postgres)),
            "1970-01-01 00:00:00.000000+00"
        );
        assert_eq!(
            text(|o| timestamp(o, -1, TimestampStyle::Rfc3339)),
            "1969-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            text(|o| timestamp(o, 1_767_225_600_123_456, TimestampStyle::Seconds)),
            "2026-01-01 00:00:00"
        );
    }

    #[test]
    fn civil_dates_round_trip_over_four_centuries() {
        let mut expected = (1970, 1, 1);
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), expected);
            assert_eq!(days_from_civil(expected.0, expected.1, expected.2), days);
            let (y, m, d) = expected;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = [
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
            expected = if d < month_len[m as usize - 1] {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn decimals_print_their_places() {
        for (centi, expected) in [
            (0, "0.00"),
            (-5, "-0.05"),
            (-305, "-3.05"),
            (2474, "24.74"),
            (-2000, "-20.00"),
        ] {
            assert_eq!(text(|o| decimal(o, centi, 2)), expected);
            assert_eq!(expected.parse::<f64>().unwrap(), centi as f64 / 100.0);
        }
        assert_eq!(text(|o| decimal(o, -7, 0)), "-7");
        assert_eq!(text(|o| decimal(o, 12_345, 4)), "1.2345");
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(text(|o| csv_field(o, b"plain")), "plain");
        assert_eq!(text(|o| csv_field(o, b"a,\"b\"")), "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn numerics_are_base_10000_digits_with_weight_sign_and_scale() {
        let numeric = |units, scale| {
            let mut out = Vec::new();
            binary::numeric(&mut out, units, scale);
            out
        };
        // 12345.67: digits 1, 2345, 6700; weight 1; scale 2.
        assert_eq!(
            numeric(1_234_567, 2),
            [0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1A, 0x2C]
        );
        // -0.05: one digit 500 of weight -1, negative.
        assert_eq!(
            numeric(-5, 2),
            [0, 0, 0, 10, 0, 1, 0xFF, 0xFF, 0x40, 0, 0, 2, 0x01, 0xF4]
        );
        // 0 and 10000: no digits; one digit 1 of weight 1.
        assert_eq!(numeric(0, 2), [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(
            numeric(10_000, 0),
            [0, 0, 0, 10, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn binary_fields_are_length_prefixed_big_endian() {
        let mut out = Vec::new();
        binary::int4(&mut out, 7);
        binary::text(&mut out, "ok");
        assert_eq!(out, [0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 2, b'o', b'k']);
        out.clear();
        binary::timestamptz(&mut out, PG_EPOCH_OFFSET_MICROS + 1);
        assert_eq!(out, [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(binary::HEADER.len(), 19);
    }
}
