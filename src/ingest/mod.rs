//! `ingest` mode ([`IngestConfig`], [`run`]): documents from an HTTP JSON API, cut into chunks, optionally embedded, loaded
//! into any target by the engine's pinned workers; a rerun skips the documents already loaded.
//!
//! ```text
//! lister ── URL file, stdin or listing pages; skips URLs loaded before; --limit
//!   ▼ bounded channel
//! fetcher ×--fetchers (own agent each, one shared --rate, retries) ── id, text, meta
//!   ▼ bounded channel
//! chunking pool (rayon, --chunkers) ── Chunker: overlapping chunks on paragraph/sentence breaks
//!   ▼ bounded channel
//! [embedder ×--embedders ── --embed-batch chunks per request] ── bounded channel
//!   ▼
//! batcher ── whole documents per batch (up to --batch chunks), skips ids loaded before
//!   ▼ bounded channel (2 × workers)
//! workers (engine) ── sink; PostgreSQL records each document in loader_documents in the
//!                     batch's own transaction, HTTP targets in the state file after the ack
//! ```
//!
//! Every channel is bounded, so memory stays flat whatever the number of documents: at most a
//! few documents per stage thread and per channel slot are in hand at once.

mod batch;
mod chunk;
mod config;
mod embed;
mod fetch;
mod state;

pub(crate) use batch::{schema, ChunkBatch};
pub use chunk::{ChunkBy, Chunker};
pub(crate) use config::{DocumentList, EmbedConfig, Fields, IngestConfig, DEFAULT_TABLE};
pub(crate) use state::StateFile;

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use rayon::iter::{ParallelBridge, ParallelIterator};
use serde_json::{json, Map};

use crate::engine::{
    RateLimit, RetryPolicy, Source, SourceError, SourceFactory, SourceSummary, Stages, StopSignal,
    Written,
};

use crate::conninfo::redact;
use crate::figures::count;
use crate::ledger::{Committed, LoadedDocuments};
use crate::reject::Reject;
use crate::rows::{Batch, Columns, Schema};
use crate::run::{self, Documents, Load, SourcePlan};
use crate::sink::stream::OutputFormat;
use embed::{EmbedError, Embedder};
use fetch::{Job, ListError};

/// Runs `loader ingest` and returns the exit code.
pub(crate) fn run(config: IngestConfig, signal: &Arc<StopSignal>) -> u8 {
    let settings = settings(&config);
    let load_config = config.load.clone();
    let documents = if config.records_documents() {
        config.documents
    } else {
        Documents::NotRecorded
    };
    let schema = schema(config.embed.is_some());
    let counters = Arc::new(IngestCounters::default());
    let stages = IngestStages::new(Arc::clone(&counters), config.rate);
    let mut plan = IngestPlan::new(config, Arc::clone(signal), counters);
    run::run(
        Load {
            mode: "ingest",
            config: &load_config,
            columns: Columns::Fixed(schema),
            sources: &mut plan,
            run_id: None,
            resume: false,
            total_rows: None,
            duration: None,
            output_format: OutputFormat::Ndjson,
            settings,
            documents,
            stages: Some(&stages),
        },
        signal,
    )
}

/// The report's `config` entries of an ingest run.
fn settings(config: &IngestConfig) -> Map<String, serde_json::Value> {
    let mut settings = Map::new();
    settings.insert(
        "documents".into(),
        json!(match &config.list {
            DocumentList::Urls(input) => input.name(),
            DocumentList::Listing { url, .. } => redact(url),
        }),
    );
    settings.insert(
        "fields".into(),
        json!({
            "id": config.fields.id,
            "text": config.fields.text,
            "meta": config.fields.meta,
        }),
    );
    settings.insert("fetchers".into(), json!(config.fetchers));
    settings.insert("rate".into(), json!(config.rate));
    settings.insert(
        "chunking".into(),
        json!({
            "size": config.chunker.size(),
            "overlap": config.chunker.overlap(),
            "by": config.chunker.by(),
            "threads": config.chunkers,
        }),
    );
    if let Some(embed) = &config.embed {
        settings.insert(
            "embedding".into(),
            json!({
                "url": redact(&embed.url),
                "model": embed.model,
                "batch": embed.batch,
                "threads": embed.threads,
            }),
        );
    }
    settings.insert("limit".into(), json!(config.limit));
    settings.insert(
        "resume".into(),
        json!(config.documents == Documents::Resume),
    );
    if let Some(path) = &config.state_file {
        settings.insert("state_file".into(), json!(path));
    }
    settings
}

/// A document, or the reason it was rejected.
pub(crate) type Item<T> = Result<T, Reject>;

