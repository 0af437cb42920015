//! The ledger's view of earlier attempts: the batches a run committed (what `--resume` skips and
//! what an in-doubt write looks up) and the documents loaded whole (what ingest skips). The
//! PostgreSQL ledger tables and the HTTP targets' state files are read into these. [`Documents`]
//! says whether a load records its documents there, and whether it reads the earlier records.

use std::collections::{HashMap, HashSet};

/// What earlier attempts committed, as the target's ledgers show it: the batches of this run by
/// sequence number (what copy's `--resume` skips), and the documents loaded into the table
/// (what ingest skips).
#[derive(Debug, Default)]
pub(crate) struct Committed {
    batches: HashMap<u64, CommittedBatch>,
    pub documents: LoadedDocuments,
}

/// The documents earlier runs loaded whole into the table: their ids and where they came from.
#[derive(Debug, Default, Clone)]
pub(crate) struct LoadedDocuments {
    ids: HashSet<String>,
    sources: HashSet<String>,
}

impl LoadedDocuments {
    pub(crate) fn insert(&mut self, id: String, source: String) {
        self.ids.insert(id);
        self.sources.insert(source);
    }

    /// Adds another host's (or the state file's) records.
    pub(crate) fn merge(&mut self, other: LoadedDocuments) {
        self.ids.extend(other.ids);
        self.sources.extend(other.sources);
    }

    pub(crate) fn has_id(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Whether a document fetched from `source` (its URL) was loaded.
    pub(crate) fn has_source(&self, source: &str) -> bool {
        self.sources.contains(source)
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// What a mode records of the documents it loads (ingest mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Documents {
    /// The mode loads rows, not documents.
    NotRecorded,
    /// Record them, and skip the ones earlier runs loaded.
    Resume,
    /// Record them, forgetting what earlier runs loaded.
    Fresh,
}

/// One committed batch, as the ledger recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommittedBatch {
    pub first_row: u64,
    /// Rows loaded.
    pub rows: u64,
    /// Records rejected (by the parser or the server).
    pub rejected: u64,
    /// Rows sent that the server did not store (a trigger or rule dropped them).
    pub skipped: u64,
}

impl Committed {
    pub(crate) fn new(batches: impl IntoIterator<Item = (u64, CommittedBatch)>) -> Committed {
        Committed {
            batches: batches.into_iter().collect(),
            documents: LoadedDocuments::default(),
        }
    }

    /// Adds the batches and documents of another ledger (another host's share of the run).
    pub(crate) fn merge(&mut self, other: Committed) {
        self.batches.extend(other.batches);
        self.documents.merge(other.documents);
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&CommittedBatch> {
        self.batches.get(&seq)
    }

    /// The committed batches, by sequence number.
    pub(crate) fn batches(&self) -> impl Iterator<Item = &CommittedBatch> {
        self.batches.values()
    }

    /// Batches committed.
    pub(crate) fn len(&self) -> usize {
        self.batches.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

/// FNV-1a, a stable 64-bit hash: of a target in a state file's name, of an input's first MiB in the
/// ledger's source, so that a later run knows whether it reads the same things.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
