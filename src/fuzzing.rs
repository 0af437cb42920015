//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off in normal builds).
//!
//! Each is a thin public wrapper around crate-internal code, so that nothing internal is made
//! public for the fuzzers and no logic is copied: the splitter with a small read size, the header
//! and field parsers of copy mode, the judges of the HTTP sinks' answers (returned as [`Judged`],
//! a public mirror of the sinks' own judgement), and every text a parsed target shows. What the
//! crate's API already offers ([`crate::parts`]: the splitter, `CopyBatch`, the `Chunker`) is
//! used directly.

use std::io::Read;
use std::sync::Arc;

use crate::conninfo::redact;
use crate::copy::{Dialect, Framing, Splitter};
use crate::rows::{SqlType, Unencodable};
use crate::sink::http::{self, Item, Judgement};
use crate::sql::TableName;
use crate::target::{HttpProtocol, Target};
use crate::usage::ConfigError;

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
    /// The request as a whole failed, with this message.
    Failed(String),
}

/// One row's result in [`Judged::Items`].
#[derive(Debug, PartialEq, Eq)]
pub enum ItemResult {
    Stored,
    Retry,
    Rejected(String),
}

/// The HTTP protocols, in the order [`judge_answer`] numbers them.
const PROTOCOLS: [HttpProtocol; 5] = [
    HttpProtocol::Crate,
    HttpProtocol::Elasticsearch,
    HttpProtocol::OpenSearch,
    HttpProtocol::ClickHouse,
    HttpProtocol::Ndjson,
];

/// How many protocols [`judge_answer`] knows.
pub const PROTOCOL_COUNT: usize = PROTOCOLS.len();

/// Judges `status` and `body`, the answer of a target speaking protocol number `protocol` (of
/// [`PROTOCOL_COUNT`]) to a request of `rows` rows into the table `s.t`, as the HTTP sink does.
pub fn judge_answer(protocol: usize, status: u16, body: &[u8], rows: usize) -> Judged {
    let table = TableName::parse("s.t").expect("a table name");
    let protocol = PROTOCOLS[protocol % PROTOCOL_COUNT];
    match http::judge_answer(protocol, &table, "the target", status, body, rows) {
        Judgement::Stored => Judged::Stored,
        Judgement::Items(items) => Judged::Items(
            items
                .into_iter()
                .map(|item| match item {
                    Item::Stored => ItemResult::Stored,
                    Item::Retry => ItemResult::Retry,
                    Item::Rejected(message) | Item::Duplicate(message) => {
                        ItemResult::Rejected(message)
                    }
                })
                .collect(),
        ),
        Judgement::BadRow { position, message } => Judged::BadRow { position, message },
        Judgement::Failed(err) => Judged::Failed(err.to_string()),
    }
}

/// Every text loader shows of `text` as a target and of `args` resolved as `--target` values:
/// each one's `Display` and `Debug`, each host's and each base URL, or the error; and
/// `redact(text)`. The environment is empty.
pub fn target_texts(text: &str, args: &[String]) -> Vec<String> {
    let no_env = |_: &str| None;
    let mut texts = vec![redact(text)];
    for parsed in [Target::parse(text, &no_env), Target::resolve(args, &no_env)] {
        shown(&parsed, &mut texts);
    }
    texts
}

fn shown(parsed: &Result<Target, ConfigError>, texts: &mut Vec<String>) {
    let target = match parsed {
        Ok(target) => target,
        Err(err) => return texts.push(err.to_string()),
    };
    texts.push(target.to_string());
    texts.push(format!("{target:?}"));
    match target {
        Target::Postgres(pg) => {
            for (i, single) in pg.split_hosts().iter().enumerate() {
                texts.push(single.to_string());
                texts.push(pg.host_name(i));
            }
        }
        Target::Http(http) => {
            for i in 0..http.hosts().len() {
                texts.push(http.base_url(i));
                texts.push(http.single_host(i).to_string());
            }
        }
        _ => {}
    }
}
