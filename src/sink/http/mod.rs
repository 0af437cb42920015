//! HTTP sinks: CrateDB, Elasticsearch/OpenSearch, ClickHouse and plain NDJSON endpoints, each
//! worker with its own ureq [`Agent`] (one keep-alive connection), timeouts, optional gzip bodies
//! and Basic authentication. A [`Protocol`] turns rows into a request body and judges the answer;
//! the sink around it owns the retry bookkeeping that every protocol shares.
//!
//! Per-item results (CrateDB `rowcount: -2`, `_bulk` item errors) are split: refused rows go to
//! the reject file, rows refused for now (item 429) are resent alone on the next attempt, and the
//! rows already acknowledged are never resent. Whole-request failures are classified as transient
//! (408, 429, 500, 502, 503, 504, timeouts, resets) or permanent (with the cause and the fix).
//!
//! Guarantee: a request that fails after it was sent (a timeout) is resent, so HTTP targets are
//! at-least-once; Elasticsearch and OpenSearch documents carry `_id` = the row's key, which makes
//! a resend overwrite instead of duplicate (exactly-once for them).

mod clickhouse;
mod cratedb;
mod elastic;
mod ndjson;

use std::io::Write as _;

use base64::Engine as _;
use ureq::Agent;

use super::hosts::{is_host_failure, prepare_each, Hosts};
use crate::engine::{Sink, SinkFactory, Written};
use crate::failure::Failure;
use crate::http_client::{
    agent_config, answer_excerpt, is_retryable_status, tls_config, transport_failure, Answer,
    HttpOptions, ResolvedHost,
};
use crate::reject::{Reject, RejectLog};
use crate::rows::{Batch, Columns, Schema};
use crate::sql::TableName;
use crate::target::{HttpProtocol, HttpTarget};

/// The largest answer read: `_bulk` answers for big batches run to many megabytes.
const MAX_RESPONSE_BYTES: u64 = 256 << 20;

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
    fn items(target: &str, items: Vec<Item>, rows: usize) -> Judgement {
        if items.len() == rows {
            return Judgement::Items(items);
        }
        Judgement::Failed(Failure::Permanent {
            kind: "protocol",
            message: format!(
                "{target} answered {} item results for {rows} rows",
                items.len()
            ),
        })
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

/// One worker's (or the setup's) connection to the target.
pub(crate) struct HttpClient {
    agent: Agent,
    base_url: String,
    /// The target URL's query, passed on with every write request.
    query: Option<String>,
    authorization: Option<String>,
    gzip: bool,
    target: String,
}

impl HttpClient {
    /// A client for the first host of `target` ([`HttpTarget::single_host`] picks another).
    pub(crate) fn new(target: &HttpTarget, options: &HttpOptions) -> Result<HttpClient, Failure> {
        let tls = tls_config(options.ca_file.as_deref(), options.insecure).map_err(|err| {
            Failure::Permanent {
                kind: "tls",
                message: err.to_string(),
            }
        })?;
        let uri = target
            .base_url(0)
            .parse()
            .map_err(|err| Failure::Permanent {
                kind: "request",
                message: format!("{target} is not a URL: {err}"),
            })?;
        let host = ResolvedHost::resolve(&uri).map_err(|reason| Failure::Transient {
            kind: "dns",
            message: format!("cannot reach {target}: {reason}"),
        })?;
        let config = agent_config(options.connect_timeout, options.timeout)
            // A redirected POST would be followed as a GET without its body.
            .max_redirects(0)
            .tls_config(tls)
            .build();
        let authorization = target.user.as_ref().map(|user| {
            let credentials = format!("{user}:{}", target.password().unwrap_or(""));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        });
        Ok(HttpClient {
            agent: host.agent(config),
            base_url: target.base_url(0),
            query: target.query.clone(),
            authorization,
            gzip: options.gzip,
            target: target.to_string(),
        })
    }

    /// Sends `body` with `method` to the base URL followed by `path`.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Answer, Failure> {
        let url = format!("{}{path}", self.base_url);
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", content_type);
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        let payload = if self.gzip && !body.is_empty() {
            request = request.header("Content-Encoding", "gzip");
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            encoder
                .write_all(body)
                .and_then(|()| encoder.finish())
                .map_err(|err| self.failure(&ureq::Error::Io(err)))?
        } else {
            body.to_vec()
        };
        let request = request.body(payload).map_err(|err| Failure::Permanent {
            kind: "request",
            message: format!("cannot build a request to {}: {err}", self.target),
        })?;
        let response = self.agent.run(request).map_err(|err| self.failure(&err))?;
        Answer::read(response, MAX_RESPONSE_BYTES).map_err(|err| self.failure(&err))
    }

    fn failure(&self, err: &ureq::Error) -> Failure {
        transport_failure(&self.target, err)
    }
}

