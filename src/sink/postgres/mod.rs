//! The PostgreSQL sink: one connection per worker, each batch written in its own transaction
//! together with a ledger row, by binary COPY (encoded straight into a reused buffer, one write per
//! batch), text COPY, or one multi-row INSERT.
//!
//! With `--commit-every N`, a transaction carries N batches instead of one: the sink holds an
//! owned copy of each batch until the N-th (or the end of the load) arrives, then sends them all
//! in one COPY (or INSERT) with one ledger row per batch, and acknowledges them together. Until
//! then nothing is counted; held copies stay until the commit succeeds, so a retry resends them.
//! A transaction closes early once its batches hold 64 MiB, so that large rows do not make a
//! worker hold gigabytes.
//!
//! Bad rows (DESIGN §6): when the server refuses a batch for its data (SQLSTATE class 22 or 23),
//! the sink rolls back and isolates the bad rows inside one transaction: each candidate set of
//! rows goes in under a savepoint; a set that fails is split at the row the error's CONTEXT names
//! (or in halves), down to single rows, which are rejected with the server's message. The good
//! rows stay in the transaction, which then commits with its ledger row.
//!
//! Exactness (DESIGN §5): when a write fails, the sink drops the connection (the server rolls back
//! what did not commit); when it failed after COMMIT was sent, it remembers the batch as in doubt
//! on that host. The retry reconnects and looks the batch up in the ledger before sending it again,
//! so a batch whose COMMIT reached the server but whose acknowledgement was lost is counted once
//! and inserted once. The ledger's primary key is load-bearing: if the old transaction was still
//! open during the lookup and commits later, the resend's ledger insert violates the key, its
//! transaction rolls back, and the batch is counted as the one commit it had.
//!
//! Several hosts ([`Hosts`]): each worker prefers one and moves to the next when it fails. A batch
//! in doubt on a failed host is looked up on the host the worker reached, which settles it when
//! the hosts are one database; when they are separate clusters it is sent there, recorded as
//! moved, and settled after the load by [`SinkFactory::settle`] on its first host's ledger, whose
//! rows name the host that wrote them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;

use postgres::error::DbError;
use postgres::{Client, Statement};

use parking_lot::Mutex;

use super::hosts::{is_host_failure, Hosts};
use crate::encode::binary;
use crate::engine::{Settlement, Sink, SinkFactory, UnverifiedBatch, Written};
use crate::failure::Failure;
use crate::pg;
use crate::pg::Method;
use crate::pg::PgTarget;
use crate::reject::RowOrigin;
use crate::reject::{Reject, RejectLog};
use crate::rows::{Batch, RowFormat, Schema, Unencodable};
use crate::sql::{quote_literal, TableName};

/// With `--commit-every`: a transaction commits once its held batches take this much memory, even
/// with fewer than N batches.
const HELD_BYTES_LIMIT: usize = 64 << 20;

/// COPY data goes to the driver in pieces of this size, each one CopyData message, so that no
/// message nears the server's 1 GB limit and the driver's own copy of the data stays small.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Shared by the workers: where to connect, what to write, how.
#[derive(Debug)]
pub(crate) struct PgSinkFactory {
    /// One target per host, each resolved.
    targets: Vec<PgTarget>,
    hosts: Hosts,
    /// Each host's name as an SQL literal, for its ledger rows.
    host_literals: Vec<String>,
    /// Batches committed on another host than the one they were in doubt on.
    moved: Mutex<Vec<MovedBatch>>,
    table: TableName,
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
            ledger_key,
            ledger,
            host_literals: names.iter().map(|name| quote_literal(name)).collect(),
            hosts: Hosts::new(names),
            moved: Mutex::default(),
            targets,
            table,
            method,
            statement,
            text_statement,
        }
    }

    /// The ledger row of batch `seq` of this run, if it committed.
    fn ledger_entry(
        &self,
        client: &mut Client,
        seq: u64,
    ) -> Result<Option<LedgerEntry>, postgres::Error> {
        let found = client.query_opt(&self.ledger_host, &[&(seq as i64)])?;
        Ok(found.map(|row| LedgerEntry {
            host: row.get(0),
            rows: row.get::<_, i64>(1) as u64,
        }))
    }

    /// Connects to host `host`.
    fn connect_host(&self, host: usize) -> Result<Connection, Failure> {
        let target = &self.targets[host];
        let mut client = pg::connect(target)?;
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

    /// The ledger row of `moved`'s batch on its first host: the host it names as having
    /// committed it (`None` in ledgers older than the column) and its rows; `None` when there is
    /// no row.
    fn first_host_entry(&self, moved: &MovedBatch) -> Result<Option<LedgerEntry>, Failure> {
        let target = &self.targets[moved.in_doubt_on];
        let mut client = pg::connect(target)?;
        self.ledger_entry(&mut client, moved.seq)
            .map_err(|err| pg::classify(&err, target, Some(&self.table)))
    }
}

