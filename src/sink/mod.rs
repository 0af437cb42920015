//! Sinks: where a worker writes its batches. One [`Sink`] per worker, built on the worker's own
//! thread by a shared [`SinkFactory`], owning its connection and its reused buffers.
//!
//! A sink reports each failure as [`Failure::Transient`] (the engine backs off and calls `write`
//! again with the same batch; the sink reconnects and resolves any doubt about the last attempt)
//! or [`Failure::Permanent`] (the load stops with the message, which names the cause and the fix).
//!
//! [`prepare`] readies the target for a load and builds its factory: one arm per kind of target,
//! each handing over to the target's own file (`postgres/`, `http/`, `stream.rs`; the `null` sink
//! is here), with what it needs of the load in a [`Setup`].

pub(crate) mod hosts;
pub(crate) mod http;
pub(crate) mod postgres;
pub(crate) mod stream;

use std::ops::Range;
use std::time::Duration;

use crate::engine::{RetryPolicy, Sink, SinkFactory, StopSignal, Written};
use crate::failure::Failure;
use crate::http_client::HttpOptions;
use crate::ledger::{Committed, Documents};
use crate::pg::Method;
use crate::reject::RejectLog;
use crate::rows::{Batch, Columns, RowFormat, Schema, Unencodable};
use crate::sql::TableName;
use crate::stats::Stats;
use crate::target::Target;
use hosts::warn_left_out;
use http::HttpSinkFactory;
use postgres::PgSinkFactory;
use stream::{OutputFormat, StreamSinkFactory};

/// What preparing a target needs of the load: the mode's and the command line's settings.
#[derive(Debug)]
pub(crate) struct Setup<'a> {
    /// What the ledger records as the run's source (the mode, and copy's inputs).
    pub source: &'a str,
    pub table: &'a TableName,
    /// The columns the mode writes.
    pub columns: &'a Columns,
    /// Whether to create the table or index.
    pub create: bool,
    pub truncate: bool,
    /// How rows are written to PostgreSQL (`--method`).
    pub method: Method,
    pub threads: usize,
    /// Batches per PostgreSQL transaction.
    pub commit_every: usize,
    /// How the setup retries a host that fails (with `--wait-for-target`, for that long).
    pub retry: RetryPolicy,
    /// `--wait-for-target`: a target refusing connections is retried, not given up on at once.
    pub waits_for_target: bool,
    pub connect_timeout: Duration,
    /// How HTTP targets are spoken to.
    pub http: &'a HttpOptions,
    /// Row format of the stream targets.
    pub output_format: OutputFormat,
    /// This run's name in the ledger: `--run-id`, else a new one.
    pub run_id: &'a str,
    /// `--run-id`, when given: the ledgers are read for what it committed.
    pub given_run_id: Option<&'a str>,
    /// `--resume`: continue the run named by `--run-id`.
    pub resume: bool,
    /// Whether the mode records whole documents (ingest), and whether this run forgets the
    /// earlier runs' records.
    pub documents: Documents,
    pub quiet: bool,
}

/// The target, ready to load: its sinks, the typed columns to load, what the run committed.
pub(crate) struct Prepared {
    pub sinks: Box<dyn SinkFactory>,
    pub schema: Schema,
    pub committed: Committed,
    /// How rows are written, for PostgreSQL targets (the others have one way).
    pub method: Option<Method>,
    /// The server's version, where the target tells it (PostgreSQL).
    pub server_version: Option<String>,
}

impl Prepared {
    /// A target without a PostgreSQL ledger and with one way to write rows.
    fn new(sinks: Box<dyn SinkFactory>, schema: Schema) -> Prepared {
        Prepared {
            sinks,
            schema,
            committed: Committed::default(),
            method: None,
            server_version: None,
        }
    }
}

