//! What every HTTP protocol provides ([`Protocol`]: rows into a request body, an answer into a
//! [`Judgement`] of the rows it was about), and the pieces the protocols share: the dispatch on the
//! target's protocol, reading a 200 answer's JSON, and encoding a run of rows.

use crate::failure::Failure;
use crate::rows::{Batch, RowFormat};
use crate::sink::encode_runs;
#[cfg(feature = "fuzzing")]
use {
    super::{clickhouse, cratedb, elastic, ndjson},
    crate::sql::TableName,
    crate::target::HttpProtocol,
};

/// What one answer means for the rows it was about.
#[derive(Debug)]
pub(crate) enum Judgement {
    /// Every row was stored.
    Stored,
    /// One result per row, in order (made by [`Judgement::items`], which checks the count).
    Items(Vec<Item>),
    /// The row at this position is bad and nothing was stored: reject it, resend the others.
    BadRow { position: usize, message: String },
    /// The request as a whole failed.
    Failed(Failure),
}

impl Judgement {
    /// `Items(items)` for an answer about `rows` rows, or a protocol failure when the answer gives
    /// another number of results: they are paired with the rows sent, in order, so a missing or
    /// extra result would store, resend or reject the wrong rows.
    pub(crate) fn items(target: &str, items: Vec<Item>, rows: usize) -> Judgement {
        match Judgement::counted(target, items.len(), rows) {
            Ok(()) => Judgement::Items(items),
            Err(failed) => failed,
        }
    }

    /// Ok when an answer about `rows` rows gives `results` results, else a permanent protocol
    /// failure: a server that answers another count is broken, and since the results cannot be
    /// paired with the rows, which rows it stored is unknown and none of them is counted.
    pub(crate) fn counted(target: &str, results: usize, rows: usize) -> Result<(), Judgement> {
        if results == rows {
            return Ok(());
        }
        Err(Judgement::Failed(Failure::Permanent {
            kind: "protocol",
            message: format!(
                "{target} answered {results} item results for {rows} rows: which of them it \
                 stored is unknown, so none is counted; check the server (or a proxy in front of \
                 it) before loading again"
            ),
        }))
    }
}

/// One row's result in a per-item answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Stored,
    /// Refused for now (overload): resend it.
    Retry,
    /// Refused for its data: reject it with this message.
    Rejected(String),
    /// Refused because the target holds a row with its key already (CrateDB's
    /// DuplicateKeyException): stored by an earlier attempt whose answer was lost when the batch
    /// is in doubt, else the data's own duplicate, rejected with this message.
    Duplicate(String),
}

/// A target's wire protocol.
pub(crate) trait Protocol: Send + Sync {
    /// Path and query of the write request, after the base URL.
    fn endpoint(&self) -> &str;
    fn content_type(&self) -> &'static str;
    /// Appends the body of a request for the rows `rows` (positions in `batch`).
    fn body(&self, batch: &dyn Batch, rows: &[usize], out: &mut Vec<u8>);
    /// Judges the answer of `target` (the host's name, for messages) to a request for `rows` rows.
    fn judge(&self, target: &str, status: u16, body: &[u8], rows: usize) -> Judgement;
}

/// Judges `status` and `body` as the sink of `protocol` does, without a connection: the fuzz
/// targets' way in (`crate::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) fn judge_answer(
    protocol: HttpProtocol,
    table: &TableName,
    target: &str,
    status: u16,
    body: &[u8],
    rows: usize,
) -> Judgement {
    match protocol {
        HttpProtocol::Crate => cratedb::judge(target, table, status, body, rows),
        HttpProtocol::Elasticsearch | HttpProtocol::OpenSearch => {
            elastic::judge(target, status, body, rows)
        }
        HttpProtocol::ClickHouse => clickhouse::judge(target, table, status, body, rows),
        HttpProtocol::Ndjson => ndjson::judge(target, status, body),
    }
}

/// A 200 answer's JSON body, or the judgement that the target answered something unreadable.
pub(crate) fn parse_answer<T: serde::de::DeserializeOwned>(
    target: &str,
    body: &[u8],
) -> Result<T, Judgement> {
    parse_json(target, body).map_err(Judgement::Failed)
}

/// A 200 answer's JSON body, or the failure that the target answered something unreadable.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    target: &str,
    body: &[u8],
) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|err| Failure::Permanent {
        kind: "protocol",
        message: format!("{target} answered 200 with an unreadable body: {err}"),
    })
}

/// Encodes the rows `rows` (sorted positions) of `batch` in `format`, run by run
/// ([`super::encode_runs`]).
pub(crate) fn encode_rows(batch: &dyn Batch, rows: &[usize], format: RowFormat, out: &mut Vec<u8>) {
    // JSON formats carry any value: encoding cannot fail.
    let _ = encode_runs(rows, format, out, |run, out| batch.encode(run, format, out));
}
