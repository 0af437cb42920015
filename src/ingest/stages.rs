//! The stage threads in front of the workers: [`start_stages`] starts the lister, the fetchers,
//! the chunking pool, the embedders and the batcher, joined by bounded channels, and returns them
//! with the channel the workers read. What a stage does is in fetch.rs, embed.rs and batcher.rs;
//! the chunking pool's work ([`Pipeline::chunk`]) is here.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use rayon::iter::{ParallelBridge, ParallelIterator};

use super::batcher::Batcher;
use super::embed::Embedder;
use super::fetch::Job;
use super::{
    ChunkBatch, ChunkedDocument, Chunker, Document, EmbedConfig, IngestConfig, Item, Pipeline,
};
use crate::engine::SourceError;
use crate::ledger::LoadedDocuments;

/// Stack of a fetcher or embedder thread: they wait on I/O and hold little.
const STAGE_STACK_BYTES: usize = 256 * 1024;

/// Starts every stage thread and returns them with the channel the workers read.
pub(crate) fn start_stages(
    config: &IngestConfig,
    pipeline: &Arc<Pipeline>,
    loaded: Arc<LoadedDocuments>,
    workers: usize,
) -> Result<(Vec<JoinHandle<()>>, Receiver<ChunkBatch>), SourceError> {
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

    start_lister(config, pipeline, &loaded, job_sender, &mut threads)?;
    start_fetchers(config, pipeline, jobs, document_sender, &mut threads)?;
    start_chunking(config, pipeline, documents, chunked_sender, &mut threads)?;
    let to_batcher = match &config.embed {
        Some(embed) => start_embedders(embed, embedders, pipeline, chunked, &mut threads)?,
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

/// Starts a stage thread.
fn spawn(name: String, body: Box<dyn FnOnce() + Send>) -> Result<JoinHandle<()>, SourceError> {
    std::thread::Builder::new()
        .name(name)
        .stack_size(STAGE_STACK_BYTES)
        .spawn(body)
        .map_err(|err| SourceError::Start {
            what: "an ingest thread",
            err: Box::new(err),
        })
}

/// The lister: lists the documents and hands the fetchers the ones not loaded before.
fn start_lister(
    config: &IngestConfig,
    pipeline: &Arc<Pipeline>,
    loaded: &Arc<LoadedDocuments>,
    job_sender: Sender<Job>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<(), SourceError> {
    let (list, limit, lister_pipeline, lister_loaded) = (
        config.list.clone(),
        config.limit,
        Arc::clone(pipeline),
        Arc::clone(loaded),
    );
    threads.push(spawn(
        "loader-lister".into(),
        Box::new(move || {
            if let Err(err) = lister_pipeline.list(&list, limit, &lister_loaded, &job_sender) {
                lister_pipeline.fail(err.into());
            }
        }),
    )?);
    Ok(())
}

/// The fetchers, each with its own agent; they hold the only ends of `jobs` and `document_sender`
/// left once this returns.
fn start_fetchers(
    config: &IngestConfig,
    pipeline: &Arc<Pipeline>,
    jobs: Receiver<Job>,
    document_sender: Sender<Item<Document>>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<(), SourceError> {
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
    Ok(())
}

/// The chunking pool (`--chunkers` threads), fed by one thread that bridges the fetched documents
/// into it.
fn start_chunking(
    config: &IngestConfig,
    pipeline: &Arc<Pipeline>,
    documents: Receiver<Item<Document>>,
    chunked_sender: Sender<Item<ChunkedDocument>>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<(), SourceError> {
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
    Ok(())
}

/// The embedders, one thread per agent in `embedders`, between the chunking pool and the batcher;
/// returns the channel of embedded documents.
fn start_embedders(
    embed: &EmbedConfig,
    embedders: Vec<Embedder>,
    pipeline: &Arc<Pipeline>,
    chunked: Receiver<Item<ChunkedDocument>>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<Receiver<Item<ChunkedDocument>>, SourceError> {
    let (embedded_sender, embedded_documents) = crossbeam_channel::bounded(2 * embed.threads);
    for (thread, embedder) in embedders.into_iter().enumerate() {
        let (pipeline, chunked, embedded_sender) = (
            Arc::clone(pipeline),
            chunked.clone(),
            embedded_sender.clone(),
        );
        threads.push(spawn(
            format!("loader-embed-{thread}"),
            Box::new(move || pipeline.embed_documents(&embedder, &chunked, &embedded_sender)),
        )?);
    }
    Ok(embedded_documents)
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