/// The whole-request failure an HTTP status means, with the start of the answer as its cause.
/// Retried by [`is_retryable_status`].
pub(crate) fn status_failure(target: &str, status: u16, body: &[u8]) -> Failure {
    let text = answer_excerpt(body);
    match status {
        _ if is_retryable_status(status) => Failure::Transient {
            kind: match status {
                429 => "throttled",
                500 => "server_error",
                _ => "unavailable",
            },
            message: format!("{target} answered HTTP {status}: {text}"),
        },
        300..=399 => Failure::Permanent {
            kind: "redirect",
            message: format!(
                "{target} redirects elsewhere (HTTP {status}); give the final URL as the target"
            ),
        },
        413 => Failure::Permanent {
            kind: "too_large",
            message: format!("{target} refused a request as too large (HTTP 413); lower --batch"),
        },
        401 | 403 => Failure::Permanent {
            kind: "authentication",
            message: format!(
                "{target} refused the credentials (HTTP {status}): {text}; check the user and \
                 the password (in the URL, --password-file or LOADER_PASSWORD)"
            ),
        },
        _ => Failure::Permanent {
            kind: "server",
            message: format!("{target} answered HTTP {status}: {text}"),
        },
    }
}

/// A 200 answer's JSON body, or the judgement that the target answered something unreadable.
pub(crate) fn parse_answer<T: serde::de::DeserializeOwned>(
    target: &str,
    body: &[u8],
) -> Result<T, Judgement> {
    serde_json::from_slice(body).map_err(|err| {
        Judgement::Failed(Failure::Permanent {
            kind: "protocol",
            message: format!("{target} answered 200 with an unreadable body: {err}"),
        })
    })
}

/// Shared by the workers: the target, its protocol, how to talk to it.
pub(crate) struct HttpSinkFactory {
    target: HttpTarget,
    hosts: Hosts,
    options: HttpOptions,
    protocol: Box<dyn Protocol>,
}

/// A prepared HTTP target.
pub(crate) struct PreparedHttp {
    pub sinks: HttpSinkFactory,
    /// The typed columns to load.
    pub schema: Schema,
    /// Hosts that could not be reached, left out of the run, with their errors.
    pub left_out: Vec<(String, Failure)>,
}

impl HttpSinkFactory {
    /// Prepares the target on each of its hosts (checks or creates the table or index; an
    /// unreachable host is left out while another is prepared) and returns the factory.
    pub(crate) fn prepare(
        target: &HttpTarget,
        options: &HttpOptions,
        table: &TableName,
        columns: &Columns,
        create: bool,
    ) -> Result<PreparedHttp, Failure> {
        let ((protocol, schema), left_out) = prepare_each(target.hosts().len(), |host| {
            let single = target.single_host(host);
            let client = HttpClient::new(&single, options)?;
            HttpSinkFactory::prepare_host(&client, &single, table, columns, create)
        })?;
        let left_out_hosts: Vec<usize> = left_out.iter().map(|(host, _)| *host).collect();
        let left_out = left_out
            .into_iter()
            .map(|(host, err)| (target.hosts()[host].clone(), err))
            .collect();
        let target = target.without_hosts(&left_out_hosts);
        Ok(PreparedHttp {
            sinks: HttpSinkFactory {
                hosts: Hosts::new(target.hosts().to_vec()),
                target,
                options: options.clone(),
                protocol,
            },
            schema,
            left_out,
        })
    }

