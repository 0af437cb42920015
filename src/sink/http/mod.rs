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
//! While a load runs, `clickhouse_time` and `elastic_time` watch the server on a connection of
//! their own: where its time went, and whether it throttled the load.
//!
//! Guarantee: a request that fails after it was sent (a timeout) is resent, so HTTP targets are
//! at-least-once; Elasticsearch and OpenSearch documents carry `_id` = the row's key, which makes
//! a resend overwrite instead of duplicate (exactly-once for them).

mod clickhouse;
pub(crate) mod clickhouse_time;
mod client;
mod cratedb;
mod elastic;
pub(crate) mod elastic_time;
mod ndjson;
mod protocol;

pub(crate) use clickhouse::{catalog as clickhouse_catalog, execute as clickhouse_execute};
pub(crate) use client::{query_suffix, query_value, status_failure, HttpClient};
pub(crate) use cratedb::catalog as cratedb_catalog;
pub(crate) use elastic::mapping as elastic_mapping;
#[cfg(feature = "fuzzing")]
pub(crate) use protocol::judge_answer;
pub(crate) use protocol::{encode_rows, parse_answer, parse_json, Item, Judgement, Protocol};

use super::hosts::{is_host_failure, prepare_each, Hosts};
use super::named_schema;
use crate::engine::{Sink, SinkFactory, Written};
use crate::failure::Failure;
use crate::http_client::{answer_excerpt, HttpOptions};
use crate::reject::{Reject, RejectLog};
use crate::rows::{Batch, Columns, Schema};
use crate::sql::TableName;
use crate::target::{HttpProtocol, HttpTarget};

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
                let schema = named_schema(target, columns)?;
                let protocol = cratedb::CrateDb::prepare(client, table, &schema, create)?;
                (Box::new(protocol), schema)
            }
            HttpProtocol::Elasticsearch | HttpProtocol::OpenSearch => {
                let schema = named_schema(target, columns)?;
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
                let schema = named_schema(target, columns)?;
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
    /// A request of this batch failed after it may have reached the target (the connection
    /// dropped, the answer timed out): its rows may be stored without our knowing.
    in_doubt: bool,
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
            let answer = self
                .client
                .send(
                    "POST",
                    protocol.endpoint(),
                    protocol.content_type(),
                    &self.buffer,
                )
                .inspect_err(|err| {
                    self.state.in_doubt |= !matches!(err, Failure::Permanent { .. })
                })?;
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
                            // Exactly once for keyed tables: the lost answer's rows are there.
                            Item::Duplicate(_) if state.in_doubt => state.stored += 1,
                            Item::Duplicate(message) => {
                                state.rejected.push((row, "duplicate_key", message))
                            }
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
            ..Written::default()
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
            ..Written::default()
        }
    }

    fn finish(self: Box<Self>) -> Result<(), Failure> {
        Ok(())
    }
}
