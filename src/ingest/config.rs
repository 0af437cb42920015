//! The validated settings of `loader ingest`: where the documents are listed, which of their
//! fields to take, how fast to fetch, how to chunk and embed, and how loaded documents are
//! remembered (built from the flags, each checked, in `config/ingest.rs`).

use std::path::PathBuf;
use std::time::Duration;

use super::chunk::Chunker;
use crate::copy::Input;
use crate::run::{Documents, LoadConfig};
use crate::target::Target;

/// The table ingest loads into when `--table` is not given.
pub(crate) const DEFAULT_TABLE: &str = "chunks";

/// Where the documents are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DocumentList {
    /// A file (or stdin) of URLs, one per line.
    Urls(Input),
    /// A listing endpoint, page after page.
    Listing {
        url: String,
        /// Pointer to a page's items (`None`: the page itself when it is an array, else `/items`).
        items: Option<String>,
        /// Pointer to the next page's URL (`None`: one page only).
        next: Option<String>,
    },
}

/// Which fields of a document to take, as JSON pointers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    pub id: String,
    pub text: String,
    pub meta: Vec<String>,
}

/// The optional embedding stage.
#[derive(Clone)]
pub(crate) struct EmbedConfig {
    pub url: String,
    pub model: String,
    /// Chunks per request.
    pub batch: usize,
    pub threads: usize,
    /// The bearer key (LOADER_EMBED_KEY); never displayed.
    pub key: Option<String>,
}

impl std::fmt::Debug for EmbedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("batch", &self.batch)
            .field("threads", &self.threads)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Settings of `loader ingest`.
#[derive(Debug, Clone)]
pub(crate) struct IngestConfig {
    pub load: LoadConfig,
    pub list: DocumentList,
    pub fields: Fields,
    pub fetchers: usize,
    /// Requests per second over all fetchers.
    pub rate: Option<f64>,
    pub fetch_timeout: Duration,
    pub chunker: Chunker,
    pub chunkers: usize,
    pub embed: Option<EmbedConfig>,
    pub limit: Option<u64>,
    /// Whether earlier runs' documents are skipped or forgotten.
    pub documents: Documents,
    /// Where HTTP targets record the loaded documents (PostgreSQL records them in its documents
    /// ledger; the stream targets rewrite their output and record nothing).
    pub state_file: Option<PathBuf>,
}

impl IngestConfig {
    /// Whether the target keeps a record of the loaded documents (so a rerun skips them).
    pub(crate) fn records_documents(&self) -> bool {
        matches!(
            self.load.target,
            Target::Postgres(_) | Target::Local | Target::Http(_)
        )
    }
}
