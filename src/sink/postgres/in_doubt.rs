//! The PostgreSQL sink's batches in doubt: a write that failed after its COMMIT was sent may have
//! committed, and the retry must not load it twice.
//!
//! Exactness, so that a dropped connection neither loses a batch nor loads it twice: when a write
//! fails, the sink drops the connection (the server rolls back what did not commit); when it
//! failed after COMMIT was sent, it remembers the batch as in doubt on that host. The retry
//! reconnects and looks the batch up in the ledger before sending it again, so a batch whose
//! COMMIT reached the server but whose acknowledgement was lost is counted once and inserted once.
//! The ledger's primary key is load-bearing: if the old transaction was still open during the
//! lookup and commits later, the resend's ledger insert violates the key, its transaction rolls
//! back, and the batch is counted as the one commit it had.
//!
//! Several hosts: a batch in doubt on a failed host is looked up on the host the worker reached,
//! which settles it when the hosts are one database; when they are separate clusters it is sent
//! there, recorded as moved, and settled after the load by [`SinkFactory::settle`] on its first
//! host's ledger, whose rows name the host that wrote them.
//!
//! [`SinkFactory::settle`]: crate::engine::SinkFactory::settle

use postgres::Client;

use super::isolate::{reject_message, Excluded};
use super::transaction::Transaction;
use super::{PgSink, PgSinkFactory, SendError, StatementFailure};
use crate::engine::{Settlement, UnverifiedBatch, Written};
use crate::failure::Failure;
use crate::pg;
use crate::reject::RejectLog;

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
pub(crate) struct MovedBatch {
    seq: u64,
    rows: u64,
    in_doubt_on: usize,
}

impl PgSinkFactory {
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

    /// The ledger row of `moved`'s batch on its first host: the host it names as having
    /// committed it (`None` in ledgers older than the column) and its rows; `None` when there is
    /// no row.
    fn first_host_entry(&self, moved: &MovedBatch) -> Result<Option<LedgerEntry>, Failure> {
        let target = &self.targets[moved.in_doubt_on];
        let mut client = pg::connect(target)?;
        self.ledger_entry(&mut client, moved.seq)
            .map_err(|err| pg::classify(&err, target, Some(&self.table)))
    }

    /// Asks each moved batch's first host whether it committed the batch too (its ledger row then
    /// names that host; a row naming the other host means the hosts are one database).
    pub(crate) fn settle_moved(&self) -> Settlement {
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

impl PgSink<'_> {
    /// Writes and commits `transaction`, or acknowledges it from the ledger when an earlier
    /// attempt committed it.
    pub(crate) fn commit(
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
                    .connect(self.worker, |host| factory.connect_host(self.worker, host))?
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
            // Not in doubt, yet the ledger holds the batch: another process loads the same run.
            Err(StatementFailure::Other(SendError::Driver(err))) if violates_ledger_key(&err) => {
                Err(Failure::Permanent {
                    kind: "run_id",
                    message: format!(
                        "run `{}` is being loaded by another process: it committed batch {} into \
                         {} first; give each process its own --run-id",
                        factory.run_id,
                        transaction.seq(),
                        factory.table
                    ),
                })
            }
            Err(StatementFailure::Other(err)) => Err(self.failed(host, self.send_error(host, err))),
            // Only reachable if the ledger insert itself breaks a constraint of the data's kind, or
            // a deferred constraint still refuses at COMMIT after the rows were isolated.
            Err(StatementFailure::Rows(db)) => Err(Failure::Permanent {
                kind: "server",
                message: reject_message(&db),
            }),
        }
    }

    /// The acknowledgement of the transaction in hand, committed on `host`. The hosts it was in
    /// doubt on before are recorded as moved, batch by batch, for
    /// [`SinkFactory::settle`](crate::engine::SinkFactory::settle).
    fn committed_on(&mut self, host: usize, transaction: &Transaction) -> Written {
        let rejected = self.excluded.rows.len() as u64;
        let written = Written {
            rows: self.stored,
            bytes: self.payload_bytes,
            rejected,
            skipped: self.skipped(transaction),
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
}

fn violates_ledger_key(err: &postgres::Error) -> bool {
    err.as_db_error().is_some_and(|db| {
        db.code() == &postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some(pg::LEDGER_KEY)
    })
}
