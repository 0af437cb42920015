//! The PostgreSQL sink: one connection per worker, each batch written in its own transaction
//! together with a ledger row, by binary COPY (encoded straight into a reused buffer, one write per
//! batch), text COPY, or one multi-row INSERT.
//!
//! Exactness (DESIGN §5): when a write fails, the sink drops the connection and remembers the batch
//! as in doubt; the retry reconnects and looks the batch up in the ledger before sending it again,
//! so a batch whose COMMIT reached the server but whose acknowledgement was lost is counted once
//! and inserted once. The ledger's primary key is load-bearing: if the old transaction was still
//! open during the lookup and commits later, the resend's ledger insert violates the key, its
//! transaction rolls back, and the batch is counted as the one commit it had.

use std::fmt::Write as _;
use std::io::Write as _;

use postgres::{Client, Statement};

use super::{Sink, SinkError, SinkFactory, Written};
use crate::cli::Method;
use crate::config::{quote_literal, TableName};
use crate::encode::binary;
use crate::pg;
use crate::rows::{Batch, RowFormat, Schema};
use crate::target::PgTarget;

/// Shared by the workers: where to connect, what to write, how.
#[derive(Debug)]
pub struct PgSinkFactory {
    target: PgTarget,
    table: TableName,
    method: Method,
    /// `COPY … FROM STDIN …` or `INSERT INTO … VALUES `.
    statement: String,
    /// The ledger insert up to the batch's own values: the ledger's columns, then the run id,
    /// source and target table as literals.
    ledger_insert: String,
    ledger_lookup: String,
    run_id: String,
    source: String,
}

impl PgSinkFactory {
    /// `target` must already be resolved ([`pg::resolve`]) and the table prepared ([`pg::prepare`]).
    pub fn new(
        target: PgTarget,
        table: TableName,
        schema: &Schema,
        method: Method,
        run_id: String,
        source: String,
    ) -> PgSinkFactory {
        let columns = schema.quoted_column_list();
        let quoted_table = table.quoted();
        let statement = match method {
            Method::CopyBinary => {
                format!("COPY {quoted_table} ({columns}) FROM STDIN (FORMAT binary)")
            }
            Method::CopyText => format!("COPY {quoted_table} ({columns}) FROM STDIN"),
            Method::Insert => format!("INSERT INTO {quoted_table} ({columns}) VALUES "),
        };
        let ledger = pg::ledger_table(&table).quoted();
        PgSinkFactory {
            ledger_insert: format!(
                "INSERT INTO {ledger} (run_id, source, target_table, batch_seq, worker, rows, \
                 first_row) VALUES ({}, {}, {}",
                quote_literal(&run_id),
                quote_literal(&source),
                quote_literal(&table.to_string()),
            ),
            ledger_lookup: format!(
                "SELECT 1 FROM {ledger} WHERE run_id = $1 AND source = $2 AND batch_seq = $3"
            ),
            target,
            table,
            method,
            statement,
            run_id,
            source,
        }
    }

    /// Whether the ledger shows `batch` committed by this run.
    fn already_committed(
        &self,
        client: &mut Client,
        batch: &dyn Batch,
    ) -> Result<bool, postgres::Error> {
        let found = client.query_opt(
            &self.ledger_lookup,
            &[&self.run_id, &self.source, &(batch.seq() as i64)],
        )?;
        Ok(found.is_some())
    }

    fn connect(&self) -> Result<Connection, SinkError> {
        let mut client = pg::connect(&self.target)?;
        let copy = match self.method {
            Method::CopyBinary | Method::CopyText => Some(
                client
                    .prepare(&self.statement)
                    .map_err(|err| pg::classify(&err, &self.target, Some(&self.table)))?,
            ),
            Method::Insert => None,
        };
        Ok(Connection { client, copy })
    }
}

impl SinkFactory for PgSinkFactory {
    fn open(&self, worker: usize) -> Result<Box<dyn Sink + '_>, SinkError> {
        Ok(Box::new(PgSink {
            factory: self,
            worker,
            connection: Some(self.connect()?),
            buffer: Vec::new(),
            payload_bytes: 0,
            ledger_sql: String::new(),
            in_doubt: None,
        }))
    }
}

/// A live connection and its prepared COPY statement.
struct Connection {
    client: Client,
    copy: Option<Statement>,
}

struct PgSink<'a> {
    factory: &'a PgSinkFactory,
    worker: usize,
    /// `None` after a failure: the next write reconnects.
    connection: Option<Connection>,
    /// The encoded batch, reused.
    buffer: Vec<u8>,
    /// Bytes of rows and framing in `buffer`, without the transaction and ledger statements.
    payload_bytes: u64,
    /// The ledger insert and COMMIT, reused.
    ledger_sql: String,
    /// The sequence number of a batch whose last attempt failed after it may have committed.
    in_doubt: Option<u64>,
}

