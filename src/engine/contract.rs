//! The contract between the engine and the modes and targets it drives: a [`Source`] of batches
//! and a [`Sink`] that writes them, one of each per worker, each built on the worker's own thread
//! by a factory shared across the workers (`Sync`); what a write acknowledged ([`Written`]); and
//! what the sources skipped or the sinks settled after the workers ended.

use std::error::Error;

use crate::failure::Failure;
use crate::reject::RejectLog;
use crate::rows::Batch;

/// A source of batches for one worker, built on that worker's thread.
pub(crate) trait Source {
    /// The next batch, or `None` when the source is exhausted.
    fn next_batch(&mut self) -> Result<Option<&dyn Batch>, SourceError>;
    /// The sink acknowledged the batch in hand (`written.rejected` of its rows refused): ingest
    /// mode records its documents as loaded, for targets without a ledger.
    fn acknowledged(&mut self, _written: &Written) -> Result<(), SourceError> {
        Ok(())
    }
}

/// Builds one source per worker; shared by reference across the worker threads.
pub(crate) trait SourceFactory: Sync {
    fn open(&self, worker: usize) -> Result<Box<dyn Source + '_>, SourceError>;

    /// Ends the sources once the workers are done, and says what they skipped.
    fn finish(self: Box<Self>) -> Result<SourceSummary, SourceError> {
        Ok(SourceSummary::default())
    }
}

/// What the sources of a load skipped because an earlier attempt committed it (`--resume`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct SourceSummary {
    pub skipped_batches: u64,
    pub skipped_rows: u64,
    /// Records those batches rejected (already in the reject file).
    pub skipped_rejected: u64,
}

/// Why a source cannot go on: the load stops with its message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// A thread (or pool of threads) the source needs could not be started; `what` names it.
    #[error("cannot start {what}: {err}")]
    Start {
        what: &'static str,
        err: Box<dyn Error + Send + Sync>,
    },
    /// A thread of the source panicked; `what` names it.
    #[error("internal error: {what} panicked")]
    Panicked { what: &'static str },
    /// The mode's own error: copy's inputs, ingest's stages and state file.
    #[error(transparent)]
    Mode(Box<dyn Error + Send + Sync>),
}

impl SourceError {
    /// Wraps the mode's own error.
    pub(crate) fn mode(err: impl Error + Send + Sync + 'static) -> SourceError {
        SourceError::Mode(Box::new(err))
    }
}

/// What a successful write acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Written {
    /// Rows the target acknowledged.
    pub rows: u64,
    /// Payload bytes sent for them.
    pub bytes: u64,
    /// Rows the target refused for their data, now in the reject file.
    pub rejected: u64,
    /// Rows sent that the target acknowledged without storing them: a trigger returning NULL or a
    /// `DO INSTEAD NOTHING` rule dropped them (PostgreSQL's `COPY n` counts only rows stored).
    pub skipped: u64,
    /// Which of the target's hosts the worker wrote them through (0 for a target with one host).
    pub host: usize,
    /// The batch is held for a later commit (`--commit-every`): nothing is acknowledged yet.
    pub held: bool,
}

/// What became of batches whose COMMIT was in doubt on a host that failed, and that were sent
/// again to another host: settled after the workers ended by asking the first host's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Settlement {
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
pub(crate) struct UnverifiedBatch {
    pub host: String,
    pub batch: u64,
    pub rows: u64,
}

/// One worker's writer.
pub(crate) trait Sink {
    /// Writes one batch; `Ok` only once the target acknowledged every row of it that it did not
    /// refuse. Refused rows go to `rejects` (once per batch, before it commits) and are counted in
    /// [`Written::rejected`].
    fn write(&mut self, batch: &dyn Batch, rejects: &RejectLog) -> Result<Written, Failure>;
    /// After `write` failed for good: the rows of that batch the target acknowledged anyway (a
    /// target without transactions stores part of a batch), handed over once so they are counted.
    fn salvage(&mut self) -> Written {
        Written::default()
    }
    /// Once the source is done or the load stops: commits the batches held for a later commit
    /// (`--commit-every`), if any, and acknowledges them as `write` does.
    fn flush(&mut self, _rejects: &RejectLog) -> Result<Option<Written>, Failure> {
        Ok(None)
    }
    /// Flushes and closes; fallible teardown is explicit, never in `Drop`.
    fn finish(self: Box<Self>) -> Result<(), Failure>;
}

/// Builds one sink per worker; shared by reference across the worker threads.
pub(crate) trait SinkFactory: Sync {
    /// Opens worker `worker`'s sink (its connection), on that worker's thread.
    fn open(&self, worker: usize) -> Result<Box<dyn Sink + '_>, Failure>;
    /// The target's hosts, when it has several: the names of [`Written::host`]'s indices.
    fn hosts(&self) -> &[String] {
        &[]
    }
    /// Once the workers ended: settles the batches moved between hosts while in doubt.
    fn settle(&self) -> Settlement {
        Settlement::default()
    }
    /// A second interrupt arrived: frees the workers blocked in a call that does not end by
    /// itself (a statement waiting for a lock or for a standby), so that they give up their batch.
    /// Targets whose every call is bounded by a timeout need nothing.
    fn abandon(&self) {}
}