/// A fetched document's fields.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// Its position in the list.
    pub ordinal: u64,
    pub id: String,
    /// Its URL, or the listing page (and item) that held it.
    pub source: String,
    pub text: String,
    /// The `--meta` fields as a JSON object.
    pub meta: Option<String>,
}

/// A document cut into chunks (byte ranges of its text), and their vectors when embedded.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDocument {
    pub document: Document,
    pub chunks: Vec<Range<usize>>,
    /// Every chunk's vector, one after the other (all of one length).
    pub embeddings: Vec<f32>,
}

impl ChunkedDocument {
    /// Chunk `chunk`'s vector.
    fn embedding(&self, chunk: usize) -> &[f32] {
        let dimensions = self.embeddings.len() / self.chunks.len().max(1);
        &self.embeddings[chunk * dimensions..(chunk + 1) * dimensions]
    }
}

/// The stages' counts, shared by their threads; the progress line and the report read them.
#[derive(Debug, Default)]
pub(crate) struct IngestCounters {
    pub listed: AtomicU64,
    /// Listed documents an earlier run loaded (by URL or by id).
    pub skipped: AtomicU64,
    pub fetched: AtomicU64,
    pub chunked: AtomicU64,
    pub chunks: AtomicU64,
    pub embedded: AtomicU64,
    /// Documents rejected (not fetched, not JSON, no id or text, a repeated id).
    pub rejected: AtomicU64,
    /// Documents loaded whole by this run (of batches the target took without refusing a row).
    pub loaded: AtomicU64,
    /// Documents the ledger or state file showed loaded by earlier runs.
    pub recorded_before: AtomicU64,
    /// Requests for documents and listing pages, retries included.
    pub requests: AtomicU64,
    pub pages: AtomicU64,
    pub embed_requests: AtomicU64,
    /// Retries of fetches and embedding requests.
    pub retries: AtomicU64,
    /// When the stages started.
    started: OnceLock<Instant>,
}

/// Why a stage cannot go on: the load stops with it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StageError {
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// What every stage thread shares: the limits, the stop signal, the counts and the first
/// failure.
pub(crate) struct Pipeline {
    rate: Option<RateLimit>,
    retry: RetryPolicy,
    fetch_timeout: Duration,
    connect_timeout: Duration,
    signal: Arc<StopSignal>,
    counters: Arc<IngestCounters>,
    failure: Mutex<Option<Arc<StageError>>>,
}

impl Pipeline {
    /// A stage cannot go on: remember why and stop the load.
    fn fail(&self, err: StageError) {
        self.failure.lock().get_or_insert_with(|| Arc::new(err));
        self.signal.halt();
    }

    fn failure(&self) -> Option<Arc<StageError>> {
        self.failure.lock().clone()
    }
}

/// How long the batcher holds a partial batch while no document arrives.
const FLUSH_AFTER: Duration = Duration::from_millis(200);
/// How long a worker waits on its channel before looking at the stop signal again.
const RECEIVE_POLL: Duration = Duration::from_millis(100);
/// Stack of a fetcher or embedder thread: they wait on I/O and hold little.
const STAGE_STACK_BYTES: usize = 256 * 1024;

/// Ingest's [`SourcePlan`]: starts the stage threads once the target is ready.
pub(crate) struct IngestPlan {
    config: IngestConfig,
    signal: Arc<StopSignal>,
    counters: Arc<IngestCounters>,
}

