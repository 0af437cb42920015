//! The PostgreSQL sink: one connection per worker, each batch written in its own transaction
//! together with a ledger row, by binary COPY (encoded straight into a reused buffer, one write per
//! batch), text COPY, or one multi-row INSERT.
//!
//! This file holds the factory the workers share (the statements, the ledger's SQL, the hosts) and
//! the sink itself: its connection, the host it returns to, and how its failures are classified.
//! The rest is split by concern: `prepare.rs` readies the target for a load (the table on each
//! host, the ledgers read) and builds the factory, `transaction.rs` writes one transaction (ledger
//! rows, COPY or INSERT, COMMIT; the batches held for `--commit-every`), `isolate.rs` finds the bad
//! rows of a batch the server refused for its data, and `in_doubt.rs` settles a batch whose COMMIT
//! may have reached the server before the connection dropped, on this host or on another.
//!
//! Several hosts ([`Hosts`]): each worker prefers one and moves to the next when it fails.

mod in_doubt;
mod isolate;
mod prepare;
mod transaction;

use postgres::error::DbError;
use std::collections::HashMap;

use postgres::{CancelToken, Client, Statement};

use parking_lot::Mutex;

use super::hosts::{is_host_failure, Hosts};
use crate::engine::{Settlement, Sink, SinkFactory, Written};
use crate::failure::Failure;
use crate::pg;
use crate::pg::Method;
use crate::pg::PgTarget;
use crate::reject::RejectLog;
use crate::rows::{Batch, Schema};
use crate::sql::{quote_literal, TableName};
use in_doubt::MovedBatch;
use isolate::{is_row_level, Excluded};
use transaction::Transaction;

/// With `--commit-every`: a transaction commits once its held batches take this much memory, even
/// with fewer than N batches.
const HELD_BYTES_LIMIT: usize = 64 << 20;

/// Shared by the workers: where to connect, what to write, how.
pub(crate) struct PgSinkFactory {
    /// One target per host, each resolved.
    targets: Vec<PgTarget>,
    hosts: Hosts,
    /// Each host's name as an SQL literal, for its ledger rows.
    host_literals: Vec<String>,
    /// Batches committed on another host than the one they were in doubt on.
    moved: Mutex<Vec<MovedBatch>>,
    /// Each worker's latest connection, by host, and the token that cancels what it runs.
    cancel_tokens: Mutex<HashMap<usize, (usize, CancelToken)>>,
    table: TableName,
    /// The columns written, with the types binary COPY encodes them as.
    schema: Schema,
    method: Method,
    /// `COPY … FROM STDIN …` or `INSERT INTO … VALUES `.
    statement: String,
    /// `COPY … FROM STDIN` in text format: binary COPY's fallback for a batch holding a value the
    /// client does not parse.
    text_statement: String,
    /// `BEGIN` and the ledger insert up to its rows.
    ledger_insert: String,
    /// The start of every ledger row: the run id, source and target table as literals.
    ledger_row_start: String,
    /// Batches per transaction (`--commit-every`).
    commit_every: usize,
    /// The documents ledger insert up to its rows (ingest mode), sent with a batch's COMMIT.
    documents_insert: String,
    /// This run's id and the target table, as SQL literals, for the documents ledger's rows.
    run_and_table: (String, String),
    /// This run's id, for messages.
    run_id: String,
    /// Looks up which host committed one batch (`$1`) of this run, and its rows.
    ledger_host: String,
    /// The ledger table, quoted.
    ledger: String,
    /// The SQL condition selecting this run's ledger rows for this source and table.
    ledger_key: String,
}

