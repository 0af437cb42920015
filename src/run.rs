//! One load from start to end, for any mode: bring up the target (start the local cluster, prepare
//! the table and learn its column types, read the ledger for `--resume`), build the sink factory
//! and the mode's sources, run the engine, print and write the report, tear the target down, and
//! decide the exit code. The summary is printed on every path, failures included.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postgres::config::TargetSessionAttrs;
use serde_json::{json, Map, Value};

use crate::engine::{
    self, Counters, Job, ProgressOptions, RetryPolicy, Settlement, SinkFactory, SourceError,
    SourceFactory, SourceSummary, Stages, StopSignal, Throughput,
};
use crate::failure::Failure;
use crate::http_client::HttpOptions;
use crate::ledger::Committed;
use crate::metrics::MetricsServer;
use crate::pg::{self, local::LocalPostgres, Method};
use crate::reject::RejectLog;
use crate::report::{human, Report, EXIT_FATAL, EXIT_USAGE};
use crate::rows::{Columns, Schema};
use crate::sink::hosts::prepare_each;
use crate::sink::http::HttpSinkFactory;
use crate::sink::postgres::PgSinkFactory;
use crate::sink::stream::{OutputFormat, StreamSinkFactory};
use crate::sink::NullSinkFactory;
use crate::sql::TableName;
use crate::stats::Stats;
use crate::target::Target;

// A mode tells `run` what to record of its documents; the type is the ledger's, whose readers
// (the sinks' setup, ingest) act on it.
pub(crate) use crate::ledger::Documents;

/// Settings shared by every loading mode.
#[derive(Debug, Clone)]
pub(crate) struct LoadConfig {
    pub target: Target,
    pub threads: usize,
    pub batch: usize,
    /// Batches per PostgreSQL transaction.
    pub commit_every: usize,
    pub table: TableName,
    pub create: bool,
    pub truncate: bool,
    pub method: Method,
    pub pin: bool,
    pub keep: bool,
    pub report: Option<PathBuf>,
    pub progress_every: Duration,
    pub quiet: bool,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    pub reject_file: Option<PathBuf>,
    pub max_rejects: u64,
    /// How HTTP targets are spoken to.
    pub http: HttpOptions,
    /// Where the Prometheus endpoint listens.
    pub metrics_addr: Option<SocketAddr>,
    /// How long it keeps serving after the load.
    pub metrics_linger: Duration,
}

/// What a mode hands to [`run`].
pub(crate) struct Load<'a> {
    /// `gen`, `copy`, …: names the mode in the summary and report, and is the ledger's source.
    pub mode: &'static str,
    pub config: &'a LoadConfig,
    /// The columns the mode writes.
    pub columns: Columns,
    /// Builds the sources once the target is ready.
    pub sources: &'a mut dyn SourcePlan,
    /// `--run-id`: the run's name in the ledger (else a new one).
    pub run_id: Option<String>,
    /// `--resume`: skip the batches the ledger shows committed by `run_id`.
    pub resume: bool,
    /// Rows expected in all, when known (for the progress bar).
    pub total_rows: Option<u64>,
    pub duration: Option<Duration>,
    /// Row format of the stream targets.
    pub output_format: OutputFormat,
    /// Mode-specific settings for the report's `config`.
    pub settings: Map<String, Value>,
    /// Whether the mode records whole documents (ingest), and whether this run forgets the
    /// earlier runs' records.
    pub documents: Documents,
    /// The mode's stages in front of the workers, for the progress line and the report.
    pub stages: Option<&'a dyn Stages>,
}

/// A mode's sources, built once the target's columns (typed) and committed batches are known.
pub(crate) trait SourcePlan {
    fn start(
        &mut self,
        schema: &Schema,
        committed: Committed,
        workers: usize,
    ) -> Result<Box<dyn SourceFactory + '_>, SourceError>;
}

/// The target, ready to load: its sinks, the typed columns to load, what the run committed.
struct Prepared {
    sinks: Box<dyn SinkFactory>,
    schema: Schema,
    committed: Committed,
    /// How rows are written, for PostgreSQL targets (the others have one way).
    method: Option<Method>,
}