/// Prepares the target (for PostgreSQL the table, created, checked and typed, and the ledger of
/// the run) and builds its sink factory. The local target must be started already: its cluster
/// comes here as a PostgreSQL target. Each retry of the setup is counted in `stats`.
pub(crate) fn prepare(
    target: &Target,
    setup: &Setup<'_>,
    signal: &StopSignal,
    stats: &mut Stats,
) -> Result<Prepared, Failure> {
    let on_retry = |err: &Failure, pause: Duration| {
        stats.record_retry(err.kind());
        if !setup.quiet {
            eprintln!("loader: {err}; retrying in {:.1}s", pause.as_secs_f64());
        }
    };
    match target {
        Target::Postgres(pg_target) => PgSinkFactory::prepare(pg_target, setup, signal, on_retry),
        Target::Http(http) => {
            let prepared = setup.retry.run(
                Some(signal.stopping_flag()),
                || {
                    HttpSinkFactory::prepare(
                        http,
                        setup.http,
                        setup.table,
                        setup.columns,
                        setup.create,
                    )
                    .map_err(|err| setup.first_contact(err))
                },
                on_retry,
            )?;
            warn_left_out(&prepared.left_out);
            Ok(Prepared::new(Box::new(prepared.sinks), prepared.schema))
        }
        Target::Stdout | Target::File(_) => {
            StreamSinkFactory::prepare(target, setup.columns, setup.output_format)
        }
        Target::Null => {
            let schema = named_schema(target, setup.columns)?;
            Ok(Prepared::new(Box::new(NullSinkFactory), schema))
        }
        Target::Local => Err(Failure::Permanent {
            kind: "internal",
            message: format!("the target {target} was not started"),
        }),
    }
}

impl Setup<'_> {
    /// A failure of the setup's attempt to reach the target, as the setup's retries see it: a
    /// refused connection is final (nothing listens there, most likely a wrong host or port)
    /// unless the load waits for a starting target. Connections that worked once are retried
    /// whatever the cause.
    pub(crate) fn first_contact(&self, err: Failure) -> Failure {
        if self.waits_for_target {
            err
        } else {
            err.final_if_unreachable()
        }
    }
}

/// The columns of a mode that names them, for a target that does not type them itself (`-`,
/// `file:`, `null`, the HTTP targets without a catalog): the mode's own schema, or the names of
/// `--columns` or `--header`, as text.
fn named_schema(target: &dyn std::fmt::Display, columns: &Columns) -> Result<Schema, Failure> {
    match columns {
        Columns::Fixed(schema) | Columns::Sniffed(schema) => Ok(schema.clone()),
        Columns::Named(names) => Ok(Schema::text(names)),
        Columns::Table => Err(Failure::Permanent {
            kind: "schema",
            message: format!(
                "loading into {target} needs the column names: give --columns or --header"
            ),
        }),
    }
}

/// The `null` target: acknowledges every batch without looking at it.
#[derive(Debug, Default)]
pub(crate) struct NullSinkFactory;

impl SinkFactory for NullSinkFactory {
    fn open(&self, _worker: usize) -> Result<Box<dyn Sink + '_>, Failure> {
        Ok(Box::new(NullSink))
    }
}

struct NullSink;

impl Sink for NullSink {
    fn write(&mut self, batch: &dyn Batch, _rejects: &RejectLog) -> Result<Written, Failure> {
        Ok(Written {
            rows: batch.len() as u64,
            ..Written::default()
        })
    }

    fn finish(self: Box<Self>) -> Result<(), Failure> {
        Ok(())
    }
}

/// Appends the rows `rows` (sorted positions) to `out` in `format`, one `encode` call per run of
/// consecutive rows with the format's separator between runs; every run is encoded, and the first
/// failure is returned.
pub(crate) fn encode_runs(
    rows: &[usize],
    format: RowFormat,
    out: &mut Vec<u8>,
    mut encode: impl FnMut(Range<usize>, &mut Vec<u8>) -> Result<(), Unencodable>,
) -> Result<(), Unencodable> {
    let mut result = Ok(());
    for (i, run) in runs(rows).enumerate() {
        if i > 0 {
            out.extend_from_slice(format.run_separator());
        }
        result = result.and(encode(run, out));
    }
    result
}

/// Consecutive runs of sorted row positions, as ranges.
pub(crate) fn runs(rows: &[usize]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut rest = rows;
    std::iter::from_fn(move || {
        let (&first, _) = rest.split_first()?;
        let length = rest
            .iter()
            .enumerate()
            .take_while(|(i, &row)| row == first + i)
            .count();
        rest = &rest[length..];
        Some(first..first + length)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_consecutive_rows() {
        let rows = [0, 1, 2, 5, 7, 8];
        assert_eq!(runs(&rows).collect::<Vec<_>>(), [0..3, 5..6, 7..9]);
        assert_eq!(runs(&[]).count(), 0);
    }
}
