//! What the engine sees of ingest mode: [`IngestPlan`] starts the stage threads once the target
//! is ready; its [`IngestSourceFactory`] gives each worker an [`IngestSource`] on the batcher's
//! channel and joins the stage threads at the end; a source records its batch's documents in the
//! state file once the target has acknowledged them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;

use super::stages::start_stages;
use super::{ChunkBatch, IngestConfig, IngestCounters, Pipeline, StateFile};
use crate::engine::{
    RateLimit, Source, SourceError, SourceFactory, SourceSummary, StopSignal, Written,
};
use crate::ledger::Committed;
use crate::rows::{Batch, Schema};
use crate::run::{Documents, SourcePlan};

/// How long a worker waits on its channel before looking at the stop signal again.
const RECEIVE_POLL: Duration = Duration::from_millis(100);

/// Ingest's [`SourcePlan`]: starts the stage threads once the target is ready.
pub(crate) struct IngestPlan {
    config: IngestConfig,
    signal: Arc<StopSignal>,
    counters: Arc<IngestCounters>,
}

impl IngestPlan {
    /// The stages will count into `counters` (which an [`IngestStages`](super::IngestStages)
    /// shows).
    pub(crate) fn new(
        config: IngestConfig,
        signal: Arc<StopSignal>,
        counters: Arc<IngestCounters>,
    ) -> IngestPlan {
        IngestPlan {
            config,
            signal,
            counters,
        }
    }
}

impl SourcePlan for IngestPlan {
    fn start(
        &mut self,
        _schema: &Schema,
        committed: Committed,
        workers: usize,
    ) -> Result<Box<dyn SourceFactory + '_>, SourceError> {
        let config = &self.config;
        let mut loaded = committed.documents;
        let state = match &config.state_file {
            Some(path) => {
                let forget = config.documents == Documents::Fresh || config.load.truncate;
                let (state, recorded) = StateFile::open(path, forget).map_err(SourceError::mode)?;
                loaded.merge(recorded);
                Some(state)
            }
            None => None,
        };
        self.counters
            .recorded_before
            .store(loaded.len() as u64, Ordering::Relaxed);
        let pipeline = Arc::new(Pipeline {
            rate: config.rate.map(RateLimit::new),
            retry: config.load.retry,
            fetch_timeout: config.fetch_timeout,
            connect_timeout: config.load.connect_timeout,
            signal: Arc::clone(&self.signal),
            counters: Arc::clone(&self.counters),
            failure: Mutex::default(),
        });
        let (threads, batches) = start_stages(config, &pipeline, Arc::new(loaded), workers)?;
        let _ = self.counters.started.set(Instant::now());
        Ok(Box::new(IngestSourceFactory {
            batches,
            threads: Mutex::new(threads),
            pipeline,
            state_file: state,
        }))
    }
}

/// Builds one [`IngestSource`] per worker on the batcher's channel; joins the stage threads at
/// the end.
struct IngestSourceFactory {
    batches: Receiver<ChunkBatch>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pipeline: Arc<Pipeline>,
    state_file: Option<StateFile>,
}

impl SourceFactory for IngestSourceFactory {
    fn open(&self, _worker: usize) -> Result<Box<dyn Source + '_>, SourceError> {
        Ok(Box::new(IngestSource {
            batches: self.batches.clone(),
            factory: self,
            batch: ChunkBatch::default(),
        }))
    }

    fn finish(self: Box<Self>) -> Result<SourceSummary, SourceError> {
        let IngestSourceFactory {
            batches,
            threads,
            pipeline,
            ..
        } = *self;
        // Hanging up lets every stage end: a send to a closed channel fails, and each stage
        // drops its own sender when it ends. A thread still blocked after Ctrl-C or a failure
        // (a fetch in flight, a silent stdin) is left behind, as the process is about to exit.
        drop(batches);
        for thread in threads.into_inner() {
            if !pipeline.signal.is_stopping() || thread.is_finished() {
                thread.join().map_err(|_| SourceError::Panicked {
                    what: "an ingest thread",
                })?;
            }
        }
        match pipeline.failure() {
            Some(err) => Err(SourceError::mode(err)),
            None => Ok(SourceSummary::default()),
        }
    }
}

/// One worker's end of the batcher's channel and the batch in hand.
struct IngestSource<'a> {
    batches: Receiver<ChunkBatch>,
    factory: &'a IngestSourceFactory,
    batch: ChunkBatch,
}

impl Source for IngestSource<'_> {
    fn next_batch(&mut self) -> Result<Option<&dyn Batch>, SourceError> {
        let pipeline = &self.factory.pipeline;
        loop {
            match self.batches.recv_timeout(RECEIVE_POLL) {
                Ok(batch) => {
                    self.batch = batch;
                    return Ok(Some(&self.batch));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return match pipeline.failure() {
                        Some(err) => Err(SourceError::mode(err)),
                        None => Ok(None),
                    }
                }
                Err(RecvTimeoutError::Timeout) if pipeline.signal.is_stopping() => return Ok(None),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Records the batch's documents in the state file, unless the target refused some of its
    /// rows: which documents those were is not known here, so the rerun loads the batch's
    /// documents again (at least once, the HTTP targets' guarantee).
    fn acknowledged(&mut self, written: &Written) -> Result<(), SourceError> {
        let documents = self.batch.documents();
        if written.rejected > 0 {
            return Ok(());
        }
        if let Some(state) = &self.factory.state_file {
            state.record(documents).map_err(SourceError::mode)?;
        }
        self.factory
            .pipeline
            .counters
            .loaded
            .fetch_add(documents.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
