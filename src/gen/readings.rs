//! The `readings` rows: how one row follows from `(seed, id)`, and how a batch of them encodes in
//! every row format. This is the hot path of `gen` mode: no allocation per row.

use std::ops::Range;

use crate::encode::{self, binary, TimestampStyle};
use crate::gen::Shard;
use std::borrow::Cow;

use crate::reject::RowOrigin;
use crate::rows::{Batch, Column, RowEncoders, RowFormat, Schema, SqlType, Unencodable};

/// The built-in schema: the `readings` table that gen mode creates and fills, the reference
/// table every benchmark loads so that figures compare.
pub const READINGS_SCHEMA: Schema = Schema {
    columns: Cow::Borrowed(&[
        Column::fixed("id", SqlType::Int8),
        Column::fixed("ts", SqlType::Timestamptz),
        Column::fixed("sensor_id", SqlType::Int4),
        Column::fixed("location", SqlType::Text),
        Column::fixed("temperature", SqlType::Float8),
        Column::fixed("humidity", SqlType::Float8),
        Column::fixed("status", SqlType::Text),
    ]),
};

pub(crate) const LOCATIONS: [&str; 8] = [
    "berlin", "vienna", "zurich", "paris", "madrid", "rome", "oslo", "lisbon",
];
pub(crate) const STATUSES: [&str; 3] = ["ok", "warn", "fail"];

/// 2026-01-01T00:00:00Z in microseconds since the Unix epoch.
const START_MICROS: i64 = 1_767_225_600_000_000;
/// Rows are 10 ms apart.
const STEP_MICROS: i64 = 10_000;

/// One `readings` row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub id: i64,
    /// Microseconds since the Unix epoch.
    pub ts_micros: i64,
    pub sensor_id: i32,
    pub location: &'static str,
    /// Hundredths of a degree: the text formats print them without any float formatting.
    pub temperature_centi: i32,
    /// Hundredths of a percent.
    pub humidity_centi: i32,
    pub status: &'static str,
}

impl Reading {
    /// The row with this id under this seed. `sensor_id` in 0..=9999; `temperature` in [-20, 40)
    /// and `humidity` in [0, 100), both to two decimals; `status` ok 90 %, warn 8 %, fail 2 %.
    #[inline]
    pub fn generate(seed: u64, id: u64) -> Reading {
        let mut state = seed ^ id.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let a = splitmix64(&mut state);
        let b = splitmix64(&mut state);
        let c = splitmix64(&mut state);
        // Disjoint bits of `a`: sensor from bits 0..32, status from 32..48, location from 61..64.
        let status = match (((a >> 32) & 0xFFFF) * 100) >> 16 {
            0..=89 => STATUSES[0],
            90..=97 => STATUSES[1],
            _ => STATUSES[2],
        };
        Reading {
            id: id as i64,
            ts_micros: START_MICROS + id as i64 * STEP_MICROS,
            sensor_id: (((a & 0xFFFF_FFFF) * 10_000) >> 32) as i32,
            location: LOCATIONS[(a >> 61) as usize],
            temperature_centi: uniform_below(b, 6_000) as i32 - 2_000,
            humidity_centi: uniform_below(c, 10_000) as i32,
            status,
        }
    }
}

impl Reading {
    /// The temperature as a double: the nearest one to the two-decimal value, which is also what
    /// PostgreSQL reads from the text formats, so every method stores the same bits.
    pub fn temperature(&self) -> f64 {
        f64::from(self.temperature_centi) / 100.0
    }

    pub fn humidity(&self) -> f64 {
        f64::from(self.humidity_centi) / 100.0
    }
}

/// SplitMix64: the standard counter-based mixer, here a pure function of the row's state.
#[inline]
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An integer in `[0, range)` drawn from the high bits of `bits`.
#[inline]
fn uniform_below(bits: u64, range: u64) -> u64 {
    ((bits >> 32) * range) >> 32
}

/// A reused buffer of generated rows.
#[derive(Debug, Clone)]
pub struct ReadingsBatch {
    seed: u64,
    seq: u64,
    rows: Vec<Reading>,
}

impl ReadingsBatch {
    pub fn with_capacity(seed: u64, capacity: usize) -> ReadingsBatch {
        ReadingsBatch {
            seed,
            seq: 0,
            rows: Vec::with_capacity(capacity),
        }
    }

    /// Refills the batch with the rows at the shard-local positions `local`.
    pub fn fill(&mut self, seq: u64, local: Range<u64>, shard: Shard) {
        self.seq = seq;
        self.rows.clear();
        let seed = self.seed;
        self.rows
            .extend(local.map(|position| Reading::generate(seed, shard.global_id(position))));
    }

