//! Preparing a PostgreSQL target for a load: the hosts to spread the workers over, the table on
//! each (created, checked, typed; a host of several that cannot be reached is left out), the
//! ledgers read for `--run-id` and for ingest's documents, the way rows are written, and the
//! factory the workers share.

use std::time::Duration;

use postgres::config::TargetSessionAttrs;

use super::PgSinkFactory;
use crate::engine::StopSignal;
use crate::failure::Failure;
use crate::ledger::{Committed, Documents};
use crate::pg::{self, Method, PgTarget};
use crate::rows::Schema;
use crate::sink::hosts::{prepare_each, warn_left_out};
use crate::sink::{Prepared, Setup};

impl PgSinkFactory {
    /// Prepares `target` on each of its hosts, reads what the run committed, and builds the
    /// factory. Each retry of the hosts' setup is announced to `on_retry`.
    pub(crate) fn prepare(
        target: &PgTarget,
        setup: &Setup<'_>,
        signal: &StopSignal,
        on_retry: impl FnMut(&Failure, Duration),
    ) -> Result<Prepared, Failure> {
        let (schema, hosts) = prepare_hosts(target, setup, signal, on_retry)?;
        let committed = committed(&hosts, setup)?;
        let method = method_for(&schema, setup);
        let server_version = hosts.first().and_then(pg::server_version);
        let sinks = Box::new(PgSinkFactory::new(
            hosts,
            setup.table.clone(),
            &schema,
            method,
            setup.run_id.to_string(),
            setup.source.to_string(),
            setup.commit_every,
        ));
        Ok(Prepared {
            sinks,
            schema,
            server_version,
            committed,
            method: Some(method),
        })
    }
}

/// Prepares the table on each host of `target` and returns its typed columns and the hosts
/// prepared, each resolved. A host left out is named in a warning; none may be when the load
/// reads the ledgers, which every host holds a share of.
fn prepare_hosts(
    target: &PgTarget,
    setup: &Setup<'_>,
    signal: &StopSignal,
    on_retry: impl FnMut(&Failure, Duration),
) -> Result<(Schema, Vec<PgTarget>), Failure> {
    // With target_session_attrs (read-write, primary, …) the hosts are libpq's failover list, for
    // the driver to pick one from; otherwise the workers spread over them.
    let split = if target.config().get_target_session_attrs() == TargetSessionAttrs::Any {
        target.split_hosts()
    } else {
        vec![target.clone()]
    };
    let several = split.len() > 1;
    let (schema, hosts, left_out) = setup.retry.run(
        Some(signal.stopping_flag()),
        || {
            let mut prepared = Vec::new();
            let (schema, left_out) = prepare_each(split.len(), |host| {
                let resolved = match pg::resolve(&split[host], setup.connect_timeout) {
                    // One host of several that does not resolve is left out, not fatal.
                    Err(Failure::Permanent { kind, message }) if several => {
                        Err(Failure::Transient { kind, message })
                    }
                    other => other,
                }?;
                // Worker `i` connects to host `i % hosts` first.
                let workers = (setup.threads + split.len() - 1 - host) / split.len();
                let schema = pg::prepare(
                    &resolved,
                    workers,
                    setup.table,
                    setup.columns,
                    setup.method,
                    setup.create,
                    setup.truncate,
                )?;
                prepared.push(resolved);
                Ok(schema)
            })
            .map_err(|err| setup.first_contact(err))?;
            Ok((schema, prepared, left_out))
        },
        on_retry,
    )?;
    let named: Vec<(String, Failure)> = left_out
        .iter()
        .map(|(host, err)| (split[*host].host_name(0), err.clone()))
        .collect();
    warn_left_out(&named);
    let reads_ledgers = setup.given_run_id.is_some() || setup.documents != Documents::NotRecorded;
    if let (true, Some((host, err))) = (reads_ledgers, named.first()) {
        let what = if setup.given_run_id.is_some() {
            "--run-id reads the ledger"
        } else {
            "ingest reads which documents were loaded from the ledger"
        };
        return Err(Failure::Permanent {
            kind: "ledger",
            message: format!("{what} of every host, and {host} cannot be reached: {err}"),
        });
    }
    Ok((schema, hosts))
}

/// What the ledgers of `hosts` show committed: the batches of the run named by `--run-id` (which
/// must be resumed if it has any), and the documents loaded (ingest).
fn committed(hosts: &[PgTarget], setup: &Setup<'_>) -> Result<Committed, Failure> {
    let mut committed = match setup.given_run_id {
        Some(run_id) => {
            // Separate clusters each hold their share of the ledger: read them all.
            let mut committed = Committed::default();
            for host in hosts {
                committed.merge(pg::committed(host, setup.table, run_id, setup.source)?);
            }
            if !setup.resume && !committed.is_empty() {
                return Err(Failure::Permanent {
                    kind: "run_id",
                    message: format!(
                        "run `{run_id}` already committed {} batches into {}; add --resume to \
                         continue it, or choose another --run-id",
                        committed.len(),
                        setup.table
                    ),
                });
            }
            committed
        }
        None => Committed::default(),
    };
    if setup.documents != Documents::NotRecorded {
        let forget = setup.documents == Documents::Fresh || setup.truncate;
        for host in hosts {
            committed
                .documents
                .merge(pg::prepare_documents(host, setup.table, forget)?);
        }
    }
    Ok(committed)
}

/// `--method`, unless it is binary COPY and a column's type has no binary encoder here: then text
/// COPY, said unless `--quiet`.
fn method_for(schema: &Schema, setup: &Setup<'_>) -> Method {
    let mut method = setup.method;
    if method == Method::CopyBinary && !schema.is_binary_encodable() {
        method = Method::CopyText;
        if !setup.quiet {
            eprintln!(
                "loader: {} has a column type without a binary encoder here; loading with text COPY",
                setup.table
            );
        }
    }
    method
}