impl SinkFactory for PgSinkFactory {
    fn open(&self, worker: usize) -> Result<Box<dyn Sink + '_>, Failure> {
        let (_, connection) = self.hosts.connect(worker, |host| self.connect_host(host))?;
        Ok(Box::new(PgSink {
            factory: self,
            worker,
            connection: Some(connection),
            buffer: Vec::new(),
            payload_bytes: 0,
            ledger_sql: String::new(),
            in_doubt: Vec::new(),
            excluded: Excluded::default(),
            held: Vec::new(),
            held_bytes: 0,
        }))
    }

    fn hosts(&self) -> &[String] {
        self.hosts.several()
    }

    /// Asks each moved batch's first host whether it committed the batch too (its ledger row then
    /// names that host; a row naming the other host means the hosts are one database).
    fn settle(&self) -> Settlement {
        let moved = std::mem::take(&mut *self.moved.lock());
        let mut settlement = Settlement {
            moved_batches: moved.len() as u64,
            ..Settlement::default()
        };
        for batch in moved {
            let first = self.hosts.name(batch.in_doubt_on);
            match self.first_host_entry(&batch) {
                Ok(Some(entry)) if entry.host.as_deref() == Some(first) => {
                    settlement.duplicated_rows += entry.rows;
                    settlement
                        .duplicated_by_host
                        .push((batch.in_doubt_on, entry.rows));
                }
                Ok(_) => {}
                Err(_) => settlement.unverified.push(UnverifiedBatch {
                    host: first.to_string(),
                    batch: batch.seq,
                    rows: batch.rows,
                }),
            }
        }
        settlement
    }
}

/// A live connection to one host and its prepared COPY statements.
struct Connection {
    host: usize,
    client: Client,
    copy: Option<Statement>,
    text_copy: Option<Statement>,
}

/// A batch's row in the ledger.
#[derive(Debug)]
struct LedgerEntry {
    /// The host that committed it (`None` in ledgers older than the column).
    host: Option<String>,
    /// Rows it loaded.
    rows: u64,
}

/// A batch committed on one host after its COMMIT was in doubt on another.
#[derive(Debug)]
struct MovedBatch {
    seq: u64,
    rows: u64,
    in_doubt_on: usize,
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
}

/// The batches one transaction commits, seen as one run of rows: the batch in hand, or with
/// `--commit-every` the batches held until now. Its sequence number is its first batch's (the
/// in-doubt lookup's key, as all of them commit together); the ledger gets a row per batch.
struct Transaction<'b> {
    batches: &'b [&'b dyn Batch],
    /// Where each batch's rows end, in the transaction's row numbers.
    ends: Vec<usize>,
}

