//! One transaction of the PostgreSQL sink: the ledger rows first, the rows by COPY or INSERT, the
//! documents the batch loads whole, and COMMIT.
//!
//! With `--commit-every N`, a transaction carries N batches instead of one: the sink holds a copy
//! of each batch until the N-th (or the end of the load) arrives, then sends them all in one COPY
//! (or INSERT) with one ledger row per batch, and acknowledges them together. Until then nothing
//! is counted; held copies stay until the commit succeeds, so a retry resends them. A generated
//! batch's copy is the positions of its rows, generated again when sent; a file's is its rows.
//! A transaction closes early once its copies hold 64 MiB, so that large rows do not make a
//! worker hold gigabytes. The COPY is encoded and written a quarter MiB at a time, so neither the
//! encoded transaction nor the driver's copy of it is ever whole in memory.

use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;

use postgres::SimpleQueryMessage;

use super::{Connection, PgSink, SendError, StatementFailure};
use crate::encode::binary;
use crate::engine::Written;
use crate::failure::Failure;
use crate::pg::Method;
use crate::reject::{RejectLog, RowOrigin};
use crate::rows::{Batch, RowFormat, Unencodable};
use crate::sql::quote_literal;

/// COPY data goes to the driver once this much is encoded, each write one CopyData message, so
/// that no message nears the server's 1 GB limit and neither the encoded rows nor the driver's
/// copy of them grow with the transaction.
const COPY_CHUNK_BYTES: usize = 256 << 10;

/// Rows encoded at a time between two checks of [`COPY_CHUNK_BYTES`].
const COPY_PIECE_ROWS: usize = 512;

/// The batches one transaction commits, seen as one run of rows: the batch in hand, or with
/// `--commit-every` the batches held until now. Its sequence number is its first batch's (the
/// in-doubt lookup's key, as all of them commit together); the ledger gets a row per batch.
pub(crate) struct Transaction<'b> {
    batches: &'b [&'b dyn Batch],
    /// Where each batch's rows end, in the transaction's row numbers.
    ends: Vec<usize>,
}

