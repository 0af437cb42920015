//! PostgreSQL plumbing shared by the setup on main and the sinks on the workers: connecting with
//! the host resolved once and TLS as the target's sslmode says ([`tls`]), turning driver errors
//! into [`Failure`]s that name the cause and the fix, and preparing the target table and the
//! ledger before the load starts.

pub(crate) mod activity;
pub mod local;
mod target;
pub(crate) mod tls;

pub(crate) use target::PgTarget;

use std::io;
use std::net::ToSocketAddrs;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::Client;

use crate::ddl::{self, Flavor};
use crate::failure::{Failure, USAGE};
use crate::ledger::{Committed, CommittedBatch, LoadedDocuments};
use crate::rows::{Column, Columns, Schema, SqlType};
use crate::sql::{quote_ident, TableName};

/// How rows are written to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Method {
    /// COPY … FROM STDIN (FORMAT binary), encoded straight into a reused buffer.
    CopyBinary,
    /// COPY … FROM STDIN in PostgreSQL's text format.
    CopyText,
    /// One multi-row INSERT statement per batch.
    Insert,
}

/// The ledger table: one row per committed batch, written in the batch's own transaction.
pub(crate) const LEDGER_TABLE: &str = "loader_ledger";
/// The ledger's primary key (run, table, source, batch): a second commit of one batch violates it.
pub(crate) const LEDGER_KEY: &str = "loader_ledger_key";
/// The documents ledger (ingest mode): one row per document loaded whole, written in the
/// transaction of the batch that holds its chunks.
pub(crate) const DOCUMENTS_TABLE: &str = "loader_documents";
/// Its primary key (table, document id): a document is loaded into a table once.
pub(crate) const DOCUMENTS_KEY: &str = "loader_documents_key";

/// The `application_name` of this process's worker connections, unless the target names one:
/// what the server-time sampler ([`activity`]) looks for in `pg_stat_activity`.
pub(crate) fn application_name() -> String {
    format!("loader-{}", std::process::id())
}

/// Resolves every TCP host name once, so that workers connect by address and no resolver thread
/// is started per connection; names the connections (`application_name`, unless the target
/// does); sets the connect timeout, TCP keepalives (a dead server or a
/// half-open connection is noticed within about 25 s instead of hanging a worker) and a TCP user
/// timeout (data the server has not acknowledged for 30 s breaks the connection, where the
/// kernel's retransmissions would go on for about 15 minutes).
pub(crate) fn resolve(target: &PgTarget, connect_timeout: Duration) -> Result<PgTarget, Failure> {
    let mut resolved = target.clone();
    let config = resolved.config_mut();
    config
        .connect_timeout(connect_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(30));
    // The server-time sampler finds the workers' backends by this name.
    if config.get_application_name().is_none() {
        config.application_name(&application_name());
    }
    let has_unix_socket = config
        .get_hosts()
        .iter()
        .any(|host| matches!(host, postgres::config::Host::Unix(_)));
    // hostaddr must be given for every host or none; Unix sockets need no resolving.
    if config.get_hostaddrs().is_empty() && !has_unix_socket {
        let ports = config.get_ports().to_vec();
        let hosts = config.get_hosts().to_vec();
        for (i, host) in hosts.iter().enumerate() {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let address = match host {
                postgres::config::Host::Tcp(name) => (name.as_str(), port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut addresses| addresses.next())
                    .ok_or_else(|| Failure::Permanent {
                        kind: "resolve",
                        message: format!("cannot resolve the host name `{name}` of {target}"),
                    })?
                    .ip(),
                postgres::config::Host::Unix(_) => continue,
            };
            config.hostaddr(address);
        }
    }
    Ok(resolved)
}

/// How much longer than `--connect-timeout` [`connect`] waits for the whole connect: the driver's
/// own timeout of the TCP connect fires first, so a timeout here means the server accepted.
const STARTUP_GRACE: Duration = Duration::from_millis(250);