    /// Checks or creates the table or index through `client`, and picks the protocol.
    fn prepare_host(
        client: &HttpClient,
        target: &HttpTarget,
        table: &TableName,
        columns: &Columns,
        create: bool,
    ) -> Result<(Box<dyn Protocol>, Schema), Failure> {
        let (protocol, schema): (Box<dyn Protocol>, Schema) = match target.protocol {
            HttpProtocol::ClickHouse => {
                let (protocol, schema) =
                    clickhouse::ClickHouse::prepare(client, target, table, columns, create)?;
                (Box::new(protocol), schema)
            }
            HttpProtocol::Crate => {
                let schema = named_schema(columns, target)?;
                let protocol = cratedb::CrateDb::prepare(client, table, &schema, create)?;
                (Box::new(protocol), schema)
            }
            HttpProtocol::Elasticsearch | HttpProtocol::OpenSearch => {
                let schema = named_schema(columns, target)?;
                let protocol = elastic::Elastic::prepare(client, table, &schema, create)?;
                (Box::new(protocol), schema)
            }
            HttpProtocol::Ndjson => {
                if create {
                    return Err(Failure::Permanent {
                        kind: "schema",
                        message: format!("--create does not apply to {target}"),
                    });
                }
                let schema = named_schema(columns, target)?;
                (Box::new(ndjson::Ndjson::new(client)), schema)
            }
        };
        Ok((protocol, schema))
    }

    /// A client for host `host`.
    fn client(&self, host: usize) -> Result<HttpClient, Failure> {
        HttpClient::new(&self.target.single_host(host), &self.options)
    }
}

/// The columns of a mode that names them (gen's schema, or copy's `--columns`/header, as text).
fn named_schema(columns: &Columns, target: &HttpTarget) -> Result<Schema, Failure> {
    match columns {
        Columns::Fixed(schema) => Ok(schema.clone()),
        Columns::Named(names) => Ok(Schema::text(names)),
        Columns::Table => Err(Failure::Permanent {
            kind: "schema",
            message: format!(
                "loading into {target} needs the column names: give --columns or --header"
            ),
        }),
    }
}

impl SinkFactory for HttpSinkFactory {
    fn open(&self, worker: usize) -> Result<Box<dyn Sink + '_>, Failure> {
        let (host, client) = self.hosts.connect(worker, |host| self.client(host))?;
        Ok(Box::new(HttpSink {
            factory: self,
            worker,
            host,
            client,
            buffer: Vec::new(),
            state: BatchState::default(),
        }))
    }

    fn hosts(&self) -> &[String] {
        self.hosts.several()
    }
}

/// Where the batch in hand stands, kept across its retries.
#[derive(Debug, Default)]
struct BatchState {
    seq: Option<u64>,
    /// Rows still to be stored, as positions in the batch.
    pending: Vec<usize>,
    stored: u64,
    /// Row, kind of refusal, the target's message.
    rejected: Vec<(usize, &'static str, String)>,
    /// How many of `rejected` reached the reject file.
    logged: usize,
    bytes: u64,
}

struct HttpSink<'a> {
    factory: &'a HttpSinkFactory,
    worker: usize,
    /// The host `client` talks to.
    host: usize,
    client: HttpClient,
    buffer: Vec<u8>,
    state: BatchState,
}