impl PgSinkFactory {
    /// `targets` (one per host, [`PgTarget::split_hosts`]) must already be resolved
    /// ([`pg::resolve`]) and the table prepared on each ([`pg::prepare`]).
    pub(crate) fn new(
        targets: Vec<PgTarget>,
        table: TableName,
        schema: &Schema,
        method: Method,
        run_id: String,
        source: String,
        commit_every: usize,
    ) -> PgSinkFactory {
        let columns = schema.quoted_column_list();
        let quoted_table = table.quoted();
        let text_statement = format!("COPY {quoted_table} ({columns}) FROM STDIN");
        let statement = match method {
            Method::CopyBinary => {
                format!("COPY {quoted_table} ({columns}) FROM STDIN (FORMAT binary)")
            }
            Method::CopyText => text_statement.clone(),
            Method::Insert => format!("INSERT INTO {quoted_table} ({columns}) VALUES "),
        };
        let ledger = pg::ledger_table(&table).quoted();
        let (run_literal, source_literal, table_literal) = (
            quote_literal(&run_id),
            quote_literal(&source),
            quote_literal(&table.to_string()),
        );
        let ledger_key = format!(
            "run_id = {run_literal} AND source = {source_literal} AND target_table = {table_literal}"
        );
        let names: Vec<String> = targets.iter().map(|target| target.host_name(0)).collect();
        PgSinkFactory {
            ledger_insert: format!(
                "BEGIN; INSERT INTO {ledger} (run_id, source, target_table, host, batch_seq, \
                 worker, rows, rejected, first_row) VALUES "
            ),
            ledger_row_start: format!("({run_literal}, {source_literal}, {table_literal}"),
            commit_every,
            ledger_host: format!(
                "SELECT host, rows FROM {ledger} WHERE {ledger_key} AND batch_seq = $1"
            ),
            documents_insert: format!(
                "INSERT INTO {} (target_table, doc_id, source, chunks, run_id) VALUES ",
                pg::documents_table(&table).quoted()
            ),
            run_and_table: (run_literal, table_literal),
            run_id: run_id.clone(),
            ledger_key,
            ledger,
            host_literals: names.iter().map(|name| quote_literal(name)).collect(),
            hosts: Hosts::new(names),
            moved: Mutex::default(),
            cancel_tokens: Mutex::default(),
            targets,
            table,
            schema: schema.clone(),
            method,
            statement,
            text_statement,
        }
    }

    /// Connects worker `worker` to host `host`.
    fn connect_host(&self, worker: usize, host: usize) -> Result<Connection, Failure> {
        let target = &self.targets[host];
        let mut client = pg::connect(target)?;
        self.cancel_tokens
            .lock()
            .insert(worker, (host, client.cancel_token()));
        let mut prepare = |sql: &str| {
            client
                .prepare(sql)
                .map_err(|err| pg::classify(&err, target, Some(&self.table)))
        };
        let (copy, text_copy) = match self.method {
            Method::CopyBinary => (
                Some(prepare(&self.statement)?),
                Some(prepare(&self.text_statement)?),
            ),
            Method::CopyText => (Some(prepare(&self.statement)?), None),
            Method::Insert => (None, None),
        };
        Ok(Connection {
            host,
            client,
            copy,
            text_copy,
        })
    }
}

impl SinkFactory for PgSinkFactory {
    fn open(&self, worker: usize) -> Result<Box<dyn Sink + '_>, Failure> {
        let (_, connection) = self
            .hosts
            .connect(worker, |host| self.connect_host(worker, host))?;
        Ok(Box::new(PgSink {
            factory: self,
            worker,
            connection: Some(connection),
            buffer: Vec::new(),
            payload_bytes: 0,
            stored: 0,
            ledger_sql: String::new(),
            in_doubt: Vec::new(),
            excluded: Excluded::default(),
            held: Vec::new(),
            held_bytes: 0,
            text_copy_for: None,
        }))
    }

    fn hosts(&self) -> &[String] {
        self.hosts.several()
    }

    /// Settles the batches moved between hosts while in doubt (`in_doubt.rs`).
    fn settle(&self) -> Settlement {
        self.settle_moved()
    }

    /// Cancels what every worker's connection runs. A COPY waiting for a lock fails and rolls
    /// back; a COMMIT waiting for a synchronous standby returns, committed locally (the server
    /// warns that it may not be replicated); an idle connection ignores the request. Each cancel
    /// opens a connection of its own, on a thread of its own, so that an unreachable server holds
    /// up nothing.
    fn abandon(&self) {
        for (host, token) in self.cancel_tokens.lock().values() {
            let (tls, token) = (self.targets[*host].tls().clone(), token.clone());
            let _ = std::thread::Builder::new()
                .name("loader-cancel".into())
                .spawn(move || tls.cancel(&token));
        }
    }
}

/// A live connection to one host and its prepared COPY statements.
struct Connection {
    host: usize,
    client: Client,
    copy: Option<Statement>,
    text_copy: Option<Statement>,
}