    /// The rows in hand.
    pub fn rows(&self) -> &[Reading] {
        &self.rows
    }
}

impl Batch for ReadingsBatch {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of_val(self.rows.as_slice())
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn first_row(&self) -> u64 {
        self.rows.first().map_or(0, |row| row.id as u64)
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
        self.rows[row].id.to_string()
    }

    fn origin(&self, row: usize) -> RowOrigin {
        let mut record = Vec::new();
        self.csv(&self.rows[row], &mut record);
        RowOrigin {
            source: "gen".into(),
            line: self.rows[row].id as u64,
            record: String::from_utf8_lossy(&record).into_owned(),
        }
    }
}

// Locations and statuses are fixed lowercase words: they need no quoting or escaping in any format.

impl RowEncoders for ReadingsBatch {
    type Row<'a> = &'a Reading;

    #[inline]
    fn rows(&self, rows: Range<usize>) -> impl Iterator<Item = &Reading> {
        self.rows[rows].iter()
    }

    #[inline]
    fn binary_fields(&self) -> i16 {
        7
    }

    #[inline]
    fn binary(&self, row: &Reading, out: &mut Vec<u8>) -> Result<(), Unencodable> {
        binary::int8(out, row.id);
        binary::timestamptz(out, row.ts_micros);
        binary::int4(out, row.sensor_id);
        binary::text(out, row.location);
        binary::float8(out, row.temperature());
        binary::float8(out, row.humidity());
        binary::text(out, row.status);
        Ok(())
    }

    #[inline]
    fn copy_text(&self, row: &Reading, out: &mut Vec<u8>) {
        encode_delimited(row, b'\t', TimestampStyle::Postgres, b"", out);
    }

    #[inline]
    fn sql_values(&self, row: &Reading, out: &mut Vec<u8>) {
        encode_delimited(row, b',', TimestampStyle::Postgres, b"'", out);
    }

    #[inline]
    fn csv(&self, row: &Reading, out: &mut Vec<u8>) {
        encode_delimited(row, b',', TimestampStyle::Rfc3339, b"", out);
    }

    #[inline]
    fn json_members(&self, row: &Reading, format: RowFormat, out: &mut Vec<u8>) {
        let style = match format {
            RowFormat::JsonEachRow => TimestampStyle::Seconds,
            _ => TimestampStyle::Rfc3339,
        };
        out.extend_from_slice(b"\"id\":");
        encode::integer(out, row.id);
        out.extend_from_slice(b",\"ts\":\"");
        encode::timestamp(out, row.ts_micros, style);
        out.extend_from_slice(b"\",\"sensor_id\":");
        encode::integer(out, row.sensor_id);
        out.extend_from_slice(b",\"location\":\"");
        out.extend_from_slice(row.location.as_bytes());
        out.extend_from_slice(b"\",\"temperature\":");
        encode::hundredths(out, row.temperature_centi);
        out.extend_from_slice(b",\"humidity\":");
        encode::hundredths(out, row.humidity_centi);
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(row.status.as_bytes());
        out.push(b'"');
    }

    #[inline]
    fn json_array(&self, row: &Reading, out: &mut Vec<u8>) {
        encode_delimited(row, b',', TimestampStyle::Rfc3339, b"\"", out);
    }
}

