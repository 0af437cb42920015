//! PostgreSQL plumbing shared by the setup on main and the sinks on the workers: connecting with
//! the host resolved once, turning driver errors into [`SinkError`]s that name the cause and the
//! fix, and preparing the target table and the ledger before the load starts.

pub mod local;

use std::io;
use std::net::ToSocketAddrs;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls};

use crate::cli::Method;
use crate::config::TableName;
use crate::rows::Schema;
use crate::sink::SinkError;
use crate::target::PgTarget;

/// The ledger table: one row per committed batch, written in the batch's own transaction.
pub const LEDGER_TABLE: &str = "loader_ledger";
/// The ledger's primary key (run, source, batch): a second commit of one batch violates it.
pub const LEDGER_KEY: &str = "loader_ledger_key";

/// Resolves every TCP host name once, so that workers connect by address and no resolver thread
/// is started per connection; sets the connect timeout and TCP keepalives (a dead server or a
/// half-open connection is noticed within about 25 s instead of hanging a worker).
pub fn resolve(target: &PgTarget, connect_timeout: Duration) -> Result<PgTarget, SinkError> {
    let mut resolved = target.clone();
    let config = resolved.config_mut();
    config
        .connect_timeout(connect_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3);
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
                    .ok_or_else(|| SinkError::Permanent {
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

/// Opens one connection.
pub fn connect(target: &PgTarget) -> Result<Client, SinkError> {
    target
        .config()
        .connect(NoTls)
        .map_err(|err| classify(&err, target, None))
}

/// Decides whether a driver error is worth retrying, and words it with the cause and the fix.
pub fn classify(err: &postgres::Error, target: &PgTarget, table: Option<&TableName>) -> SinkError {
    let transient = |kind, message: String| SinkError::Transient { kind, message };
    let permanent = |kind, message: String| SinkError::Permanent { kind, message };
    let Some(db) = err.as_db_error() else {
        let io_cause =
            std::error::Error::source(err).and_then(|source| source.downcast_ref::<io::Error>());
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
                 password (given in the target or PGPASSWORD; ~/.pgpass is not read)",
                target.user()
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

/// Creates, checks and truncates the target table and creates the ledger, on one connection,
/// before any worker starts.
pub fn prepare(
    target: &PgTarget,
    table: &TableName,
    schema: &Schema,
    method: Method,
    create: bool,
    truncate: bool,
) -> Result<(), SinkError> {
    let mut client = connect(target)?;
    let classify_for_table = |err: postgres::Error| classify(&err, target, Some(table));
    if create {
        let columns: Vec<String> = schema
            .columns
            .iter()
            .map(|column| {
                format!(
                    "{} {}",
                    crate::config::quote_ident(column.name),
                    column.sql_type.pg_name()
                )
            })
            .collect();
        create_if_missing(
            &mut client,
            &format!(
                "CREATE TABLE IF NOT EXISTS {} ({})",
                table.quoted(),
                columns.join(", ")
            ),
        )
        .map_err(classify_for_table)?;
    }
    check_columns(&mut client, table, schema, method, target)?;
    create_if_missing(&mut client, &ledger_ddl(table)).map_err(classify_for_table)?;
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
    Ok(())
}

/// The ledger sits beside the target table, in the same schema.
pub fn ledger_table(table: &TableName) -> TableName {
    TableName {
        schema: table.schema.clone(),
        name: LEDGER_TABLE.into(),
    }
}

fn ledger_ddl(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (run_id text NOT NULL, source text NOT NULL, \
         batch_seq bigint NOT NULL, worker int NOT NULL, rows bigint NOT NULL, \
         first_row bigint NOT NULL, target_table text NOT NULL, \
         committed_at timestamptz NOT NULL DEFAULT now(), \
         CONSTRAINT {LEDGER_KEY} PRIMARY KEY (run_id, source, batch_seq))",
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

/// Checks that the table exists with every column of the schema; binary COPY also needs the exact
/// types, since the server does not convert binary values.
fn check_columns(
    client: &mut Client,
    table: &TableName,
    schema: &Schema,
    method: Method,
    target: &PgTarget,
) -> Result<(), SinkError> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 \
             AND NOT a.attisdropped",
            &[&table.quoted()],
        )
        .map_err(|err| classify(&err, target, Some(table)))?;
    if rows.is_empty() {
        return Err(SinkError::Permanent {
            kind: "missing_table",
            message: format!("table {table} does not exist at {target}; add --create to create it"),
        });
    }
    for column in schema.columns {
        let found = rows
            .iter()
            .find(|row| row.get::<_, String>(0) == column.name);
        let Some(row) = found else {
            return Err(SinkError::Permanent {
                kind: "schema",
                message: format!(
                    "table {table} has no column `{}`; it needs ({})",
                    column.name,
                    schema.quoted_column_list()
                ),
            });
        };
        let actual: String = row.get(1);
        if method == Method::CopyBinary && actual != column.sql_type.pg_name() {
            return Err(SinkError::Permanent {
                kind: "schema",
                message: format!(
                    "column `{}` of table {table} is {actual}, but binary COPY sends {}; alter the \
                     column or use --method copy-text",
                    column.name,
                    column.sql_type.pg_name()
                ),
            });
        }
    }
    Ok(())
}