/// Opens one connection, with TLS as the target's sslmode says, within the target's connect
/// timeout ([`resolve`] sets it) for all of it: TCP, TLS negotiation, startup and authentication.
///
/// The driver's `connect_timeout` bounds only the TCP connect, so a server that accepts and then
/// says nothing would hold the caller forever, and the synchronous driver gives no access to its
/// socket to set a read timeout before the startup. So the connect runs on a thread of its own,
/// waited for with the timeout. One that times out is abandoned: it is one thread per connection
/// attempt (never per batch), it does not keep the process alive (the process ends with main),
/// and should it connect after all, its client is dropped, closing the connection.
pub(crate) fn connect(target: &PgTarget) -> Result<Client, Failure> {
    let Some(timeout) = target.config().get_connect_timeout().copied() else {
        return connect_now(target);
    };
    let (sender, receiver) = crossbeam_channel::bounded(1);
    let owned = target.clone();
    std::thread::Builder::new()
        .name("loader-connect".into())
        .spawn(move || {
            let _ = sender.send(connect_now(&owned));
        })
        .map_err(|err| Failure::Transient {
            kind: "connection",
            message: format!("cannot start a thread to connect to {target}: {err}"),
        })?;
    receiver
        .recv_timeout(timeout + STARTUP_GRACE)
        .unwrap_or_else(|_| {
            Err(Failure::Transient {
                kind: "timeout",
                message: format!(
                    "{} accepted the connection but did not answer the startup within {}",
                    target.host_name(0),
                    humantime::format_duration(timeout)
                ),
            })
        })
}

/// Opens one connection on this thread, bounded only by the driver's timeout of the TCP connect.
fn connect_now(target: &PgTarget) -> Result<Client, Failure> {
    target
        .tls()
        .connect(target.config())
        .map_err(|err| match tls::failure(&err, target) {
            Some(message) => Failure::Permanent {
                kind: "tls",
                message,
            },
            None => classify(&err, target, None),
        })
}

/// Stops a load that would need more connections than the server has room for, before any row is
/// sent: a worker refused a connection would retry until its time is spent while the others load
/// a part. Servers without these views (CrateDB over the PostgreSQL protocol) are not checked.
fn check_connection_room(
    client: &mut Client,
    workers: usize,
    target: &PgTarget,
) -> Result<(), Failure> {
    // This setup connection is counted, and closes before the workers connect. Superusers may
    // use the reserved connections and have no per-role limit.
    let room = client.query_one(
        "WITH mine AS (SELECT count(*)::int AS n FROM pg_stat_activity \
                       WHERE backend_type = 'client backend' AND usename = current_user), \
              every AS (SELECT count(*)::int AS n FROM pg_stat_activity \
                        WHERE backend_type = 'client backend') \
         SELECT current_setting('max_connections')::int, \
                current_setting('max_connections')::int + 1 - every.n \
                - CASE WHEN r.rolsuper THEN 0 \
                       ELSE current_setting('superuser_reserved_connections')::int \
                            + coalesce(nullif(current_setting('reserved_connections', true), \
                                              '')::int, 0) END, \
                CASE WHEN r.rolsuper THEN -1 ELSE r.rolconnlimit END, \
                r.rolconnlimit + 1 - mine.n \
         FROM pg_roles r, mine, every WHERE r.rolname = current_user",
        &[],
    );
    let Ok(row) = room else {
        return Ok(());
    };
    let (max_connections, server_room, role_limit, role_room): (i32, i32, i32, i32) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let fits = |room: i32| usize::try_from(room).unwrap_or(0) >= workers;
    let (room, limit, fix) = if !fits(server_room) {
        (
            server_room,
            format!("max_connections is {max_connections}"),
            "raise max_connections",
        )
    } else if role_limit >= 0 && !fits(role_room) {
        (
            role_room,
            format!("the role's CONNECTION LIMIT is {role_limit}"),
            "raise the role's CONNECTION LIMIT",
        )
    } else {
        return Ok(());
    };
    Err(Failure::Permanent {
        kind: "too_many_connections",
        message: format!(
            "{target} has room for {room} more connections ({limit}) and this load needs \
             {workers}, one per worker; lower --threads or {fix}"
        ),
    })
}