impl IngestPlan {
    /// The stages will count into `counters` (which an [`IngestStages`] shows).
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

/// Starts every stage thread and returns them with the channel the workers read.
fn start_stages(
    config: &IngestConfig,
    pipeline: &Arc<Pipeline>,
    loaded: Arc<LoadedDocuments>,
    workers: usize,
) -> Result<(Vec<JoinHandle<()>>, Receiver<ChunkBatch>), SourceError> {
    let spawn = |name: String, body: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name)
            .stack_size(STAGE_STACK_BYTES)
            .spawn(body)
            .map_err(|err| SourceError::Start {
                what: "an ingest thread",
                err: Box::new(err),
            })
    };
    // Everything that can fail before a thread starts: the embedders' agents.
    let embedders = match &config.embed {
        Some(embed) => (0..embed.threads)
            .map(|_| Embedder::new(embed, config.load.connect_timeout, config.load.http.timeout))
            .collect::<Result<Vec<_>, _>>()
            .map_err(SourceError::mode)?,
        None => Vec::new(),
    };
    let mut threads = Vec::new();
    let (job_sender, jobs) = crossbeam_channel::bounded::<Job>(2 * config.fetchers);
    let (document_sender, documents) = crossbeam_channel::bounded(2 * config.chunkers);
    let (chunked_sender, chunked) = crossbeam_channel::bounded(2 * config.chunkers);
    let (batch_sender, batches) = crossbeam_channel::bounded(2 * workers.max(1));

    let (list, limit, lister_pipeline, lister_loaded) = (
        config.list.clone(),
        config.limit,
        Arc::clone(pipeline),
        Arc::clone(&loaded),
    );
    threads.push(spawn(
        "loader-lister".into(),
        Box::new(move || {
            if let Err(err) = lister_pipeline.list(&list, limit, &lister_loaded, &job_sender) {
                lister_pipeline.fail(err.into());
            }
        }),
    )?);
    for fetcher in 0..config.fetchers {
        let (pipeline, fields, jobs, documents) = (
            Arc::clone(pipeline),
            config.fields.clone(),
            jobs.clone(),
            document_sender.clone(),
        );
        threads.push(spawn(
            format!("loader-fetch-{fetcher}"),
            Box::new(move || {
                pipeline.fetch_documents(&fields, &jobs, &documents, pipeline.connect_timeout)
            }),
        )?);
    }
    drop((jobs, document_sender));

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.chunkers)
        .thread_name(|i| format!("loader-chunk-{i}"))
        .build()
        .map_err(|err| SourceError::Start {
            what: "the chunking pool",
            err: Box::new(err),
        })?;
    let (chunker, chunk_pipeline) = (config.chunker, Arc::clone(pipeline));
    threads.push(spawn(
        "loader-chunking".into(),
        Box::new(move || {
            pool.install(|| {
                documents.into_iter().par_bridge().for_each(|item| {
                    let item = item.map(|document| chunk_pipeline.chunk(&chunker, document));
                    let _ = chunked_sender.send(item);
                })
            })
        }),
    )?);

    let to_batcher = match &config.embed {
        Some(embed) => {
            let (embedded_sender, embedded_documents) =
                crossbeam_channel::bounded(2 * embed.threads);
            for (thread, embedder) in embedders.into_iter().enumerate() {
                let (pipeline, chunked, embedded_sender) = (
                    Arc::clone(pipeline),
                    chunked.clone(),
                    embedded_sender.clone(),
                );
                threads.push(spawn(
                    format!("loader-embed-{thread}"),
                    Box::new(move || {
                        pipeline.embed_documents(&embedder, &chunked, &embedded_sender)
                    }),
                )?);
            }
            embedded_documents
        }
        None => chunked,
    };
    let batcher = Batcher {
        pipeline: Arc::clone(pipeline),
        loaded,
        batch_chunks: config.load.batch,
        embedded: config.embed.is_some(),
    };
    threads.push(spawn(
        "loader-batcher".into(),
        Box::new(move || batcher.run(&to_batcher, &batch_sender)),
    )?);
    Ok((threads, batches))
}

impl Pipeline {
    /// Cuts a document into chunks (on a thread of the chunking pool).
    fn chunk(&self, chunker: &Chunker, document: Document) -> ChunkedDocument {
        let chunks = chunker.chunks(&document.text);
        self.counters.chunked.fetch_add(1, Ordering::Relaxed);
        self.counters
            .chunks
            .fetch_add(chunks.len() as u64, Ordering::Relaxed);
        ChunkedDocument {
            document,
            chunks,
            embeddings: Vec::new(),
        }
    }
}

/// Gathers whole documents into batches of up to `--batch` chunks (a document with more chunks
/// is a batch alone), skipping documents loaded before and rejecting repeated ids.
struct Batcher {
    pipeline: Arc<Pipeline>,
    loaded: Arc<LoadedDocuments>,
    batch_chunks: usize,
    embedded: bool,
}