struct PgSink<'a> {
    factory: &'a PgSinkFactory,
    worker: usize,
    /// `None` after a failure: the next write reconnects.
    connection: Option<Connection>,
    /// The encoded rows, reused.
    buffer: Vec<u8>,
    /// Bytes of rows and framing sent for the batch in hand.
    payload_bytes: u64,
    /// Rows the server stored in the latest attempt at the transaction in hand, by its own counts
    /// (`COPY n`, `INSERT 0 n`): what a trigger or rule dropped is not in it. Kept after the
    /// attempt, for the acknowledgement of a COMMIT found in the ledger.
    stored: u64,
    /// `BEGIN` and the batch's ledger row, reused.
    ledger_sql: String,
    /// The hosts on which the batch in hand may have committed: an attempt failed there after
    /// its COMMIT was sent.
    in_doubt: Vec<usize>,
    /// The rows of the transaction in hand found bad so far: kept across its retries.
    excluded: Excluded,
    /// With `--commit-every`: copies of the batches written since the last commit.
    held: Vec<Box<dyn Batch>>,
    /// The memory they take ([`Batch::size_bytes`]).
    held_bytes: usize,
    /// The transaction whose binary COPY met a value only text COPY carries after rows were
    /// sent: its next attempt is text from the start.
    text_copy_for: Option<u64>,
}

/// A failed statement: a row-level refusal (the batch's data) or anything else.
enum StatementFailure {
    /// SQLSTATE class 22 or 23: some row of the set sent is bad.
    Rows(Box<DbError>),
    Other(SendError),
}

impl From<postgres::Error> for StatementFailure {
    fn from(err: postgres::Error) -> StatementFailure {
        match err.as_db_error() {
            Some(db) if is_row_level(db) => StatementFailure::Rows(Box::new(db.clone())),
            _ => StatementFailure::Other(SendError::Driver(err)),
        }
    }
}

impl From<SendError> for StatementFailure {
    fn from(err: SendError) -> StatementFailure {
        StatementFailure::Other(err)
    }
}

/// A failed send, before classification.
enum SendError {
    Driver(postgres::Error),
    Io(std::io::Error),
    NotUtf8,
    /// The load must stop for a reason of its own (the reject file, --max-rejects).
    Refused(Failure),
}

impl PgSink<'_> {
    fn classify(&self, host: usize, err: &postgres::Error) -> Failure {
        pg::classify(err, &self.factory.targets[host], Some(&self.factory.table))
    }

    fn send_error(&self, host: usize, err: SendError) -> Failure {
        match err {
            SendError::Driver(err) => self.classify(host, &err),
            SendError::Io(err) => Failure::Transient {
                kind: "connection",
                message: format!("connection to {} failed: {err}", self.factory.targets[host]),
            },
            SendError::NotUtf8 => Failure::Permanent {
                kind: "data",
                message: "a batch for --method insert is not valid UTF-8; use a COPY method".into(),
            },
            SendError::Refused(err) => err,
        }
    }

    /// Marks `host` down when `err` says it is unreachable; returns `err`.
    fn failed(&self, host: usize, err: Failure) -> Failure {
        if is_host_failure(&err) {
            self.factory.hosts.failed(host);
        }
        err
    }

    /// The connection to use for the next batch: this one, unless it is to another host than
    /// the worker's own and that host's backoff has passed, and it takes a new connection.
    fn back_home(&self, connection: Connection) -> Connection {
        let hosts = &self.factory.hosts;
        let home = hosts.preferred(self.worker);
        if connection.host == home || !hosts.is_due(home) {
            return connection;
        }
        match self.factory.connect_host(self.worker, home) {
            Ok(home_connection) => {
                hosts.succeeded(home);
                home_connection
            }
            Err(_) => {
                hosts.failed(home);
                connection
            }
        }
    }
}

impl Sink for PgSink<'_> {
    fn write(&mut self, batch: &dyn Batch, rejects: &RejectLog) -> Result<Written, Failure> {
        let commit_every = self.factory.commit_every;
        if commit_every <= 1 {
            return self.commit(&Transaction::new(&[batch]), rejects);
        }
        // The batch held last coming again is the retry of the commit it completed.
        if self
            .held
            .last()
            .is_none_or(|last| last.seq() != batch.seq())
        {
            let held = batch.to_owned_batch();
            self.held_bytes += held.size_bytes();
            self.held.push(held);
        }
        if self.held.len() < commit_every && self.held_bytes < HELD_BYTES_LIMIT {
            return Ok(Written {
                held: true,
                ..Written::default()
            });
        }
        self.commit_held(rejects)
    }

    fn flush(&mut self, rejects: &RejectLog) -> Result<Option<Written>, Failure> {
        if self.held.is_empty() {
            return Ok(None);
        }
        self.commit_held(rejects).map(Some)
    }

    fn finish(self: Box<Self>) -> Result<(), Failure> {
        if let Some(connection) = self.connection {
            connection
                .client
                .close()
                .map_err(|err| pg::classify(&err, &self.factory.targets[connection.host], None))?;
        }
        Ok(())
    }
}