impl HttpSink<'_> {
    fn log_rejects(&mut self, batch: &dyn Batch, rejects: &RejectLog) -> Result<(), Failure> {
        let state = &mut self.state;
        let new: Vec<Reject> = state.rejected[state.logged..]
            .iter()
            .map(|(row, kind, error)| Reject {
                origin: batch.origin(*row),
                kind,
                error: error.clone(),
            })
            .collect();
        state.logged = state.rejected.len();
        rejects.record(&new)
    }

    /// Sends the rows of the batch still pending until each is stored or rejected. Rows stored
    /// on one host before a move to another are counted with the host that completes the batch.
    fn send_batch(&mut self, batch: &dyn Batch, rejects: &RejectLog) -> Result<Written, Failure> {
        let protocol = self.factory.protocol.as_ref();
        if self.state.seq != Some(batch.seq()) {
            self.state = BatchState {
                seq: Some(batch.seq()),
                pending: (0..batch.len()).collect(),
                ..BatchState::default()
            };
        }
        while !self.state.pending.is_empty() {
            self.buffer.clear();
            protocol.body(batch, &self.state.pending, &mut self.buffer);
            let answer = self.client.send(
                "POST",
                protocol.endpoint(),
                protocol.content_type(),
                &self.buffer,
            )?;
            self.state.bytes += self.buffer.len() as u64;
            let state = &mut self.state;
            let judgement = protocol.judge(
                &self.client.target,
                answer.status,
                &answer.body,
                state.pending.len(),
            );
            match judgement {
                Judgement::Stored => {
                    state.stored += state.pending.len() as u64;
                    state.pending.clear();
                }
                Judgement::Items(items) => {
                    // `Judgement::items` made sure of one result per pending row.
                    debug_assert_eq!(items.len(), state.pending.len());
                    let mut retry = Vec::new();
                    for (&row, item) in state.pending.iter().zip(items) {
                        match item {
                            Item::Stored => state.stored += 1,
                            Item::Retry => retry.push(row),
                            Item::Rejected(message) => state.rejected.push((row, "item", message)),
                        }
                    }
                    state.pending = retry;
                    self.log_rejects(batch, rejects)?;
                    if !self.state.pending.is_empty() {
                        return Err(Failure::Transient {
                            kind: "item_throttled",
                            message: format!(
                                "{} refused {} rows of batch {} for now; resending only those",
                                self.client.target,
                                self.state.pending.len(),
                                batch.seq()
                            ),
                        });
                    }
                }
                Judgement::BadRow { position, message } => {
                    let row = state.pending.remove(position);
                    state.rejected.push((row, "data", message));
                    self.log_rejects(batch, rejects)?;
                }
                Judgement::Failed(err) => return Err(answer.honour_retry_after(err)),
            }
        }
        self.log_rejects(batch, rejects)?;
        Ok(Written {
            rows: self.state.stored,
            bytes: self.state.bytes,
            rejected: self.state.rejected.len() as u64,
            host: self.host,
            held: false,
        })
    }
}

impl Sink for HttpSink<'_> {
    /// Sends the batch's pending rows to the worker's host while it is up, else to the next one
    /// in its rotation; a host that fails to answer is marked down and the retry goes elsewhere.
    ///
    /// A worker going back to its own host after a backoff tries it with the batch in hand; if it
    /// is still down, the batch goes on at once on the host it came from.
    fn write(&mut self, batch: &dyn Batch, rejects: &RejectLog) -> Result<Written, Failure> {
        let factory = self.factory;
        let hosts = &factory.hosts;
        let wanted = hosts.first_choice(self.worker);
        let mut fallback = None;
        if wanted != self.host {
            let client = factory
                .client(wanted)
                .inspect_err(|_| hosts.failed(wanted))?;
            let previous = (self.host, std::mem::replace(&mut self.client, client));
            self.host = wanted;
            fallback = Some(previous).filter(|(host, _)| hosts.is_due(*host));
        }
        loop {
            match self.send_batch(batch, rejects) {
                Ok(written) => {
                    hosts.succeeded(self.host);
                    return Ok(written);
                }
                Err(err) if is_host_failure(&err) => {
                    hosts.failed(self.host);
                    match fallback.take() {
                        Some((host, client)) => (self.host, self.client) = (host, client),
                        None => return Err(err),
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn salvage(&mut self) -> Written {
        let state = std::mem::take(&mut self.state);
        Written {
            rows: state.stored,
            bytes: state.bytes,
            rejected: state.logged as u64,
            host: self.host,
            held: false,
        }
    }

    fn finish(self: Box<Self>) -> Result<(), Failure> {
        Ok(())
    }
}

/// Encodes the rows `rows` (sorted positions) of `batch` in `format`, run by run
/// ([`super::encode_runs`]).
pub(crate) fn encode_rows(
    batch: &dyn Batch,
    rows: &[usize],
    format: crate::rows::RowFormat,
    out: &mut Vec<u8>,
) {
    // JSON formats carry any value: encoding cannot fail.
    let _ = super::encode_runs(rows, format, out, |run, out| batch.encode(run, format, out));
}

/// `?query` of the target URL, or nothing.
pub(crate) fn query_suffix(client: &HttpClient) -> String {
    client
        .query
        .as_ref()
        .map_or(String::new(), |query| format!("?{query}"))
}

/// Percent-encodes a URL query value.
pub(crate) fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