impl<'b> Transaction<'b> {
    fn new(batches: &'b [&'b dyn Batch]) -> Transaction<'b> {
        let ends = batches
            .iter()
            .scan(0, |end, batch| {
                *end += batch.len();
                Some(*end)
            })
            .collect();
        Transaction { batches, ends }
    }

    fn seq(&self) -> u64 {
        self.batches[0].seq()
    }

    fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Each batch with its rows' range in the transaction.
    fn parts(&self) -> impl Iterator<Item = (&'b dyn Batch, Range<usize>)> + '_ {
        self.batches
            .iter()
            .zip(&self.ends)
            .map(|(batch, &end)| (*batch, end - batch.len()..end))
    }

    /// Appends the transaction's rows `rows` to `out`, as [`Batch::encode`] does.
    fn encode(
        &self,
        rows: Range<usize>,
        format: RowFormat,
        out: &mut Vec<u8>,
    ) -> Result<(), Unencodable> {
        let mut first = true;
        for (batch, range) in self.parts() {
            let (start, end) = (rows.start.max(range.start), rows.end.min(range.end));
            if start >= end {
                continue;
            }
            if !first {
                out.extend_from_slice(format.run_separator());
            }
            first = false;
            batch.encode(start - range.start..end - range.start, format, out)?;
        }
        Ok(())
    }

    /// Where transaction row `row` came from.
    fn origin(&self, row: usize) -> RowOrigin {
        let index = self.ends.partition_point(|&end| end <= row);
        let batch = self.batches[index];
        batch.origin(row + batch.len() - self.ends[index])
    }

    /// The documents whose chunks the transaction loads. Ingest mode, the only one with
    /// documents, commits each batch on its own (it refuses `--commit-every`).
    fn documents(&self) -> &'b [crate::rows::DocumentRecord] {
        match self.batches {
            [batch] => batch.documents(),
            _ => &[],
        }
    }
}

/// The rows of one batch that the server refused, sorted, with their messages.
#[derive(Debug, Default)]
struct Excluded {
    seq: Option<u64>,
    /// Row, kind of refusal, the server's message.
    rows: Vec<(usize, &'static str, String)>,
    /// Whether they reached the reject file (done once, before the first COMMIT attempt).
    logged: bool,
}

impl Excluded {
    fn contains(&self, row: usize) -> bool {
        self.rows.binary_search_by_key(&row, |(r, ..)| *r).is_ok()
    }

    /// How many of the rows `rows` are bad.
    fn count_in(&self, rows: Range<usize>) -> usize {
        let below = |bound: usize| self.rows.partition_point(|(r, ..)| *r < bound);
        below(rows.end) - below(rows.start)
    }

