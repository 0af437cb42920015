//! Sinks: where a worker writes its batches. One [`Sink`] per worker, built on the worker's own
//! thread by a shared [`SinkFactory`], owning its connection and its reused buffers.
//!
//! A sink reports each failure as [`SinkError::Transient`] (the engine backs off and calls `write`
//! again with the same batch; the sink reconnects and resolves any doubt about the last attempt)
//! or [`SinkError::Permanent`] (the load stops with the message, which names the cause and the fix).

pub mod hosts;
pub mod http;
pub mod postgres;
pub mod stream;

use std::ops::Range;

use crate::reject::RejectLog;
use crate::rows::{Batch, RowFormat, Unencodable};

/// What a successful write acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Rows the target acknowledged.
    pub rows: u64,
    /// Payload bytes sent for them.
    pub bytes: u64,
    /// Rows the target refused for their data, now in the reject file.
    pub rejected: u64,
    /// Which of the target's hosts the worker wrote them through (0 for a target with one host).
    pub host: usize,
    /// The batch is held for a later commit (`--commit-every`): nothing is acknowledged yet.
    pub held: bool,
}

/// What became of batches whose COMMIT was in doubt on a host that failed, and that were sent
/// again to another host: settled after the workers ended by asking the first host's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Settlement {
    /// Batches sent again to another host while in doubt on their first one.
    pub moved_batches: u64,
    /// Rows of those batches that their first host had committed as well: they are on two hosts,
    /// and counted twice in `rows_loaded` so that it still equals the hosts' counts.
    pub duplicated_rows: u64,
    /// The duplicated rows by host index (the first host's share of `duplicated_rows`).
    #[serde(skip)]
    pub duplicated_by_host: Vec<(usize, u64)>,
    /// Moved batches whose first host could not be asked: on two hosts if it had committed them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<UnverifiedBatch>,
}

/// A batch that may be on two hosts: look it up in `host`'s ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnverifiedBatch {
    pub host: String,
    pub batch: u64,
    pub rows: u64,
}

/// Why a sink could not open or write.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying: the connection failed, the server is restarting or overloaded.
    #[error("{message}")]
    Transient {
        /// A short stable name for the report's `retries`/`errors` tables.
        kind: &'static str,
        message: String,
    },
    /// Retrying will not help: one line naming the cause and the fix.
    #[error("{message}")]
    Permanent { kind: &'static str, message: String },
    /// Worth retrying, but not before the server's `Retry-After`.
    #[error("{message}")]
    RetryAfter {
        kind: &'static str,
        message: String,
        after: std::time::Duration,
    },
}

impl SinkError {
    /// The short name of this error's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkError::Transient { kind, .. }
            | SinkError::Permanent { kind, .. }
            | SinkError::RetryAfter { kind, .. } => kind,
        }
    }
}

/// One worker's writer.
pub trait Sink {
    /// Writes one batch; `Ok` only once the target acknowledged every row of it that it did not
    /// refuse. Refused rows go to `rejects` (once per batch, before it commits) and are counted in
    /// [`Written::rejected`].
    fn write(&mut self, batch: &dyn Batch, rejects: &RejectLog) -> Result<Written, SinkError>;
    /// After `write` failed for good: the rows of that batch the target acknowledged anyway (a
    /// target without transactions stores part of a batch), handed over once so they are counted.
    fn salvage(&mut self) -> Written {
        Written::default()
    }
    /// Once the source is done or the load stops: commits the batches held for a later commit
    /// (`--commit-every`), if any, and acknowledges them as `write` does.
    fn flush(&mut self, _rejects: &RejectLog) -> Result<Option<Written>, SinkError> {
        Ok(None)
    }
    /// Flushes and closes; fallible teardown is explicit, never in `Drop`.
    fn finish(self: Box<Self>) -> Result<(), SinkError>;
}

/// Builds one sink per worker; shared by reference across the worker threads.
pub trait SinkFactory: Sync {
    /// Opens worker `worker`'s sink (its connection), on that worker's thread.
    fn open(&self, worker: usize) -> Result<Box<dyn Sink + '_>, SinkError>;
    /// The target's hosts, when it has several: the names of [`Written::host`]'s indices.
    fn hosts(&self) -> &[String] {
        &[]
    }
    /// Once the workers ended: settles the batches moved between hosts while in doubt.
    fn settle(&self) -> Settlement {
        Settlement::default()
    }
}

/// The `null` target: acknowledges every batch without looking at it.
#[derive(Debug, Default)]
pub struct NullSinkFactory;

impl SinkFactory for NullSinkFactory {
    fn open(&self, _worker: usize) -> Result<Box<dyn Sink + '_>, SinkError> {
        Ok(Box::new(NullSink))
    }
}

struct NullSink;

impl Sink for NullSink {
    fn write(&mut self, batch: &dyn Batch, _rejects: &RejectLog) -> Result<Written, SinkError> {
        Ok(Written {
            rows: batch.len() as u64,
            ..Written::default()
        })
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
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
