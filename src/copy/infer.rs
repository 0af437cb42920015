//! The type ladder: the narrowest column type that every sampled value of a column fits, tried
//! with the same strict parsers that encode binary COPY (`typed.rs`), so that a type inferred
//! here is a type the load can send.

use super::typed;
use crate::rows::SqlType;

/// The types a column may get, narrowest first. A value that fits none leaves the column `text`.
const LADDER: [SqlType; 12] = [
    SqlType::Bool,
    SqlType::Int2,
    SqlType::Int4,
    SqlType::Int8,
    SqlType::Float8,
    SqlType::Numeric,
    SqlType::Date,
    SqlType::Timestamp,
    SqlType::Timestamptz,
    SqlType::Time,
    SqlType::Uuid,
    SqlType::Jsonb,
];

/// Significant digits a double keeps exactly: a decimal with more is `numeric`.
const DOUBLE_DIGITS: usize = 15;

/// What the sampled values of one column showed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnEvidence {
    /// Non-NULL values seen (null markers not counted).
    pub values: u64,
    /// Fields that spelled a null marker (`NA`, `NULL`, …).
    pub markers: u64,
    /// Bit `i` set: a value did not fit `LADDER[i]`.
    misfits: u16,
    /// A number with more significant digits than a double keeps.
    needs_exact: bool,
}

impl ColumnEvidence {
    /// Takes one non-NULL value into account.
    pub(crate) fn see(&mut self, value: &[u8]) {
        self.values += 1;
        let mut scratch = Vec::new();
        for (i, &sql_type) in LADDER.iter().enumerate() {
            if self.misfits & (1 << i) == 0 && !fits(sql_type, value, &mut scratch) {
                self.misfits |= 1 << i;
            }
        }
        if significant_digits(value) > DOUBLE_DIGITS {
            self.needs_exact = true;
        }
    }

    /// The narrowest type every value fits; `text` for a column without values.
    pub(crate) fn sql_type(&self) -> SqlType {
        if self.values == 0 {
            return SqlType::Text;
        }
        let fits = |sql_type: SqlType| {
            let i = LADDER
                .iter()
                .position(|&t| t == sql_type)
                .expect("on the ladder");
            self.misfits & (1 << i) == 0
        };
        for sql_type in LADDER {
            if !fits(sql_type) {
                continue;
            }
            // A double would round a decimal the file spells with more digits than it keeps.
            if sql_type == SqlType::Float8 && self.needs_exact {
                continue;
            }
            return sql_type;
        }
        SqlType::Text
    }
}

/// Whether `value` is a value of `sql_type`.
fn fits(sql_type: SqlType, value: &[u8], scratch: &mut Vec<u8>) -> bool {
    match sql_type {
        // 0 and 1 are numbers first: a column of them is an integer column.
        SqlType::Bool if value.iter().all(u8::is_ascii_digit) => false,
        SqlType::Numeric => is_plain_decimal(value),
        SqlType::Jsonb => {
            matches!(value.trim_ascii().first(), Some(b'{' | b'['))
                && serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok()
        }
        _ => {
            scratch.clear();
            typed::encode_field(sql_type, value, scratch).is_ok()
        }
    }
}

/// `[+-]digits[.digits]`, `[+-].digits`: a decimal without an exponent.
fn is_plain_decimal(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    let unsigned = value.strip_prefix(b"-").or(value.strip_prefix(b"+"));
    let digits = unsigned.unwrap_or(value);
    let (whole, fraction) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &[][..]),
    };
    !(whole.is_empty() && fraction.is_empty())
        && whole.iter().chain(fraction).all(u8::is_ascii_digit)
}

/// The significant digits of a plain decimal (leading zeros left out); 0 for anything else.
fn significant_digits(value: &[u8]) -> usize {
    if !is_plain_decimal(value) {
        return 0;
    }
    let digits: Vec<u8> = value
        .iter()
        .copied()
        .filter(u8::is_ascii_digit)
        .skip_while(|&b| b == b'0')
        .collect();
    digits.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inferred(values: &[&str]) -> SqlType {
        let mut evidence = ColumnEvidence::default();
        for value in values {
            evidence.see(value.as_bytes());
        }
        evidence.sql_type()
    }

    #[test]
    fn each_column_gets_the_narrowest_type_all_its_values_fit() {
        assert_eq!(inferred(&["true", "f", "Yes"]), SqlType::Bool);
        assert_eq!(inferred(&["0", "1", "1"]), SqlType::Int2);
        assert_eq!(inferred(&["1", "40000"]), SqlType::Int4);
        assert_eq!(inferred(&["1", "-5000000000"]), SqlType::Int8);
        assert_eq!(inferred(&["1", "2.5", "1e3"]), SqlType::Float8);
        assert_eq!(inferred(&["1.5", "123456789.123456789"]), SqlType::Numeric);
        assert_eq!(inferred(&["99999999999999999999"]), SqlType::Numeric);
        assert_eq!(inferred(&["2026-01-31", "1999-12-31"]), SqlType::Date);
        assert_eq!(inferred(&["2026-01-31 10:00:00"]), SqlType::Timestamp);
        assert_eq!(
            inferred(&["2026-01-31T10:00:00Z", "2026-01-31 10:00:00.5+02:00"]),
            SqlType::Timestamptz
        );
        assert_eq!(inferred(&["10:00:00", "23:59:59.25"]), SqlType::Time);
        assert_eq!(
            inferred(&["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
            SqlType::Uuid
        );
        assert_eq!(inferred(&["{\"a\": 1}", "[1, 2]"]), SqlType::Jsonb);
        assert_eq!(inferred(&["1", "x"]), SqlType::Text);
        assert_eq!(
            inferred(&["2026-01-31", "2026-01-31 10:00:00"]),
            SqlType::Text
        );
        assert_eq!(inferred(&["{not json"]), SqlType::Text);
        assert_eq!(inferred(&[]), SqlType::Text);
    }
}