impl PgSink<'_> {
    fn classify(&self, err: &postgres::Error) -> SinkError {
        pg::classify(err, &self.factory.target, Some(&self.factory.table))
    }

    /// Encodes the batch for the method, and the ledger row and COMMIT that close its transaction.
    fn encode(&mut self, batch: &dyn Batch) {
        let factory = self.factory;
        self.buffer.clear();
        let rows = 0..batch.len();
        match factory.method {
            Method::CopyBinary => {
                self.buffer.extend_from_slice(binary::HEADER);
                batch.encode(rows, RowFormat::CopyBinary, &mut self.buffer);
                self.buffer.extend_from_slice(binary::TRAILER);
            }
            Method::CopyText => batch.encode(rows, RowFormat::CopyText, &mut self.buffer),
            Method::Insert => {
                self.buffer.extend_from_slice(b"BEGIN; ");
                self.buffer.extend_from_slice(factory.statement.as_bytes());
                batch.encode(rows, RowFormat::SqlValues, &mut self.buffer);
                self.buffer.extend_from_slice(b"; ");
            }
        }
        self.payload_bytes = self.buffer.len() as u64;
        self.ledger_sql.clear();
        let _ = write!(
            self.ledger_sql,
            "{}, {}, {}, {}, {}); COMMIT",
            factory.ledger_insert,
            batch.seq(),
            self.worker,
            batch.len(),
            batch.first_row(),
        );
    }
}

/// Sends an encoded batch and its ledger row in one transaction.
fn send(
    connection: &mut Connection,
    buffer: &mut Vec<u8>,
    ledger_sql: &str,
) -> Result<(), SendError> {
    let client = &mut connection.client;
    match &connection.copy {
        Some(copy) => {
            client.batch_execute("BEGIN")?;
            // CopyInWriter copies the batch into its own buffer and sends it at `finish`: one
            // message stream per batch.
            let mut writer = client.copy_in(copy)?;
            writer.write_all(buffer).map_err(SendError::Io)?;
            writer.finish()?;
            client.batch_execute(ledger_sql)?;
        }
        None => {
            buffer.extend_from_slice(ledger_sql.as_bytes());
            let sql = std::str::from_utf8(buffer).map_err(|_| SendError::NotUtf8)?;
            client.batch_execute(sql)?;
        }
    }
    Ok(())
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
}

impl From<postgres::Error> for SendError {
    fn from(err: postgres::Error) -> SendError {
        SendError::Driver(err)
    }
}

impl Sink for PgSink<'_> {
    fn write(&mut self, batch: &dyn Batch) -> Result<Written, SinkError> {
        let factory = self.factory;
        // The connection is put back only after a success: any failure drops it, which rolls
        // back whatever did not commit, and the next attempt reconnects.
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => factory.connect()?,
        };
        let was_in_doubt = self.in_doubt == Some(batch.seq());
        if was_in_doubt {
            let committed = factory
                .already_committed(&mut connection.client, batch)
                .map_err(|err| self.classify(&err))?;
            if committed {
                self.in_doubt = None;
                self.connection = Some(connection);
                return Ok(Written {
                    rows: batch.len() as u64,
                    bytes: self.payload_bytes,
                });
            }
        }
        self.encode(batch);
        self.in_doubt = Some(batch.seq());
        let written = Written {
            rows: batch.len() as u64,
            bytes: self.payload_bytes,
        };
        match send(&mut connection, &mut self.buffer, &self.ledger_sql) {
            Ok(()) => {
                self.in_doubt = None;
                self.connection = Some(connection);
                Ok(written)
            }
            // The earlier attempt's transaction was still open when the lookup ran, and has
            // committed since: the ledger's key refuses this second commit. Count it once.
            Err(SendError::Driver(err)) if was_in_doubt && violates_ledger_key(&err) => {
                self.in_doubt = None;
                Ok(written)
            }
            Err(SendError::Driver(err)) => Err(self.classify(&err)),
            Err(SendError::Io(err)) => Err(SinkError::Transient {
                kind: "connection",
                message: format!("connection to {} failed: {err}", factory.target),
            }),
            Err(SendError::NotUtf8) => Err(SinkError::Permanent {
                kind: "data",
                message: "a batch for --method insert is not valid UTF-8; use a COPY method".into(),
            }),
        }
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        if let Some(connection) = self.connection {
            connection
                .client
                .close()
                .map_err(|err| pg::classify(&err, &self.factory.target, None))?;
        }
        Ok(())
    }
}