impl<'b> Transaction<'b> {
    pub(crate) fn new(batches: &'b [&'b dyn Batch]) -> Transaction<'b> {
        let ends = batches
            .iter()
            .scan(0, |end, batch| {
                *end += batch.len();
                Some(*end)
            })
            .collect();
        Transaction { batches, ends }
    }

    pub(crate) fn seq(&self) -> u64 {
        self.batches[0].seq()
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Each batch with its rows' range in the transaction.
    pub(crate) fn parts(&self) -> impl Iterator<Item = (&'b dyn Batch, Range<usize>)> + '_ {
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
    pub(crate) fn origin(&self, row: usize) -> RowOrigin {
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

impl PgSink<'_> {
    /// Commits the held batches as one transaction; they stay held if it fails, for the retry.
    pub(crate) fn commit_held(&mut self, rejects: &RejectLog) -> Result<Written, Failure> {
        let held = std::mem::take(&mut self.held);
        let batches: Vec<&dyn Batch> = held.iter().map(Box::as_ref).collect();
        let committed = self.commit(&Transaction::new(&batches), rejects);
        match committed {
            Ok(_) => self.held_bytes = 0,
            Err(_) => self.held = held,
        }
        committed
    }

    /// One attempt, in one transaction: the ledger rows first (so that a resend whose earlier
    /// attempt is still committing waits for it and then hits the ledger's key, before sending any
    /// data), the good rows, and COMMIT. The ledger row of each batch counts every record of it as
    /// loaded (by the server's count), rejected or dropped by the server, which `--resume` checks.
    pub(crate) fn transfer(
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
        self.stored = 0;
        self.load_rows(connection, transaction)?;
        let mut isolated = false;
        loop {
            if let Err(err) = self.log_rejects(transaction, rejects) {
                return Err(StatementFailure::Other(SendError::Refused(err)));
            }
            let commit = self.commit_sql(transaction, known_rejects);
            // From here until the acknowledgement the batch may commit without the sink knowing.
            if !self.in_doubt.contains(&connection.host) {
                self.in_doubt.push(connection.host);
            }
            let refused = match connection.client.batch_execute(&commit) {
                Ok(()) => return Ok(()),
                Err(err) => StatementFailure::from(err),
            };
            let StatementFailure::Rows(_) = refused else {
                return Err(refused);
            };
            // A deferred constraint refused a row at COMMIT: the transaction rolled back, so the
            // batch is not in doubt here. Once: the isolating transaction checks them at once.
            self.in_doubt.retain(|&host| host != connection.host);
            if isolated {
                return Err(refused);
            }
            isolated = true;
            connection.client.batch_execute(&self.ledger_sql)?;
            let candidates = self.candidates(transaction);
            self.isolate(connection, transaction, candidates)?;
        }
    }

    /// The end of the transaction: the documents it loads whole, the ledger rows' counts when rows
    /// were refused since they were written (`known_rejects` were known then) or the server
    /// stored fewer rows than were sent, and COMMIT. The rows the server dropped (a trigger, a
    /// rule) are `skipped`, so that rows + rejected + skipped stay each batch's records; the
    /// server counts them per statement, so in a transaction of several batches they are given to
    /// its batches in order, each up to its rows.
    fn commit_sql(&self, transaction: &Transaction, known_rejects: usize) -> String {
        let factory = self.factory;
        let mut commit = self.documents_insert(transaction);
        let mut skipped = self.skipped(transaction);
        if self.excluded.rows.len() != known_rejects || skipped > 0 {
            for (batch, rows) in transaction.parts() {
                let (sent, rejected) = self.ledger_counts(batch, rows);
                let dropped = skipped.min(sent as u64);
                skipped -= dropped;
                let loaded = sent as u64 - dropped;
                let _ = write!(
                    commit,
                    "UPDATE {} SET rows = {loaded}, rejected = {rejected}, skipped = {dropped} \
                     WHERE {} AND batch_seq = {}; ",
                    factory.ledger,
                    factory.ledger_key,
                    batch.seq()
                );
            }
        }
        commit.push_str("COMMIT");
        commit
    }

    /// Sends the rows `rows` (sorted positions in the transaction) in one COPY or INSERT.
    pub(crate) fn send_rows(
        &mut self,
        connection: &mut Connection,
        transaction: &Transaction,
        rows: &[usize],
    ) -> Result<(), StatementFailure> {
        if rows.is_empty() {
            return Ok(());
        }
        match self.factory.method {
            Method::CopyBinary if self.text_copy_for != Some(transaction.seq()) => {
                self.copy_rows(connection, transaction, rows, RowFormat::CopyBinary)
            }
            Method::CopyBinary | Method::CopyText => {
                self.copy_rows(connection, transaction, rows, RowFormat::CopyText)
            }
            Method::Insert => self.insert_rows(connection, transaction, rows),
        }
    }

    /// Sends the rows in one COPY, encoded and written a piece at a time, so that a transaction
    /// of many batches (`--commit-every`) never sits whole in memory, encoded. When binary COPY
    /// cannot carry a value (one the client does not parse): before anything was sent the COPY is
    /// text instead; after, the COPY is abandoned and the transaction fails, to be sent again
    /// whole as text.
    fn copy_rows(
        &mut self,
        connection: &mut Connection,
        transaction: &Transaction,
        rows: &[usize],
        format: RowFormat,
    ) -> Result<(), StatementFailure> {
        // Binary COPY prepares a text COPY beside it; text COPY has only its own.
        let statement = match self.factory.method {
            Method::CopyBinary if format != RowFormat::CopyBinary => &connection.text_copy,
            _ => &connection.copy,
        };
        let Some(statement) = statement.clone() else {
            return Err(StatementFailure::Other(SendError::Refused(
                Failure::Permanent {
                    kind: "internal",
                    message: format!("no {format:?} statement was prepared for this connection"),
                },
            )));
        };
        let copied = stream_copy(
            &mut connection.client,
            &statement,
            Piecewise {
                transaction,
                rows,
                format,
            },
            &mut self.buffer,
        )?;
        match copied {
            Copied::Stored { rows, bytes } => {
                self.stored += rows;
                self.payload_bytes += bytes;
                Ok(())
            }
            Copied::Unencodable { sent: false } => {
                self.copy_rows(connection, transaction, rows, RowFormat::CopyText)
            }
            Copied::Unencodable { sent: true } => {
                self.text_copy_for = Some(transaction.seq());
                Err(StatementFailure::Other(SendError::Refused(
                    Failure::Transient {
                        kind: "encoding",
                        message:
                            "binary COPY cannot carry a value of this transaction; it is sent \
                              again as text COPY"
                                .into(),
                    },
                )))
            }
        }
    }

    /// Sends the rows in one multi-row INSERT.
    fn insert_rows(
        &mut self,
        connection: &mut Connection,
        transaction: &Transaction,
        rows: &[usize],
    ) -> Result<(), StatementFailure> {
        let buffer = &mut self.buffer;
        buffer.clear();
        buffer.extend_from_slice(self.factory.statement.as_bytes());
        let _ = crate::sink::encode_runs(rows, RowFormat::SqlValues, buffer, |run, out| {
            transaction.encode(run, RowFormat::SqlValues, out)
        });
        self.payload_bytes += buffer.len() as u64;
        let sql = std::str::from_utf8(buffer).map_err(|_| SendError::NotUtf8)?;
        for message in connection.client.simple_query(sql)? {
            if let SimpleQueryMessage::CommandComplete(rows) = message {
                self.stored += rows;
            }
        }
        Ok(())
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

    /// Rows of the transaction sent in its latest attempt that the server did not store.
    pub(crate) fn skipped(&self, transaction: &Transaction) -> u64 {
        let sent = (transaction.len() - self.excluded.rows.len()) as u64;
        sent.saturating_sub(self.stored)
    }

    /// A batch's ledger counts, its rows being `rows` of the transaction: rows sent, and
    /// records rejected (the parser's rejects included).
    fn ledger_counts(&self, batch: &dyn Batch, rows: Range<usize>) -> (usize, usize) {
        let excluded = self.excluded.count_in(rows);
        (batch.len() - excluded, excluded + batch.invalid().len())
    }
}

/// Rows of a transaction to encode in one format, a piece at a time.
struct Piecewise<'t, 'b> {
    transaction: &'t Transaction<'b>,
    rows: &'t [usize],
    format: RowFormat,
}

/// How a COPY of [`stream_copy`] ended.
enum Copied {
    /// The server stored `rows` rows from `bytes` bytes.
    Stored { rows: u64, bytes: u64 },
    /// The format cannot carry a value; `sent` when part of the COPY had gone out (it was
    /// abandoned, which fails the transaction).
    Unencodable { sent: bool },
}

/// Runs one COPY of `rows`: encodes them into `buffer` until it holds [`COPY_CHUNK_BYTES`],
/// writes that, and goes on. The COPY starts only once the first piece is encoded, so that a
/// format refusing a value at once leaves the transaction untouched.
fn stream_copy(
    client: &mut postgres::Client,
    statement: &postgres::Statement,
    rows: Piecewise<'_, '_>,
    buffer: &mut Vec<u8>,
) -> Result<Copied, StatementFailure> {
    let Piecewise {
        transaction,
        rows,
        format,
    } = rows;
    let binary = format == RowFormat::CopyBinary;
    let mut pieces = crate::sink::runs(rows).flat_map(|run| {
        run.clone()
            .step_by(COPY_PIECE_ROWS)
            .map(move |start| start..(start + COPY_PIECE_ROWS).min(run.end))
    });
    // Encodes pieces until a chunk is full; whether pieces are left.
    let mut fill = |buffer: &mut Vec<u8>| -> Result<bool, Unencodable> {
        while buffer.len() < COPY_CHUNK_BYTES {
            let Some(piece) = pieces.next() else {
                if binary {
                    buffer.extend_from_slice(binary::TRAILER);
                }
                return Ok(false);
            };
            transaction.encode(piece, format, buffer)?;
        }
        Ok(true)
    };
    buffer.clear();
    if binary {
        buffer.extend_from_slice(binary::HEADER);
    }
    let Ok(mut more) = fill(buffer) else {
        return Ok(Copied::Unencodable { sent: false });
    };
    // CopyInWriter copies each chunk into its own buffer and sends it on the next write (the
    // last one at `finish`); dropping it unfinished abandons the COPY.
    let mut writer = client.copy_in(statement)?;
    let mut bytes = 0;
    loop {
        bytes += buffer.len() as u64;
        writer.write_all(buffer).map_err(SendError::Io)?;
        buffer.clear();
        if !more {
            break;
        }
        match fill(buffer) {
            Ok(left) => more = left,
            Err(Unencodable) => return Ok(Copied::Unencodable { sent: true }),
        }
    }
    let rows = writer.finish()?;
    Ok(Copied::Stored { rows, bytes })
}