/// Writes the seven fields separated by `separator`, the timestamp in `style`, and the timestamp and
/// words between `quote`s.
#[inline]
fn encode_delimited(
    row: &Reading,
    separator: u8,
    style: TimestampStyle,
    quote: &[u8],
    out: &mut Vec<u8>,
) {
    encode::integer(out, row.id);
    out.push(separator);
    out.extend_from_slice(quote);
    encode::timestamp(out, row.ts_micros, style);
    out.extend_from_slice(quote);
    out.push(separator);
    encode::integer(out, row.sensor_id);
    out.push(separator);
    out.extend_from_slice(quote);
    out.extend_from_slice(row.location.as_bytes());
    out.extend_from_slice(quote);
    out.push(separator);
    encode::hundredths(out, row.temperature_centi);
    out.push(separator);
    encode::hundredths(out, row.humidity_centi);
    out.push(separator);
    out.extend_from_slice(quote);
    out.extend_from_slice(row.status.as_bytes());
    out.extend_from_slice(quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(batch: &ReadingsBatch, format: RowFormat) -> String {
        let mut out = Vec::new();
        batch.encode(0..batch.len(), format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rows_are_a_pure_function_of_seed_and_id() {
        assert_eq!(Reading::generate(7, 42), Reading::generate(7, 42));
        assert_ne!(Reading::generate(7, 42), Reading::generate(8, 42));
        let row = Reading::generate(1, 3);
        assert_eq!(row.id, 3);
        assert_eq!(row.ts_micros, START_MICROS + 30_000);
    }

    #[test]
    fn values_stay_in_their_ranges() {
        let (mut locations, mut statuses) = (
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        );
        for id in 0..100_000 {
            let row = Reading::generate(1, id);
            assert!((0..10_000).contains(&row.sensor_id));
            assert!(
                (-20.0..40.0).contains(&row.temperature()),
                "{}",
                row.temperature()
            );
            assert!((0.0..100.0).contains(&row.humidity()), "{}", row.humidity());
            locations.insert(row.location);
            statuses.insert(row.status);
        }
        assert_eq!(locations.len(), LOCATIONS.len());
        assert_eq!(statuses.len(), STATUSES.len());
    }

    #[test]
    fn shards_draw_interleaved_ids() {
        let mut batch = ReadingsBatch::with_capacity(1, 4);
        batch.fill(0, 0..3, Shard { index: 1, count: 3 });
        let ids: Vec<i64> = batch.rows().iter().map(|row| row.id).collect();
        assert_eq!(ids, [1, 4, 7]);
    }

    #[test]
    fn text_formats_agree_on_values() {
        let mut batch = ReadingsBatch::with_capacity(1, 2);
        batch.fill(5, 0..2, Shard::WHOLE);
        let row = batch.rows()[0];
        let copy = encoded(&batch, RowFormat::CopyText);
        let first: Vec<&str> = copy.lines().next().unwrap().split('\t').collect();
        assert_eq!(first[0], "0");
        assert_eq!(first[1], "2026-01-01 00:00:00.000000+00");
        assert_eq!(first[4].parse::<f64>().unwrap(), row.temperature());
        assert_eq!(first[5].parse::<f64>().unwrap(), row.humidity());
        let csv = encoded(&batch, RowFormat::Csv);
        assert!(csv.starts_with("0,2026-01-01T00:00:00.000000Z,"));
        let sql = encoded(&batch, RowFormat::SqlValues);
        assert!(sql.starts_with("(0,'2026-01-01 00:00:00.000000+00',"));
        assert_eq!(sql.matches("),(").count(), 1);
        for line in encoded(&batch, RowFormat::Ndjson).lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(value["location"].as_str().is_some());
        }
        assert_eq!(
            value_at(&encoded(&batch, RowFormat::Ndjson), "temperature"),
            row.temperature()
        );
    }

    fn value_at(ndjson: &str, key: &str) -> f64 {
        let first: serde_json::Value =
            serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
        first[key].as_f64().unwrap()
    }

    #[test]
    fn binary_tuples_have_the_expected_size() {
        let mut batch = ReadingsBatch::with_capacity(1, 1);
        batch.fill(0, 0..1, Shard::WHOLE);
        let row = batch.rows()[0];
        let mut out = Vec::new();
        batch.encode(0..1, RowFormat::CopyBinary, &mut out).unwrap();
        assert_eq!(
            out.len(),
            2 + 7 * 4 + 8 + 8 + 4 + row.location.len() + 8 + 8 + row.status.len()
        );
    }

    /// The hot path of gen mode (issue 7): once a worker's batch and output buffer have grown to
    /// their size, filling a batch and encoding it in any format allocates nothing at all.
    #[test]
    fn filling_and_encoding_reused_buffers_allocate_nothing() {
        const ROWS: u64 = 1000;
        let formats = RowFormat::ALL;
        let mut batch = ReadingsBatch::with_capacity(7, ROWS as usize);
        let mut out = Vec::new();
        let round = |seq: u64, batch: &mut ReadingsBatch, out: &mut Vec<u8>| {
            batch.fill(seq, seq * ROWS..(seq + 1) * ROWS, Shard::WHOLE);
            for format in formats {
                out.clear();
                batch.encode(0..batch.len(), format, out).unwrap();
            }
        };
        // The first round grows `out` to the largest encoding; later ids are longer, so give
        // it the room of the last round's too.
        round(0, &mut batch, &mut out);
        out.reserve(out.capacity());
        let counting =
            allocation_counter::measure(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(1))));
        assert_eq!(
            counting.count_total, 1,
            "the counting allocator is installed"
        );
        let measured = allocation_counter::measure(|| {
            for seq in 1..100 {
                round(seq, &mut batch, &mut out);
            }
        });
        assert_eq!(
            measured.count_total, 0,
            "99,000 rows × 7 formats: {measured:?}"
        );
    }
}
