//! Writes a `readings` CSV (as `loader --target file:x.csv` writes it: a header, no quoted
//! fields, RFC 3339 timestamps) as a Parquet file of the same rows, for scripts/bench-parquet's
//! CSV against Parquet comparison.
//!
//!     cargo build --release --example readings_parquet
//!     target/release/examples/readings_parquet IN.csv OUT.parquet [ROW_GROUP_ROWS]
//!
//! Columns: id int64, ts timestamp(µs, UTC), sensor_id int32, location utf8, temperature and
//! humidity double, status utf8; snappy-compressed, row groups of ROW_GROUP_ROWS rows (default
//! 131,072) so that the workers share the decoding.

use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Rows per record batch handed to the writer.
const CHUNK_ROWS: usize = 65_536;

fn main() {
    if let Err(err) = run() {
        eprintln!("readings_parquet: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output) = match args.as_slice() {
        [input, output] | [input, output, _] => (input, output),
        _ => return Err("usage: readings_parquet IN.csv OUT.parquet [ROW_GROUP_ROWS]".into()),
    };
    let row_group_rows = match args.get(2) {
        Some(text) => text.parse()?,
        None => 131_072,
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("sensor_id", DataType::Int32, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("temperature", DataType::Float64, false),
        Field::new("humidity", DataType::Float64, false),
        Field::new("status", DataType::Utf8, false),
    ]));
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(row_group_rows)
        .build();
    let mut writer =
        ArrowWriter::try_new(File::create(output)?, Arc::clone(&schema), Some(properties))?;
    let mut lines = BufReader::new(File::open(input)?).lines();
    let header = lines.next().ok_or("the CSV is empty")??;
    if header != "id,ts,sensor_id,location,temperature,humidity,status" {
        return Err(format!("not a readings CSV: its header is {header}").into());
    }
    let mut chunk = Chunk::default();
    for line in lines {
        chunk.push(&line?)?;
        if chunk.rows == CHUNK_ROWS {
            writer.write(&chunk.finish(&schema)?)?;
        }
    }
    if chunk.rows > 0 {
        writer.write(&chunk.finish(&schema)?)?;
    }
    writer.close()?;
    Ok(())
}

/// The columns of the rows read since the last record batch.
#[derive(Default)]
struct Chunk {
    rows: usize,
    id: Int64Builder,
    ts: TimestampMicrosecondBuilder,
    sensor_id: Int32Builder,
    location: StringBuilder,
    temperature: Float64Builder,
    humidity: Float64Builder,
    status: StringBuilder,
}

impl Chunk {
    fn push(&mut self, line: &str) -> Result<(), Box<dyn Error>> {
        let fields: Vec<&str> = line.split(',').collect();
        let [id, ts, sensor_id, location, temperature, humidity, status] = fields[..] else {
            return Err(format!("not 7 fields: {line}").into());
        };
        self.id.append_value(id.parse()?);
        self.ts.append_value(unix_micros(ts)?);
        self.sensor_id.append_value(sensor_id.parse()?);
        self.location.append_value(location);
        self.temperature.append_value(temperature.parse()?);
        self.humidity.append_value(humidity.parse()?);
        self.status.append_value(status);
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self, schema: &Arc<Schema>) -> Result<RecordBatch, Box<dyn Error>> {
        self.rows = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.sensor_id.finish()),
            Arc::new(self.location.finish()),
            Arc::new(self.temperature.finish()),
            Arc::new(self.humidity.finish()),
            Arc::new(self.status.finish()),
        ];
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

/// `YYYY-MM-DDThh:mm:ss.ffffffZ` as microseconds since 1970.
fn unix_micros(text: &str) -> Result<i64, Box<dyn Error>> {
    let bad = || format!("not a timestamp of the readings CSV: {text}");
    let number = |range: std::ops::Range<usize>| -> Result<i64, Box<dyn Error>> {
        Ok(text.get(range).ok_or_else(bad)?.parse()?)
    };
    if text.len() != 27 || !text.ends_with('Z') {
        return Err(bad().into());
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    // Howard Hinnant's days_from_civil.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = of_era * 365 + of_era / 4 - of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + number(11..13)? * 3600 + number(14..16)? * 60 + number(17..19)?;
    Ok(seconds * 1_000_000 + number(20..26)?)
}