/// Runs the load and returns the process exit code.
pub(crate) fn run(load: Load<'_>, signal: &StopSignal) -> u8 {
    let config = load.config;
    let run_id = load.run_id.clone().unwrap_or_else(new_run_id);
    // Before the local cluster starts: a port in use must not leave one behind.
    let counters = Arc::new(Counters::new(config.threads));
    let metrics = match config.metrics_addr {
        Some(address) => match MetricsServer::start(address, Arc::clone(&counters)) {
            Ok(server) => {
                if !config.quiet {
                    eprintln!("loader: metrics at http://{}/metrics", server.address());
                }
                Some(server)
            }
            Err(message) => {
                eprintln!("loader: error: {message}");
                return EXIT_USAGE;
            }
        },
        None => None,
    };

    let mut local = None;
    let target = match &config.target {
        Target::Local => match start_local(config.quiet) {
            Ok(cluster) => {
                let target = Target::Postgres(cluster.target());
                local = Some(cluster);
                target
            }
            Err(message) => {
                eprintln!("loader: error: {message}");
                return EXIT_FATAL;
            }
        },
        other => other.clone(),
    };

    let reject_path = config
        .reject_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("rejects-{run_id}.ndjson")));
    let rejects = RejectLog::new(reject_path, load.resume, config.max_rejects);
    let mut setup = Stats::default();
    let mut method = None;
    let mut skipped = SourceSummary::default();
    let mut hosts = Vec::new();
    let mut settlement = Settlement::default();
    let no_workers = |failure: Option<String>| engine::Outcome {
        workers: Vec::new(),
        elapsed: Duration::ZERO,
        failure,
        peak_threads: 0,
        throughput: Throughput::default(),
    };
    let outcome = match prepare(&load, &target, &run_id, signal, &mut setup) {
        Ok(prepared) => {
            method = prepared.method;
            match load
                .sources
                .start(&prepared.schema, prepared.committed, config.threads)
            {
                Ok(sources) => {
                    let mut outcome = engine::run(&Job {
                        threads: config.threads,
                        pin: config.pin,
                        retry: config.retry,
                        duration: load.duration,
                        progress: ProgressOptions {
                            every: config.progress_every,
                            quiet: config.quiet,
                            total: load.total_rows,
                            stages: load.stages,
                        },
                        counters: &counters,
                        sources: sources.as_ref(),
                        sinks: prepared.sinks.as_ref(),
                        rejects: &rejects,
                        signal,
                    });
                    hosts = prepared.sinks.hosts().to_vec();
                    settlement = prepared.sinks.settle();
                    match sources.finish() {
                        Ok(summary) => skipped = summary,
                        Err(err) => {
                            outcome.failure.get_or_insert(err.to_string());
                        }
                    }
                    outcome
                }
                Err(err) => no_workers(Some(err.to_string())),
            }
        }
        Err(err) => {
            setup.record_error(err.kind());
            // Giving up on setup because of Ctrl-C is an interruption, not a failure.
            no_workers((!signal.is_interrupted()).then(|| err.to_string()))
        }
    };

    let mut settings = Map::new();
    settings.insert("target".into(), json!(target.to_string()));
    settings.insert("table".into(), json!(config.table.to_string()));
    if let Some(method) = method {
        settings.insert("method".into(), json!(method));
    }
    settings.insert("threads".into(), json!(config.threads));
    settings.insert("batch".into(), json!(config.batch));
    if method.is_some() {
        settings.insert("commit_every".into(), json!(config.commit_every));
    }
    settings.insert("pin".into(), json!(config.pin));
    settings.insert("run_id".into(), json!(run_id));
    settings.extend(load.settings.clone());
    let mut report = Report::new(
        load.mode,
        &outcome,
        &setup,
        signal.is_interrupted(),
        load.resume.then_some(skipped),
        settings,
    );
    if !hosts.is_empty() {
        for batch in &settlement.unverified {
            eprintln!(
                "loader: warning: batch {} ({} rows) was in doubt on {host} when it failed and \
                 was loaded through another host; {host} was unreachable after the load, so if \
                 its {} has the row run_id = '{run_id}', batch_seq = {}, those rows are on two \
                 hosts",
                batch.batch,
                batch.rows,
                pg::ledger_table(&config.table),
                batch.batch,
                host = batch.host,
            );
        }
        report.add_hosts(&hosts, &outcome, settlement);
    }
    if let Some(stages) = load.stages {
        let (figures, lines) = stages.report();
        report.stages = Some(figures);
        report.stage_lines = lines;
    }
    if rejects.count() > 0 {
        report.reject_file = Some(rejects.path().display().to_string());
        report.rejects = rejects.by_kind();
    }

    if let Some(error) = &report.error {
        eprintln!("loader: error: {error}");
    }
    if !config.quiet {
        let summary = human::summary(&report);
        if matches!(target, Target::Stdout) {
            eprint!("{summary}");
        } else {
            print!("{summary}");
        }
    }
    let mut exit_code = report.exit_code;
    if let Some(path) = &config.report {
        if let Err(err) = report.write_to(path) {
            eprintln!(
                "loader: error: cannot write the report to {}: {err}",
                path.display()
            );
            exit_code = exit_code.max(EXIT_FATAL);
        }
    }
    if let Some(server) = metrics {
        linger(config.metrics_linger, signal);
        server.stop();
    }
    if let Some(cluster) = local {
        exit_code = exit_code.max(finish_local(cluster, config.keep, config.quiet));
    }
    exit_code
}

