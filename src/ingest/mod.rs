//! `ingest` mode ([`IngestConfig`], [`run`]): documents from an HTTP JSON API, cut into chunks,
//! optionally embedded, loaded into any target by the engine's pinned workers; a rerun skips the
//! documents already loaded.
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
//!
//! Here: the run, the documents, what every stage thread shares ([`Pipeline`], [`IngestCounters`])
//! and the stages' status and figures ([`IngestStages`]). `stages.rs` starts the threads,
//! `batcher.rs` makes the batches, `source.rs` is the engine's side (plan, factory, sources).

mod batch;
mod batcher;
mod chunk;
mod config;
mod embed;
mod fetch;
mod source;
mod stages;
mod state;

pub(crate) use batch::{schema, ChunkBatch};
pub use chunk::{ChunkBy, Chunker};
pub(crate) use config::{DocumentList, EmbedConfig, Fields, IngestConfig, DEFAULT_TABLE};
pub(crate) use state::StateFile;

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Map};

use crate::conninfo::redact;
use crate::engine::{Goal, RateLimit, RetryPolicy, Stages, StopSignal, Unit};
use crate::figures::count;
use crate::reject::Reject;
use crate::rows::Columns;
use crate::run::{self, Documents, Load};
use crate::sink::stream::OutputFormat;
use embed::EmbedError;
use fetch::ListError;
use source::IngestPlan;

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
    let limit = config.limit;
    let mut plan = IngestPlan::new(config, Arc::clone(signal), Arc::clone(&counters));
    // Every listed document ends loaded, rejected, or skipped as loaded by an earlier run.
    let documents_done = || {
        [&counters.loaded, &counters.rejected, &counters.skipped]
            .iter()
            .map(|counter| counter.load(Ordering::Relaxed))
            .sum()
    };
    run::run(
        Load {
            mode: "ingest",
            source: None,
            config: &load_config,
            columns: Columns::Fixed(schema),
            types_sniffed: false,
            sources: &mut plan,
            run_id: None,
            resume: false,
            goal: limit.map(|total| Goal::Measured {
                total,
                unit: Unit::Documents,
                done: &documents_done,
            }),
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