impl Batcher {
    fn run(&self, documents: &Receiver<Item<ChunkedDocument>>, batches: &Sender<ChunkBatch>) {
        let counters = &self.pipeline.counters;
        let mut seen = std::collections::HashSet::new();
        let mut seq = 0;
        let mut batch = ChunkBatch::new(seq, self.embedded);
        // Sends the batch in hand (if it holds anything) and starts the next; false once the
        // workers are gone.
        let mut flush = |batch: &mut ChunkBatch| {
            if batch.document_count() == 0 {
                return true;
            }
            seq += 1;
            batches
                .send(std::mem::replace(
                    batch,
                    ChunkBatch::new(seq, self.embedded),
                ))
                .is_ok()
        };
        loop {
            let item = match documents.recv_timeout(FLUSH_AFTER) {
                Ok(item) => item,
                Err(RecvTimeoutError::Timeout) => {
                    if !flush(&mut batch) {
                        return;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let document = match item {
                Ok(document) if self.loaded.has_id(&document.document.id) => {
                    counters.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Ok(document) if !seen.insert(document.document.id.clone()) => {
                    batch.rejected.push(fetch::document_reject(
                        &document.document.source,
                        "document",
                        format!(
                            "document id `{}` came twice in this run; the first one is loaded",
                            document.document.id
                        ),
                    ));
                    counters.rejected.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Ok(document) => document,
                Err(reject) => {
                    batch.rejected.push(reject);
                    counters.rejected.fetch_add(1, Ordering::Relaxed);
                    if batch.rejected.len() >= self.batch_chunks && !flush(&mut batch) {
                        return;
                    }
                    continue;
                }
            };
            if batch.len() + document.chunks.len() > self.batch_chunks && !flush(&mut batch) {
                return;
            }
            batch.push(document);
            // Documents without chunks count too, so that a batch of them stays bounded.
            let full = batch.len().max(batch.document_count()) >= self.batch_chunks;
            if full && !flush(&mut batch) {
                return;
            }
        }
        flush(&mut batch);
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

/// The stages' live status and final figures.
pub(crate) struct IngestStages {
    counters: Arc<IngestCounters>,
    rate: Option<f64>,
    /// The request count at the last status, for the current request rate.
    last: Mutex<Option<(Instant, u64)>>,
}

impl IngestStages {
    /// Shows `counters`; `rate` is the `--rate` limit, for the report.
    pub(crate) fn new(counters: Arc<IngestCounters>, rate: Option<f64>) -> IngestStages {
        IngestStages {
            counters,
            rate,
            last: Mutex::new(None),
        }
    }

    fn elapsed_s(&self) -> f64 {
        self.counters
            .started
            .get()
            .map_or(0.0, |at| at.elapsed().as_secs_f64())
            .max(1e-9)
    }
}

impl Stages for IngestStages {
    fn status(&self) -> String {
        let c = &self.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let requests = get(&c.requests);
        let now = Instant::now();
        let since = self
            .last
            .lock()
            .replace((now, requests))
            .or_else(|| Some((*self.counters.started.get()?, 0)));
        let rate = since.map_or(0.0, |(at, before)| {
            requests.saturating_sub(before) as f64 / now.duration_since(at).as_secs_f64().max(1e-9)
        });
        let (listed, skipped, fetched, chunked) = (
            get(&c.listed),
            get(&c.skipped),
            get(&c.fetched),
            get(&c.chunked),
        );
        let rejected = get(&c.rejected);
        format!(
            "docs listed {} fetched {} chunked {} loaded {} skipped {} rejected {}  queues {}/{}  \
             chunks {} embedded {}  {:.0} req/s",
            count(listed),
            count(fetched),
            count(chunked),
            count(get(&c.loaded)),
            count(skipped),
            count(rejected),
            // Listed but not yet fetched (or failed), fetched but not yet chunked.
            listed.saturating_sub(skipped + fetched + rejected),
            fetched.saturating_sub(chunked),
            count(get(&c.chunks)),
            count(get(&c.embedded)),
            rate,
        )
    }

    fn report(&self) -> (serde_json::Value, Vec<String>) {
        let c = &self.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let elapsed = self.elapsed_s();
        let loaded = get(&c.loaded);
        let figures = json!({
            "documents": {
                "listed": get(&c.listed),
                "skipped": get(&c.skipped),
                "fetched": get(&c.fetched),
                "rejected": get(&c.rejected),
                "loaded": loaded,
                "recorded_before": get(&c.recorded_before),
                "per_s": loaded as f64 / elapsed,
            },
            "chunks": {
                "made": get(&c.chunks),
                "embedded": get(&c.embedded),
                "per_s": get(&c.chunks) as f64 / elapsed,
            },
            "requests": {
                "fetches": get(&c.requests),
                "listing_pages": get(&c.pages),
                "embeddings": get(&c.embed_requests),
                "retries": get(&c.retries),
                "per_s": get(&c.requests) as f64 / elapsed,
                "rate_limit": self.rate,
            },
        });
        let lines = vec![
            format!(
                "documents {} loaded ({:.1}/s), {} listed, {} skipped as loaded before, {} \
                 rejected",
                count(loaded),
                loaded as f64 / elapsed,
                count(get(&c.listed)),
                count(get(&c.skipped)),
                count(get(&c.rejected)),
            ),
            format!(
                "requests  {} fetches ({:.1}/s, {} retries), {} embedding requests, {} chunks \
                 made, {} embedded",
                count(get(&c.requests)),
                get(&c.requests) as f64 / elapsed,
                count(get(&c.retries)),
                count(get(&c.embed_requests)),
                count(get(&c.chunks)),
                count(get(&c.embedded)),
            ),
        ];
        (figures, lines)
    }
}