/// Decides whether a driver error is worth retrying, and words it with the cause and the fix.
pub(crate) fn classify(
    err: &postgres::Error,
    target: &PgTarget,
    table: Option<&TableName>,
) -> Failure {
    let transient = |kind, message: String| Failure::Transient { kind, message };
    let permanent = |kind, message: String| Failure::Permanent { kind, message };
    let Some(db) = err.as_db_error() else {
        let io_cause =
            std::error::Error::source(err).and_then(|source| source.downcast_ref::<io::Error>());
        if with_causes(err).contains("password missing") {
            return permanent(
                USAGE,
                format!(
                    "{target} asks for a password and none was given; set PGPASSWORD, give \
                     --password-file FILE, or put it in the target URL"
                ),
            );
        }
        if io_cause.is_some_and(|io| io.kind() == io::ErrorKind::ConnectionRefused) {
            return Failure::refused(&target.host_name(0));
        }
        return if err.is_closed() || io_cause.is_some() {
            transient(
                "connection",
                format!("connection to {target} failed: {}", with_causes(err)),
            )
        } else {
            permanent(
                "connection",
                format!("cannot use {target}: {}", with_causes(err)),
            )
        };
    };
    let code = db.code();
    let server = format!("{} (SQLSTATE {})", db.message(), code.code());
    let table_name = table.map_or_else(|| "the table".to_string(), |t| format!("table {t}"));
    match code {
        _ if code.code().starts_with("08") => transient("connection", format!("connection to {target} failed: {server}")),
        &SqlState::ADMIN_SHUTDOWN | &SqlState::CRASH_SHUTDOWN | &SqlState::CANNOT_CONNECT_NOW => {
            transient("server_restarting", format!("{target} is restarting: {server}"))
        }
        &SqlState::TOO_MANY_CONNECTIONS => transient(
            "too_many_connections",
            format!("{target} refuses more connections: {server}; lower --threads or raise max_connections"),
        ),
        &SqlState::T_R_SERIALIZATION_FAILURE => transient("serialization_failure", server),
        &SqlState::T_R_DEADLOCK_DETECTED => transient("deadlock", server),
        &SqlState::INVALID_PASSWORD | &SqlState::INVALID_AUTHORIZATION_SPECIFICATION => permanent(
            "authentication",
            format!(
                "authentication as `{}` failed at {target}: {server}; check the user and the \
                 password (given in the target or PGPASSWORD; ~/.pgpass is not read){}",
                target.user(),
                if target.tls().mode() == tls::SslMode::Disable {
                    ", and whether the server takes only TLS connections (then drop sslmode=disable)"
                } else {
                    ""
                }
            ),
        ),
        &SqlState::INVALID_CATALOG_NAME => permanent(
            "database",
            format!("{server}; create the database or name another one in the target"),
        ),
        &SqlState::UNDEFINED_TABLE => permanent(
            "missing_table",
            format!("{table_name} does not exist at {target}; add --create to create it"),
        ),
        &SqlState::INSUFFICIENT_PRIVILEGE => permanent(
            "permission",
            format!("{server}; grant `{}` the privilege or use another user", target.user()),
        ),
        // A statement_timeout (the role's or the database's) cancels a COPY of a large batch.
        &SqlState::QUERY_CANCELED if db.message().contains("statement timeout") => permanent(
            "statement_timeout",
            format!(
                "{server}: a statement_timeout cut a batch's COPY; lower --batch, or lift the \
                 timeout for the loading role (ALTER ROLE {} SET statement_timeout = 0)",
                quote_ident(target.user())
            ),
        ),
        // loader's own cancel after a second interrupt, or another session's pg_cancel_backend.
        &SqlState::QUERY_CANCELED => permanent("canceled", server),
        _ if code.code().starts_with("22") || code == &SqlState::DATATYPE_MISMATCH => permanent(
            "data",
            format!("{server}: the columns of {table_name} do not take the loaded values; check its column types"),
        ),
        _ => permanent("server", server),
    }
}

