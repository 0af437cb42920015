//! The optional embedding stage: threads that send the chunks of the documents in hand to an
//! OpenAI-compatible `/v1/embeddings` endpoint (`{"model", "input": [texts]}` answered by
//! `{"data": [{"index", "embedding"}]}`), `--embed-batch` chunks per request across documents,
//! retried like a fetch, and attach each chunk's vector. A request that fails for good stops the
//! load: every later document would fail the same way.

use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};
use serde::Deserialize;
use ureq::http::uri::InvalidUri;
use ureq::http::Uri;
use ureq::Agent;

use super::config::EmbedConfig;
use super::fetch::status_error;
use super::{ChunkedDocument, Item, Pipeline};
use crate::failure::Failure;
use crate::http_client::{agent_config, transport_failure, Answer, ResolveError, ResolvedHost};

/// Why the embedding stage cannot start or go on; the load stops with it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EmbedError {
    #[error("--embed-url {url}: {err}")]
    Url { url: String, err: InvalidUri },
    #[error("--embed-url: {0}")]
    Resolve(ResolveError),
    /// A request that failed for good.
    #[error(transparent)]
    Request(Failure),
    #[error(
        "the embeddings endpoint {url} answered vectors of {dimensions} and of {other} dimensions"
    )]
    Dimensions {
        url: String,
        dimensions: usize,
        other: usize,
    },
}

/// The largest answer read: 2048 vectors of 3072 dimensions as JSON stay well under it.
const MAX_ANSWER_BYTES: u64 = 256 << 20;

#[derive(Deserialize)]
struct Embeddings {
    data: Vec<Embedding>,
}

#[derive(Deserialize)]
struct Embedding {
    index: usize,
    embedding: Vec<f32>,
}

/// One embedding thread's client.
pub(crate) struct Embedder {
    agent: Agent,
    config: EmbedConfig,
}

impl Embedder {
    pub(crate) fn new(
        config: &EmbedConfig,
        connect_timeout: std::time::Duration,
        timeout: std::time::Duration,
    ) -> Result<Embedder, EmbedError> {
        let uri: Uri = config.url.parse().map_err(|err| EmbedError::Url {
            url: config.url.clone(),
            err,
        })?;
        let host = ResolvedHost::resolve(&uri).map_err(EmbedError::Resolve)?;
        let agent_config = agent_config(connect_timeout, timeout)
            .max_redirects(0)
            .build();
        Ok(Embedder {
            agent: host.agent(agent_config),
            config: config.clone(),
        })
    }

    /// One request: the vectors of `texts`, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Failure> {
        let url = &self.config.url;
        let body = serde_json::json!({"model": self.config.model, "input": texts}).to_string();
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.config.key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let response = request
            .send(body.as_bytes())
            .map_err(|err| transport_failure(url, &err))?;
        let answer =
            Answer::read(response, MAX_ANSWER_BYTES).map_err(|err| transport_failure(url, &err))?;
        if answer.status != 200 {
            let message = format!(
                "the embeddings endpoint {url} answered HTTP {}: {}",
                answer.status,
                answer.excerpt()
            );
            return Err(status_error(&answer, message));
        }
        let protocol = |reason: String| Failure::Permanent {
            kind: "embed",
            message: format!("the embeddings endpoint {url} answered {reason}"),
        };
        let mut parsed: Embeddings = serde_json::from_slice(&answer.body)
            .map_err(|err| protocol(format!("an unreadable body: {err}")))?;
        if parsed.data.len() != texts.len() {
            return Err(protocol(format!(
                "{} vectors for {} inputs",
                parsed.data.len(),
                texts.len()
            )));
        }
        parsed.data.sort_by_key(|embedding| embedding.index);
        if parsed.data.iter().enumerate().any(|(i, e)| e.index != i) {
            return Err(protocol("indexes that do not match the inputs".into()));
        }
        Ok(parsed.data.into_iter().map(|e| e.embedding).collect())
    }
}

impl Pipeline {
    /// An embedding thread: takes the documents waiting (at least one, more while they hold
    /// fewer than `--embed-batch` chunks), embeds their chunks, and passes them on.
    pub(crate) fn embed_documents(
        &self,
        embedder: &Embedder,
        chunked: &Receiver<Item<ChunkedDocument>>,
        embedded: &Sender<Item<ChunkedDocument>>,
    ) {
        let batch = embedder.config.batch;
        while let Ok(first) = chunked.recv() {
            let mut waiting = vec![first];
            let chunks = |waiting: &[Item<ChunkedDocument>]| -> usize {
                waiting
                    .iter()
                    .flatten()
                    .map(|document| document.chunks.len())
                    .sum()
            };
            while chunks(&waiting) < batch {
                match chunked.try_recv() {
                    Ok(item) => waiting.push(item),
                    Err(_) => break,
                }
            }
            if let Err(err) = self.embed_all(embedder, &mut waiting) {
                if !self.signal.is_stopping() {
                    self.fail(err.into());
                }
                return;
            }
            for item in waiting {
                if embedded.send(item).is_err() {
                    return;
                }
            }
        }
    }

    /// Embeds every chunk of `documents` in requests of at most `--embed-batch` chunks.
    fn embed_all(
        &self,
        embedder: &Embedder,
        documents: &mut [Item<ChunkedDocument>],
    ) -> Result<(), EmbedError> {
        let texts: Vec<&str> = documents
            .iter()
            .flatten()
            .flat_map(|document| {
                document
                    .chunks
                    .iter()
                    .map(|range| &document.document.text[range.clone()])
            })
            .collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for request in texts.chunks(embedder.config.batch) {
            let answer = self
                .retry
                .run(
                    Some(self.signal.stopping_flag()),
                    || {
                        self.counters.embed_requests.fetch_add(1, Ordering::Relaxed);
                        embedder.embed(request)
                    },
                    |_, _| {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    },
                )
                .map_err(EmbedError::Request)?;
            vectors.extend(answer);
        }
        let dimensions = vectors.first().map_or(0, Vec::len);
        if let Some(other) = vectors.iter().find(|v| v.len() != dimensions) {
            return Err(EmbedError::Dimensions {
                url: embedder.config.url.clone(),
                dimensions,
                other: other.len(),
            });
        }
        let mut vectors = vectors.into_iter();
        for document in documents.iter_mut().flatten() {
            document.embeddings = vectors
                .by_ref()
                .take(document.chunks.len())
                .flatten()
                .collect();
            self.counters
                .embedded
                .fetch_add(document.chunks.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}
