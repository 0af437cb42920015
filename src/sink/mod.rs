//! Sinks: where a worker writes its batches. One [`Sink`] per worker, built on the worker's own
//! thread by a shared [`SinkFactory`], owning its connection and its reused buffers.
//!
//! A sink reports each failure as [`Failure::Transient`] (the engine backs off and calls `write`
//! again with the same batch; the sink reconnects and resolves any doubt about the last attempt)
//! or [`Failure::Permanent`] (the load stops with the message, which names the cause and the fix).

pub(crate) mod hosts;
pub(crate) mod http;
pub(crate) mod postgres;
pub(crate) mod stream;

use std::ops::Range;

use crate::engine::{Sink, SinkFactory, Written};
use crate::failure::Failure;
use crate::reject::RejectLog;
use crate::rows::{Batch, RowFormat, Unencodable};

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