/// An error and its chain of causes, as `error: cause: cause`.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The server's `server_version` (such as `17.2 (Debian 17.2-1)`), for the report; none when it
/// cannot be read.
pub(crate) fn server_version(target: &PgTarget) -> Option<String> {
    let mut client = connect(target).ok()?;
    let row = client.query_one("SHOW server_version", &[]).ok()?;
    row.try_get(0).ok()
}

/// Checks that the server has a connection for each of `workers`, creates, checks and truncates
/// the target table and creates the ledger, on one connection, before any worker starts. Returns
/// the columns to load, typed as the table has them.
pub(crate) fn prepare(
    target: &PgTarget,
    workers: usize,
    table: &TableName,
    columns: &Columns,
    method: Method,
    create: bool,
    truncate: bool,
) -> Result<Schema, Failure> {
    let mut client = connect(target)?;
    check_connection_room(&mut client, workers, target)?;
    let classify_for_table = |err: postgres::Error| classify(&err, target, Some(table));
    if create {
        let created = match columns {
            Columns::Fixed(schema) | Columns::Sniffed(schema) => schema.clone(),
            Columns::Named(names) => Schema::text(names),
            Columns::Table => {
                return Err(Failure::Permanent {
                    kind: "schema",
                    message: "--create needs the column names: give --columns or --header".into(),
                })
            }
        };
        create_if_missing(
            &mut client,
            &ddl::create_table(Flavor::Postgres, table, &created, true),
        )
        .map_err(classify_for_table)?;
    }
    let schema = check_columns(&mut client, table, columns, method, target)?;
    create_if_missing(&mut client, &ledger_ddl(table)).map_err(classify_for_table)?;
    // Ledgers made before rejects were counted, before multi-host targets, or before rows that
    // a trigger dropped were counted, lack a column.
    client
        .batch_execute(&format!(
            "ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS rejected bigint NOT NULL DEFAULT 0; \
             ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS host text; \
             ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS skipped bigint NOT NULL DEFAULT 0",
            ledger = ledger_table(table).quoted()
        ))
        .map_err(classify_for_table)?;
    if truncate {
        // The ledger rows of a truncated table describe rows that are gone: drop them with it.
        let mut transaction = client.transaction().map_err(classify_for_table)?;
        transaction
            .batch_execute(&format!("TRUNCATE {}", table.quoted()))
            .map_err(classify_for_table)?;
        transaction
            .execute(
                &format!(
                    "DELETE FROM {} WHERE target_table = $1",
                    ledger_table(table).quoted()
                ),
                &[&table.to_string()],
            )
            .map_err(classify_for_table)?;
        transaction.commit().map_err(classify_for_table)?;
    }
    Ok(schema)
}