    fn add(&mut self, row: usize, db: &DbError) {
        let kind = if db.code().code().starts_with("23") {
            "constraint"
        } else {
            "data"
        };
        let at = self.rows.partition_point(|(r, ..)| *r < row);
        self.rows.insert(at, (row, kind, reject_message(db)));
    }
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

/// Data exceptions and integrity violations are a row's fault, not the connection's (the
/// ledgers' keys are the sink's own business).
fn is_row_level(db: &DbError) -> bool {
    let class = &db.code().code()[..2];
    let ledger_key = matches!(db.constraint(), Some(pg::LEDGER_KEY | pg::DOCUMENTS_KEY));
    class == "22" || class == "23" && !ledger_key
}

/// The 1-based row of a COPY that the CONTEXT names (`COPY t, line 3, column x: …`).
fn failing_line(db: &DbError) -> Option<usize> {
    let context = db.where_()?;
    let rest = &context[context.find(", line ")? + 7..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The server's words for a rejected row: its message, the column the CONTEXT names, the detail.
fn reject_message(db: &DbError) -> String {
    let mut message = db.message().to_string();
    if let Some(column) = db
        .where_()
        .and_then(|context| context.split(", column ").nth(1))
        .and_then(|rest| rest.split(':').next())
    {
        message.push_str(&format!(" (column {column})"));
    }
    if let Some(detail) = db.detail() {
        message.push_str(&format!("; {detail}"));
    }
    message.push_str(&format!(" [SQLSTATE {}]", db.code().code()));
    message
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

    /// Sends the rows `rows` (sorted positions in the transaction) in one COPY or INSERT.
    fn send_rows(
        &mut self,
        connection: &mut Connection,
        transaction: &Transaction,
        rows: &[usize],
    ) -> Result<(), StatementFailure> {
        if rows.is_empty() {
            return Ok(());
        }
        let factory = self.factory;
        let buffer = &mut self.buffer;
        let encode_runs = |format: RowFormat, buffer: &mut Vec<u8>| {
            super::encode_runs(rows, format, buffer, |run, out| {
                transaction.encode(run, format, out)
            })
        };
        buffer.clear();
        let statement = match factory.method {
            Method::CopyBinary => {
                buffer.extend_from_slice(binary::HEADER);
                if encode_runs(RowFormat::CopyBinary, buffer).is_ok() {
                    buffer.extend_from_slice(binary::TRAILER);
                    connection.copy.as_ref()
                } else {
                    // A value the client does not parse: let the server's text input decide.
                    buffer.clear();
                    let _ = encode_runs(RowFormat::CopyText, buffer);
                    connection.text_copy.as_ref()
                }
            }
            Method::CopyText => {
                let _ = encode_runs(RowFormat::CopyText, buffer);
                connection.copy.as_ref()
            }
            Method::Insert => {
                buffer.extend_from_slice(factory.statement.as_bytes());
                let _ = encode_runs(RowFormat::SqlValues, buffer);
                None
            }
        };
        self.payload_bytes += buffer.len() as u64;
        let client = &mut connection.client;
        match statement {
            Some(copy) => {
                // CopyInWriter copies each piece into its own buffer and sends it on the next
                // write (the last one at `finish`).
                let mut writer = client.copy_in(copy)?;
                for piece in buffer.chunks(COPY_CHUNK_BYTES) {
                    writer.write_all(piece).map_err(SendError::Io)?;
                }
                writer.finish()?;
            }
            None => {
                let sql = std::str::from_utf8(buffer).map_err(|_| SendError::NotUtf8)?;
                client.batch_execute(sql)?;
            }
        }
        Ok(())
    }

    /// Loads every row of the transaction that is not bad: all of them in one statement first;
    /// on a row-level refusal, again row set by row set under savepoints, rejecting the rows that
    /// fail alone.
    fn load_rows(
        &mut self,
        connection: &mut Connection,
        transaction: &Transaction,
    ) -> Result<(), StatementFailure> {
        let candidates: Vec<usize> = (0..transaction.len())
            .filter(|&row| !self.excluded.contains(row))
            .collect();
        match self.send_rows(connection, transaction, &candidates) {
            Err(StatementFailure::Rows(_)) => {}
            done => return done,
        }
        // The refusal aborted the transaction: start it again, ledger row first.
        connection.client.batch_execute("ROLLBACK")?;
        connection.client.batch_execute(&self.ledger_sql)?;
        let mut pending = vec![candidates];
        while let Some(rows) = pending.pop() {
            connection.client.batch_execute("SAVEPOINT loader_rows")?;
            match self.send_rows(connection, transaction, &rows) {
                Ok(()) => connection
                    .client
                    .batch_execute("RELEASE SAVEPOINT loader_rows")?,
                Err(StatementFailure::Rows(db)) => {
                    connection.client.batch_execute(
                        "ROLLBACK TO SAVEPOINT loader_rows; RELEASE SAVEPOINT loader_rows",
                    )?;
                    if let [row] = rows[..] {
                        self.excluded.add(row, &db);
                        continue;
                    }
                    // Split at the row the server names, else in halves; the parts are tried in
                    // order (the stack pops the last pushed first).
                    let parts = match failing_line(&db) {
                        Some(line) if (1..=rows.len()).contains(&line) => {
                            vec![&rows[line..], &rows[line - 1..line], &rows[..line - 1]]
                        }
                        _ => {
                            let middle = rows.len() / 2;
                            vec![&rows[middle..], &rows[..middle]]
                        }
                    };
                    pending.extend(
                        parts
                            .into_iter()
                            .filter(|part| !part.is_empty())
                            .map(<[usize]>::to_vec),
                    );
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Writes the rejects found for this transaction to the reject file, once.
    fn log_rejects(
        &mut self,
        transaction: &Transaction,
        rejects: &RejectLog,
    ) -> Result<(), Failure> {
        if self.excluded.logged {
            return Ok(());
        }
        let found: Vec<Reject> = self
            .excluded
            .rows
            .iter()
            .map(|(row, kind, message)| Reject {
                origin: transaction.origin(*row),
                kind,
                error: message.clone(),
            })
            .collect();
        self.excluded.logged = true;
        rejects.record(&found)
    }

    /// The acknowledgement of the transaction in hand, committed on `host`. The hosts it was in
    /// doubt on before are recorded as moved, batch by batch, for [`SinkFactory::settle`].
    fn committed_on(&mut self, host: usize, transaction: &Transaction) -> Written {
        let rejected = self.excluded.rows.len() as u64;
        let written = Written {
            rows: transaction.len() as u64 - rejected,
            bytes: self.payload_bytes,
            rejected,
            host,
            held: false,
        };
        let in_doubt: Vec<usize> = self.in_doubt.drain(..).collect();
        for in_doubt_on in in_doubt.into_iter().filter(|&other| other != host) {
            for (batch, rows) in transaction.parts() {
                self.factory.moved.lock().push(MovedBatch {
                    seq: batch.seq(),
                    rows: (rows.len() - self.excluded.count_in(rows)) as u64,
                    in_doubt_on,
                });
            }
        }
        written
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
        match self.factory.connect_host(home) {
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

    /// The documents ledger insert of the documents the batch loads whole (ingest mode): each
    /// one's chunks are the next rows of the batch, and a document with a refused row is left
    /// out, so that a rerun loads it again. Empty when the batch lists no document.
    fn documents_insert(&self, transaction: &Transaction) -> String {
        let factory = self.factory;
        let (run, table) = &factory.run_and_table;
        let mut sql = String::new();
        let mut first_row = 0;
        for document in transaction.documents() {
            let rows = first_row..first_row + document.chunks as usize;
            first_row = rows.end;
            if rows.clone().any(|row| self.excluded.contains(row)) {
                continue;
            }
            let _ = write!(
                sql,
                "{}({table}, {}, {}, {}, {run})",
                if sql.is_empty() {
                    &factory.documents_insert
                } else {
                    ","
                },
                quote_literal(&document.id),
                quote_literal(&document.source),
                document.chunks,
            );
        }
        if !sql.is_empty() {
            sql.push_str("; ");
        }
        sql
    }

    /// A batch's ledger counts, its rows being `rows` of the transaction: rows loaded, and
    /// records rejected (the parser's rejects included).
    fn ledger_counts(&self, batch: &dyn Batch, rows: Range<usize>) -> (usize, usize) {
        let excluded = self.excluded.count_in(rows);
        (batch.len() - excluded, excluded + batch.invalid().len())
    }

    /// One attempt, in one transaction: the ledger rows first (so that a resend whose earlier
    /// attempt is still committing waits for it and then hits the ledger's key, before sending any
    /// data), the good rows, and COMMIT. The ledger row of each batch counts every record of it as
    /// loaded or rejected, which `--resume` checks.
    fn transfer(
        &mut self,
        connection: &mut Connection,
        transaction: &Transaction,
        rejects: &RejectLog,
    ) -> Result<(), StatementFailure> {
        let factory = self.factory;
        self.payload_bytes = 0;
        let known_rejects = self.excluded.rows.len();
        let mut ledger_sql = std::mem::take(&mut self.ledger_sql);
        ledger_sql.clear();
        ledger_sql.push_str(&factory.ledger_insert);
        for (i, (batch, rows)) in transaction.parts().enumerate() {
            let (loaded, rejected) = self.ledger_counts(batch, rows);
            let _ = write!(
                ledger_sql,
                "{}{}, {}, {}, {}, {loaded}, {rejected}, {})",
                if i > 0 { ", " } else { "" },
                factory.ledger_row_start,
                factory.host_literals[connection.host],
                batch.seq(),
                self.worker,
                batch.first_row(),
            );
        }
        self.ledger_sql = ledger_sql;
        connection.client.batch_execute(&self.ledger_sql)?;
        self.load_rows(connection, transaction)?;
        if let Err(err) = self.log_rejects(transaction, rejects) {
            return Err(StatementFailure::Other(SendError::Refused(err)));
        }
        let mut commit = self.documents_insert(transaction);
        if self.excluded.rows.len() != known_rejects {
            for (batch, rows) in transaction.parts() {
                let (loaded, rejected) = self.ledger_counts(batch, rows);
                let _ = write!(
                    commit,
                    "UPDATE {} SET rows = {loaded}, rejected = {rejected} WHERE {} AND \
                     batch_seq = {}; ",
                    factory.ledger,
                    factory.ledger_key,
                    batch.seq()
                );
            }
        }
        commit.push_str("COMMIT");
        // From here until the acknowledgement the batch may commit without the sink knowing.
        if !self.in_doubt.contains(&connection.host) {
            self.in_doubt.push(connection.host);
        }
        connection.client.batch_execute(&commit)?;
        Ok(())
    }
}

fn violates_ledger_key(err: &postgres::Error) -> bool {
    err.as_db_error().is_some_and(|db| {
        db.code() == &postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some(pg::LEDGER_KEY)
    })
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
    /// Commits the held batches as one transaction; they stay held if it fails, for the retry.
    fn commit_held(&mut self, rejects: &RejectLog) -> Result<Written, Failure> {
        let held = std::mem::take(&mut self.held);
        let batches: Vec<&dyn Batch> = held.iter().map(Box::as_ref).collect();
        let committed = self.commit(&Transaction::new(&batches), rejects);
        match committed {
            Ok(_) => self.held_bytes = 0,
            Err(_) => self.held = held,
        }
        committed
    }

    /// Writes and commits `transaction`, or acknowledges it from the ledger when an earlier
    /// attempt committed it.
    fn commit(
        &mut self,
        transaction: &Transaction,
        rejects: &RejectLog,
    ) -> Result<Written, Failure> {
        let factory = self.factory;
        if self.excluded.seq != Some(transaction.seq()) {
            self.excluded = Excluded {
                seq: Some(transaction.seq()),
                ..Excluded::default()
            };
            self.in_doubt.clear();
        }
        // The connection is put back only after a success: any failure drops it, which rolls
        // back whatever did not commit, and the next attempt reconnects.
        let mut connection = match self.connection.take() {
            Some(connection) => self.back_home(connection),
            None => {
                factory
                    .hosts
                    .connect(self.worker, |host| factory.connect_host(host))?
                    .1
            }
        };
        let host = connection.host;
        let in_doubt_here = self.in_doubt.contains(&host);
        if !self.in_doubt.is_empty() {
            // One database behind every host shows a commit made through any of them.
            let entry = factory
                .ledger_entry(&mut connection.client, transaction.seq())
                .map_err(|err| self.failed(host, self.classify(host, &err)))?;
            if let Some(entry) = entry {
                if entry.host.as_deref() != Some(factory.hosts.name(host)) {
                    // Committed through another host of the same database: nothing moved.
                    self.in_doubt.clear();
                }
                let written = self.committed_on(host, transaction);
                self.connection = Some(connection);
                return Ok(written);
            }
        }
        match self.transfer(&mut connection, transaction, rejects) {
            Ok(()) => {
                let written = self.committed_on(host, transaction);
                self.connection = Some(connection);
                Ok(written)
            }
            // An earlier attempt's transaction was still open when the lookup ran, and has
            // committed since: the ledger's key refuses this second commit. Count it once. When
            // that attempt went through another host, the hosts are one database: nothing moved.
            Err(StatementFailure::Other(SendError::Driver(err)))
                if !self.in_doubt.is_empty() && violates_ledger_key(&err) =>
            {
                if !in_doubt_here {
                    self.in_doubt.clear();
                }
                Ok(self.committed_on(host, transaction))
            }
            Err(StatementFailure::Other(err)) => Err(self.failed(host, self.send_error(host, err))),
            // Only reachable if the ledger insert itself breaks a constraint of the data's kind.
            Err(StatementFailure::Rows(db)) => Err(Failure::Permanent {
                kind: "server",
                message: reject_message(&db),
            }),
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
            self.held.push(batch.to_owned_batch());
            self.held_bytes += batch.size_bytes();
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
