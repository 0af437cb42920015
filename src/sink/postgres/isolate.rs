//! The bad rows of a batch that the PostgreSQL server refused for its data, found so that a few
//! bad values neither stop the load nor lose the batch's good rows.
//!
//! When the server refuses a batch for its data (SQLSTATE class 22 or 23), the sink rolls back and
//! isolates the bad rows inside one transaction: each candidate set of rows goes in under a
//! savepoint; a set that fails is split at the row the error's CONTEXT names (or in halves), down
//! to single rows, which are rejected with the server's message (and written to the reject file).
//! The good rows stay in the transaction, which then commits with its ledger row.
//!
//! A deferred constraint (`DEFERRABLE INITIALLY DEFERRED`) refuses at COMMIT, with no row named:
//! that COMMIT did not commit, and the transaction is isolated in the same way, its deferred
//! constraints made immediate (`SET CONSTRAINTS ALL IMMEDIATE`) so that each row set is checked
//! inside its savepoint.

use std::ops::Range;

use postgres::error::{DbError, SqlState};

use super::transaction::Transaction;
use super::{Connection, PgSink, SendError, StatementFailure};
use crate::failure::Failure;
use crate::pg::{self, Method};
use crate::reject::{Reject, RejectLog};

/// The rows of one batch that the server refused, sorted, with their messages.
#[derive(Debug, Default)]
pub(crate) struct Excluded {
    pub seq: Option<u64>,
    /// Row, kind of refusal, the server's message.
    pub rows: Vec<(usize, &'static str, String)>,
    /// The rows of them that reached the reject file (before each COMMIT attempt, the ones not
    /// there yet: a COMMIT refused for a deferred constraint finds more).
    pub logged: Vec<usize>,
}

impl Excluded {
    pub(crate) fn contains(&self, row: usize) -> bool {
        self.rows.binary_search_by_key(&row, |(r, ..)| *r).is_ok()
    }

    /// How many of the rows `rows` are bad.
    pub(crate) fn count_in(&self, rows: Range<usize>) -> usize {
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

/// Data exceptions and integrity violations are a row's fault, not the connection's (the
/// ledgers' keys are the sink's own business).
pub(crate) fn is_row_level(db: &DbError) -> bool {
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
pub(crate) fn reject_message(db: &DbError) -> String {
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
    /// The table's change under the load, when `sent` failed the way binary data that no longer
    /// fits a column fails (22P03 for every row, or 08P01 when it is longer than the column's
    /// type): checked then, since isolating rows or retrying the connection cannot help.
    fn changed_table(&self, host: usize, sent: &Result<(), StatementFailure>) -> Option<Failure> {
        let factory = self.factory;
        let code = match sent {
            Err(StatementFailure::Rows(db)) => db.code(),
            Err(StatementFailure::Other(SendError::Driver(err))) => err.code()?,
            _ => return None,
        };
        let binary_refused = *code == SqlState::INVALID_BINARY_REPRESENTATION
            || *code == SqlState::PROTOCOL_VIOLATION;
        if !binary_refused || factory.method != Method::CopyBinary {
            return None;
        }
        pg::changed_under_load(&factory.targets[host], &factory.table, &factory.schema)
    }

    /// Loads every row of the transaction that is not bad: all of them in one statement first;
    /// on a row-level refusal, again row set by row set under savepoints, rejecting the rows that
    /// fail alone.
    pub(crate) fn load_rows(
        &mut self,
        connection: &mut Connection,
        transaction: &Transaction,
    ) -> Result<(), StatementFailure> {
        let candidates = self.candidates(transaction);
        let sent = self.send_rows(connection, transaction, &candidates);
        if let Some(changed) = self.changed_table(connection.host, &sent) {
            return Err(StatementFailure::Other(SendError::Refused(changed)));
        }
        match sent {
            Err(StatementFailure::Rows(_)) => {}
            done => return done,
        }
        // The refusal aborted the transaction: start it again, ledger row first.
        connection.client.batch_execute("ROLLBACK")?;
        connection.client.batch_execute(&self.ledger_sql)?;
        self.isolate(connection, transaction, candidates)
    }

    /// The rows of the transaction not found bad so far.
    pub(crate) fn candidates(&self, transaction: &Transaction) -> Vec<usize> {
        (0..transaction.len())
            .filter(|&row| !self.excluded.contains(row))
            .collect()
    }

    /// Loads `candidates` row set by row set under savepoints, in the transaction begun with the
    /// ledger rows, rejecting the rows that fail alone. The deferred constraints are checked at
    /// once in it, so that a row a deferred constraint refuses fails in its own savepoint instead
    /// of at COMMIT.
    pub(crate) fn isolate(
        &mut self,
        connection: &mut Connection,
        transaction: &Transaction,
        candidates: Vec<usize>,
    ) -> Result<(), StatementFailure> {
        connection
            .client
            .batch_execute("SET CONSTRAINTS ALL IMMEDIATE")?;
        self.stored = 0;
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

    /// Writes the rejects found for this transaction to the reject file, each once.
    pub(crate) fn log_rejects(
        &mut self,
        transaction: &Transaction,
        rejects: &RejectLog,
    ) -> Result<(), Failure> {
        let excluded = &mut self.excluded;
        let found: Vec<Reject> = excluded
            .rows
            .iter()
            .filter(|(row, ..)| !excluded.logged.contains(row))
            .map(|(row, kind, message)| Reject {
                origin: transaction.origin(*row),
                kind,
                error: message.clone(),
            })
            .collect();
        if found.is_empty() {
            return Ok(());
        }
        excluded.logged = excluded.rows.iter().map(|(row, ..)| *row).collect();
        rejects.record(&found)
    }
}
