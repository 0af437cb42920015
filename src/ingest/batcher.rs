//! The batcher thread's work: [`Batcher`] gathers the chunked (and embedded) documents into
//! [`ChunkBatch`]es of whole documents for the workers, skipping the ids loaded before and
//! rejecting the ids that come twice.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::{fetch, ChunkBatch, ChunkedDocument, Item, Pipeline};
use crate::ledger::LoadedDocuments;
use crate::rows::Batch;

/// How long the batcher holds a partial batch while no document arrives.
const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// Gathers whole documents into batches of up to `--batch` chunks (a document with more chunks
/// is a batch alone), skipping documents loaded before and rejecting repeated ids.
pub(crate) struct Batcher {
    pub pipeline: Arc<Pipeline>,
    pub loaded: Arc<LoadedDocuments>,
    pub batch_chunks: usize,
    pub embedded: bool,
}

impl Batcher {
    pub(crate) fn run(
        &self,
        documents: &Receiver<Item<ChunkedDocument>>,
        batches: &Sender<ChunkBatch>,
    ) {
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