/// The batches run `run_id` committed from `source` into `table`, by the ledger. A run that
/// recorded another source (other inputs) cannot be continued by this one.
pub(crate) fn committed(
    target: &PgTarget,
    table: &TableName,
    run_id: &str,
    source: &str,
) -> Result<Committed, Failure> {
    let mut client = connect(target)?;
    let rows = client
        .query(
            &format!(
                "SELECT batch_seq, first_row, rows, rejected, skipped, source FROM {} \
                 WHERE run_id = $1 AND target_table = $2",
                ledger_table(table).quoted()
            ),
            &[&run_id, &table.to_string()],
        )
        .map_err(|err| classify(&err, target, Some(table)))?;
    if let Some(recorded) = rows
        .iter()
        .map(|row| row.get::<_, &str>(5))
        .find(|recorded| *recorded != source)
    {
        return Err(Failure::Permanent {
            kind: "run_id",
            message: format!(
                "run `{run_id}` loaded other inputs into {table}: its ledger records `{recorded}`, \
                 this run reads `{source}`; resume with the same inputs, or choose another --run-id"
            ),
        });
    }
    Ok(Committed::new(rows.iter().map(|row| {
        let (seq, first_row, rows, rejected, skipped): (i64, i64, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        (
            seq as u64,
            CommittedBatch {
                first_row: first_row as u64,
                rows: rows as u64,
                rejected: rejected as u64,
                skipped: skipped as u64,
            },
        )
    })))
}

/// Creates the documents ledger (ingest mode) and returns the documents earlier runs loaded
/// into `table`; with `forget` (`--no-resume`, `--truncate`) it deletes their records instead.
pub(crate) fn prepare_documents(
    target: &PgTarget,
    table: &TableName,
    forget: bool,
) -> Result<LoadedDocuments, Failure> {
    let mut client = connect(target)?;
    let classify_for_table = |err: postgres::Error| classify(&err, target, Some(table));
    let ledger = documents_table(table).quoted();
    create_if_missing(
        &mut client,
        &format!(
            "CREATE TABLE IF NOT EXISTS {ledger} (target_table text NOT NULL, doc_id text NOT NULL, \
             source text NOT NULL, chunks integer NOT NULL, run_id text NOT NULL, \
             loaded_at timestamptz NOT NULL DEFAULT now(), \
             CONSTRAINT {DOCUMENTS_KEY} PRIMARY KEY (target_table, doc_id))"
        ),
    )
    .map_err(classify_for_table)?;
    let name = table.to_string();
    let mut loaded = LoadedDocuments::default();
    if forget {
        client
            .execute(
                &format!("DELETE FROM {ledger} WHERE target_table = $1"),
                &[&name],
            )
            .map_err(classify_for_table)?;
        return Ok(loaded);
    }
    let rows = client
        .query(
            &format!("SELECT doc_id, source FROM {ledger} WHERE target_table = $1"),
            &[&name],
        )
        .map_err(classify_for_table)?;
    for row in rows {
        loaded.insert(row.get(0), row.get(1));
    }
    Ok(loaded)
}

/// The documents ledger sits beside the target table, in the same schema.
pub(crate) fn documents_table(table: &TableName) -> TableName {
    beside(table, DOCUMENTS_TABLE)
}

/// The ledger sits beside the target table, in the same schema.
pub(crate) fn ledger_table(table: &TableName) -> TableName {
    beside(table, LEDGER_TABLE)
}

/// The table `name` in `table`'s schema.
fn beside(table: &TableName, name: &str) -> TableName {
    TableName {
        schema: table.schema.clone(),
        name: name.into(),
    }
}

fn ledger_ddl(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (run_id text NOT NULL, source text NOT NULL, \
         batch_seq bigint NOT NULL, worker int NOT NULL, rows bigint NOT NULL, \
         rejected bigint NOT NULL DEFAULT 0, first_row bigint NOT NULL, target_table text NOT NULL, \
         host text, committed_at timestamptz NOT NULL DEFAULT now(), \
         CONSTRAINT {LEDGER_KEY} PRIMARY KEY (run_id, target_table, source, batch_seq))",
        ledger_table(table).quoted()
    )
}

/// Runs `CREATE … IF NOT EXISTS`, tolerating the race in which another loader creates the same
/// table at the same moment (PostgreSQL then reports a duplicate instead of skipping).
fn create_if_missing(client: &mut Client, ddl: &str) -> Result<(), postgres::Error> {
    match client.batch_execute(ddl) {
        Err(err)
            if matches!(
                err.code(),
                Some(
                    &SqlState::UNIQUE_VIOLATION
                        | &SqlState::DUPLICATE_TABLE
                        | &SqlState::DUPLICATE_OBJECT
                )
            ) =>
        {
            Ok(())
        }
        result => result,
    }
}