/// Waits `--metrics-linger` (a Ctrl-C cuts it short), so that a last scrape sees the final figures.
fn linger(time: Duration, signal: &StopSignal) {
    let until = Instant::now() + time;
    while Instant::now() < until && !signal.is_interrupted() {
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
}

/// Prepares the target: for PostgreSQL the table (created, checked, typed) and the ledger of the
/// run; then the sink factory.
fn prepare(
    load: &Load<'_>,
    target: &Target,
    run_id: &str,
    signal: &StopSignal,
    setup: &mut Stats,
) -> Result<Prepared, Failure> {
    let config = load.config;
    let on_retry = |err: &Failure, pause: Duration| {
        setup.record_retry(err.kind());
        if !config.quiet {
            eprintln!("loader: {err}; retrying in {:.1}s", pause.as_secs_f64());
        }
    };
    if let Target::Http(http) = target {
        let prepared = config.retry.run(
            Some(signal.stopping_flag()),
            || {
                HttpSinkFactory::prepare(
                    http,
                    &config.http,
                    &config.table,
                    &load.columns,
                    config.create,
                )
            },
            on_retry,
        )?;
        warn_left_out(&prepared.left_out);
        return Ok(Prepared {
            sinks: Box::new(prepared.sinks),
            schema: prepared.schema,
            committed: Committed::default(),
            method: None,
        });
    }
    let Target::Postgres(pg_target) = target else {
        let schema = match &load.columns {
            Columns::Fixed(schema) => schema.clone(),
            Columns::Named(names) => Schema::text(names),
            Columns::Table => {
                return Err(Failure::Permanent {
                    kind: "schema",
                    message: format!(
                        "loading into {target} needs the column names: give --columns or --header"
                    ),
                })
            }
        };
        let sinks: Box<dyn SinkFactory> = match target {
            Target::Stdout => Box::new(StreamSinkFactory::stdout(load.output_format, &schema)?),
            Target::File(path) => {
                Box::new(StreamSinkFactory::file(path, load.output_format, &schema)?)
            }
            Target::Null => Box::new(NullSinkFactory),
            _ => {
                return Err(Failure::Permanent {
                    kind: "internal",
                    message: format!("the target {target} was not started"),
                })
            }
        };
        return Ok(Prepared {
            sinks,
            schema,
            committed: Committed::default(),
            method: None,
        });
    };
    // With target_session_attrs (read-write, primary, …) the hosts are libpq's failover list, for
    // the driver to pick one from; otherwise the workers spread over them.
    let split = if pg_target.config().get_target_session_attrs() == TargetSessionAttrs::Any {
        pg_target.split_hosts()
    } else {
        vec![pg_target.clone()]
    };
    let several = split.len() > 1;
    // A throwaway cluster starts empty: the local target always creates the table.
    let create = config.create || matches!(config.target, Target::Local);
    let (schema, hosts, left_out) = config.retry.run(
        Some(signal.stopping_flag()),
        || {
            let mut prepared = Vec::new();
            let (schema, left_out) = prepare_each(split.len(), |host| {
                let resolved = match pg::resolve(&split[host], config.connect_timeout) {
                    // One host of several that does not resolve is left out, not fatal.
                    Err(Failure::Permanent { kind, message }) if several => {
                        Err(Failure::Transient { kind, message })
                    }
                    other => other,
                }?;
                // Worker `i` connects to host `i % hosts` first.
                let workers = (config.threads + split.len() - 1 - host) / split.len();
                let schema = pg::prepare(
                    &resolved,
                    workers,
                    &config.table,
                    &load.columns,
                    config.method,
                    create,
                    config.truncate,
                )?;
                prepared.push(resolved);
                Ok(schema)
            })?;
            Ok((schema, prepared, left_out))
        },
        on_retry,
    )?;
    let named: Vec<(String, Failure)> = left_out
        .iter()
        .map(|(host, err)| (split[*host].host_name(0), err.clone()))
        .collect();
    warn_left_out(&named);
    let reads_ledgers = load.run_id.is_some() || load.documents != Documents::NotRecorded;
    if let (true, Some((host, err))) = (reads_ledgers, named.first()) {
        let what = if load.run_id.is_some() {
            "--run-id reads the ledger"
        } else {
            "ingest reads which documents were loaded from the ledger"
        };
        return Err(Failure::Permanent {
            kind: "ledger",
            message: format!("{what} of every host, and {host} cannot be reached: {err}"),
        });
    }
    let mut committed = match &load.run_id {
        Some(run_id) => {
            // Separate clusters each hold their share of the ledger: read them all.
            let mut committed = Committed::default();
            for host in &hosts {
                committed.merge(pg::committed(host, &config.table, run_id, load.mode)?);
            }
            if !load.resume && !committed.is_empty() {
                return Err(Failure::Permanent {
                    kind: "run_id",
                    message: format!(
                        "run `{run_id}` already committed {} batches into {}; add --resume to \
                         continue it, or choose another --run-id",
                        committed.len(),
                        config.table
                    ),
                });
            }
            committed
        }
        None => Committed::default(),
    };
    if load.documents != Documents::NotRecorded {
        let forget = load.documents == Documents::Fresh || config.truncate;
        for host in &hosts {
            committed
                .documents
                .merge(pg::prepare_documents(host, &config.table, forget)?);
        }
    }
    let mut method = config.method;
    if method == Method::CopyBinary && !schema.is_binary_encodable() {
        method = Method::CopyText;
        if !config.quiet {
            eprintln!(
                "loader: {} has a column type without a binary encoder here; loading with text COPY",
                config.table
            );
        }
    }
    let sinks = Box::new(PgSinkFactory::new(
        hosts,
        config.table.clone(),
        &schema,
        method,
        run_id.to_string(),
        load.mode.to_string(),
        config.commit_every,
    ));
    Ok(Prepared {
        sinks,
        schema,
        committed,
        method: Some(method),
    })
}

/// Says which hosts of the target are left out of the run, and why.
fn warn_left_out(left_out: &[(String, Failure)]) {
    for (host, err) in left_out {
        eprintln!("loader: warning: host {host} is left out of this run: {err}");
    }
}

fn start_local(quiet: bool) -> Result<LocalPostgres, String> {
    let cluster = LocalPostgres::start()
        .map_err(|err| format!("cannot start the local PostgreSQL: {err}"))?;
    if !quiet {
        eprintln!(
            "loader: started a throwaway PostgreSQL at {} (data in {})",
            cluster.url(),
            cluster.data_dir().display()
        );
    }
    Ok(cluster)
}

/// Stops the local cluster, or keeps it and says how to reach and stop it.
fn finish_local(cluster: LocalPostgres, keep: bool, quiet: bool) -> u8 {
    if keep {
        let (url, stop) = (cluster.url(), cluster.stop_command());
        cluster.keep();
        eprintln!(
            "loader: the local PostgreSQL keeps running: psql {url}\nloader: stop it with: {stop}"
        );
        return 0;
    }
    match cluster.stop() {
        Ok(()) => {
            if !quiet {
                eprintln!("loader: stopped the throwaway PostgreSQL (--keep keeps it running)");
            }
            0
        }
        Err(err) => {
            eprintln!("loader: error: cannot stop the local PostgreSQL: {err}");
            EXIT_FATAL
        }
    }
}

/// A run id unique enough for the ledger: the start time and a random suffix.
fn new_run_id() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{seconds}-{:08x}", fastrand::u32(..))
}
