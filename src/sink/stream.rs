//! The `-` and `file:` targets: rows as CSV (with a header line) or NDJSON on one shared writer.
//! Each worker encodes its batch into its own buffer and takes the writer's lock once per batch.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use parking_lot::Mutex;

use super::{named_schema, Prepared};
use crate::engine::{Sink, SinkFactory, Written};

use crate::failure::Failure;
use crate::reject::RejectLog;
use crate::rows::{Batch, Columns, RowFormat, Schema};
use crate::target::Target;

/// Row format of the stream targets (`-`, `file:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OutputFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

/// Shares one output stream between the workers.
pub(crate) struct StreamSinkFactory {
    out: Mutex<Box<dyn Write + Send>>,
    format: RowFormat,
    batch_bytes: usize,
}

impl StreamSinkFactory {
    /// Prepares `target`, `-` (standard output) or a `file:` (created or truncated): the columns
    /// as named, and a header line first for CSV.
    pub(crate) fn prepare(
        target: &Target,
        columns: &Columns,
        format: OutputFormat,
    ) -> Result<Prepared, Failure> {
        let schema = named_schema(target, columns)?;
        let sinks = match target {
            Target::File(path) => StreamSinkFactory::file(path, format, &schema)?,
            _ => StreamSinkFactory::stdout(format, &schema)?,
        };
        Ok(Prepared::new(Box::new(sinks), schema))
    }

    /// Writes to standard output.
    pub(crate) fn stdout(
        format: OutputFormat,
        schema: &Schema,
    ) -> Result<StreamSinkFactory, Failure> {
        StreamSinkFactory::new(Box::new(io::stdout()), format, schema)
    }

    /// Creates (or truncates) `path` and writes to it.
    pub(crate) fn file(
        path: &Path,
        format: OutputFormat,
        schema: &Schema,
    ) -> Result<StreamSinkFactory, Failure> {
        let file = File::create(path).map_err(|err| Failure::Permanent {
            kind: "output_file",
            message: format!("cannot create {}: {err}", path.display()),
        })?;
        StreamSinkFactory::new(Box::new(file), format, schema)
    }

    fn new(
        mut out: Box<dyn Write + Send>,
        format: OutputFormat,
        schema: &Schema,
    ) -> Result<StreamSinkFactory, Failure> {
        let format = match format {
            OutputFormat::Csv => {
                let mut header = Vec::new();
                for (i, column) in schema.columns.iter().enumerate() {
                    if i > 0 {
                        header.push(b',');
                    }
                    crate::encode::csv_field(&mut header, column.name.as_bytes());
                }
                header.push(b'\n');
                out.write_all(&header).map_err(output_error)?;
                RowFormat::Csv
            }
            OutputFormat::Ndjson => RowFormat::Ndjson,
        };
        Ok(StreamSinkFactory {
            out: Mutex::new(out),
            format,
            batch_bytes: 64 * 1024,
        })
    }
}

impl SinkFactory for StreamSinkFactory {
    fn open(&self, _worker: usize) -> Result<Box<dyn Sink + '_>, Failure> {
        Ok(Box::new(StreamSink {
            factory: self,
            buffer: Vec::with_capacity(self.batch_bytes),
        }))
    }
}

struct StreamSink<'a> {
    factory: &'a StreamSinkFactory,
    buffer: Vec<u8>,
}

impl Sink for StreamSink<'_> {
    fn write(&mut self, batch: &dyn Batch, _rejects: &RejectLog) -> Result<Written, Failure> {
        self.buffer.clear();
        // CSV and NDJSON carry any value: encoding cannot fail.
        let _ = batch.encode(0..batch.len(), self.factory.format, &mut self.buffer);
        self.factory
            .out
            .lock()
            .write_all(&self.buffer)
            .map_err(output_error)?;
        Ok(Written {
            rows: batch.len() as u64,
            bytes: self.buffer.len() as u64,
            ..Written::default()
        })
    }

    fn finish(self: Box<Self>) -> Result<(), Failure> {
        self.factory.out.lock().flush().map_err(output_error)
    }
}

fn output_error(err: io::Error) -> Failure {
    let message = if err.kind() == io::ErrorKind::BrokenPipe {
        "the output was closed before the load finished".to_string()
    } else {
        format!("cannot write the output: {err}")
    };
    Failure::Permanent {
        kind: "output",
        message,
    }
}