/// Whether `table` still has the column types binary COPY encodes `schema` for, asked on a new
/// connection after the server refused binary data (a column's type changed under the load, and
/// every row sent from then on is refused): `None` when it does, or cannot be asked, else the
/// failure that names the column.
pub(crate) fn changed_under_load(
    target: &PgTarget,
    table: &TableName,
    schema: &Schema,
) -> Option<Failure> {
    let mut client = connect(target).ok()?;
    let columns = Columns::Fixed(schema.clone());
    match check_columns(&mut client, table, &columns, Method::CopyBinary, target) {
        Err(Failure::Permanent { message, .. }) => Some(Failure::Permanent {
            kind: "schema_changed",
            message: format!(
                "table {table} changed under the load: {message}; the rows loaded before are \
                 counted"
            ),
        }),
        _ => None,
    }
}

/// Reads the table's columns and picks the ones to load: they must all exist, and for a fixed
/// schema under binary COPY have the exact types, since the server does not convert binary values.
/// Without a column list, the columns the server fills itself (generated, identity `ALWAYS`) are
/// left out, as psql's `\copy` does; named, they are sent and the server decides.
fn check_columns(
    client: &mut Client,
    table: &TableName,
    columns: &Columns,
    method: Method,
    target: &PgTarget,
) -> Result<Schema, Failure> {
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod), \
             a.attgenerated <> '' OR a.attidentity = 'a' FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 \
             AND NOT a.attisdropped ORDER BY a.attnum",
            &[&table.quoted()],
        )
        .map_err(|err| classify(&err, target, Some(table)))?;
    if rows.is_empty() {
        return Err(Failure::Permanent {
            kind: "missing_table",
            message: format!("table {table} does not exist at {target}; add --create to create it"),
        });
    }
    let found: Vec<(String, u32, String)> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let server_filled: Vec<bool> = rows.iter().map(|row| row.get(3)).collect();
    let names: Vec<&str> = found.iter().map(|(name, ..)| name.as_str()).collect();
    // An exact match, else the one column equal but for case (a header's `ID` for `id`).
    let lookup = |name: &str| {
        let mut folded = found
            .iter()
            .filter(|(found_name, ..)| found_name.eq_ignore_ascii_case(name));
        found
            .iter()
            .find(|(found_name, ..)| found_name == name)
            .or_else(|| folded.next().filter(|_| folded.next().is_none()))
            .ok_or_else(|| Failure::Permanent {
                kind: "schema",
                message: format!(
                    "table {table} has no column `{name}`; its columns are {}",
                    names.join(", ")
                ),
            })
    };
    let typed = |(name, oid, _): &(String, u32, String)| Column {
        name: name.clone().into(),
        sql_type: SqlType::from_oid(*oid),
    };
    match columns {
        Columns::Fixed(schema) => {
            for column in schema.columns.iter() {
                let (_, _, actual) = lookup(&column.name)?;
                if method == Method::CopyBinary && actual != column.sql_type.pg_name() {
                    return Err(Failure::Permanent {
                        kind: "schema",
                        message: format!(
                            "column `{}` of table {table} is {actual}, but binary COPY sends {}; \
                             alter the column or use --method copy-text",
                            column.name,
                            column.sql_type.pg_name()
                        ),
                    });
                }
            }
            Ok(schema.clone())
        }
        Columns::Named(wanted) => Ok(Schema {
            columns: wanted
                .iter()
                .map(|name| lookup(name).map(typed))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        }),
        Columns::Sniffed(sniffed) => Ok(Schema {
            columns: sniffed
                .columns
                .iter()
                .map(|column| lookup(&column.name).map(typed))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        }),
        Columns::Table => Ok(Schema {
            columns: found
                .iter()
                .zip(&server_filled)
                .filter(|(_, &filled)| !filled)
                .map(|(column, _)| typed(column))
                .collect::<Vec<_>>()
                .into(),
        }),
    }
}
