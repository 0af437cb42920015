//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off in normal builds).
//!
//! Each is a thin public wrapper around crate-internal code, so that nothing internal is made
//! public for the fuzzers and no logic is copied: the splitter with a small read size, the header
//! and field parsers of copy mode, and the judges of the HTTP sinks' answers (returned as
//! [`Judged`], a public mirror of the sinks' own judgement). What is already public (the
//! [`Splitter`], [`CopyBatch`](crate::copy::CopyBatch), [`Target`](crate::target::Target),
//! [`redact`](crate::target::redact), [`Chunker`](crate::ingest::Chunker)) is used directly.

use std::io::Read;
use std::sync::Arc;

use crate::copy::{Dialect, Framing, Splitter};
use crate::failure::Failure;
use crate::rows::{SqlType, Unencodable};
use crate::sink::http::{self, Item, Judgement};
use crate::sql::TableName;
use crate::target::HttpProtocol;

/// A [`Splitter`] that asks `input` for at most `read_bytes` bytes at a time.
pub fn splitter(input: Box<dyn Read + Send>, framing: Framing, read_bytes: usize) -> Splitter {
    Splitter::with_read_bytes(input, framing, read_bytes)
}

/// The column names of a header record (without its line feed), as copy mode reads them.
pub fn parse_header(
    dialect: Dialect,
    record: &[u8],
) -> Result<Vec<String>, impl std::error::Error + Send + Sync + 'static> {
    crate::copy::batch::parse_header(Arc::new(dialect), record)
}

/// Appends `text` as one binary COPY field of `sql_type`, as copy mode encodes a value.
pub fn encode_field(sql_type: SqlType, text: &[u8], out: &mut Vec<u8>) -> Result<(), Unencodable> {
    crate::copy::typed::encode_field(sql_type, text, out)
}

/// What an HTTP sink makes of an answer (the sinks' `Judgement`).
#[derive(Debug)]
pub enum Judged {
    /// Every row was stored.
    Stored,
    /// One result per row, in order.
    Items(Vec<ItemResult>),
    /// The row at `position` is bad and nothing was stored.
    BadRow { position: usize, message: String },
    /// The request as a whole failed.
    Failed(Failure),
}

/// One row's result in [`Judged::Items`].
#[derive(Debug, PartialEq, Eq)]
pub enum ItemResult {
    Stored,
    Retry,
    Rejected(String),
}

/// Judges `status` and `body`, the answer of a `protocol` target to a request of `rows` rows
/// into `table`, as the HTTP sink does.
pub fn judge_answer(
    protocol: HttpProtocol,
    table: &TableName,
    status: u16,
    body: &[u8],
    rows: usize,
) -> Judged {
    match http::judge_answer(protocol, table, "the target", status, body, rows) {
        Judgement::Stored => Judged::Stored,
        Judgement::Items(items) => Judged::Items(
            items
                .into_iter()
                .map(|item| match item {
                    Item::Stored => ItemResult::Stored,
                    Item::Retry => ItemResult::Retry,
                    Item::Rejected(message) => ItemResult::Rejected(message),
                })
                .collect(),
        ),
        Judgement::BadRow { position, message } => Judged::BadRow { position, message },
        Judgement::Failed(err) => Judged::Failed(err),
    }
}
