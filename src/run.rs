//! One load from start to end, for any mode: bring up the target (start the local cluster; then
//! `sink::prepare` prepares the table, learns its column types, reads the ledger for `--resume` and
//! builds the sink factory), build the mode's sources, run the engine, print and write the report,
//! tear the target down, and decide the exit code. The summary is printed on every path, failures
//! included. [`run`] reads as these steps, each a function below.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::engine::{
    self, Counters, Goal, Job, ProgressOptions, RetryPolicy, Settlement, SourceError,
    SourceFactory, SourceSummary, Stages, StopSignal, Throughput,
};
use crate::failure::USAGE;
use crate::http_client::HttpOptions;
use crate::ledger::Committed;
use crate::metrics::MetricsServer;
use crate::pg::{self, activity, local::LocalPostgres, Method};
use crate::reject::RejectLog;
use crate::report::{human, Report, ServerFigures, EXIT_FATAL, EXIT_USAGE};
use crate::rows::{Columns, Schema};
use crate::sampler::Sampler;
use crate::sink::http::{clickhouse_time, elastic_time};
use crate::sink::{self, stream::OutputFormat};
use crate::sql::TableName;
use crate::stats::Stats;
use crate::target::HttpProtocol;
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
    pub report: Vec<PathBuf>,
    pub progress_every: Duration,
    pub quiet: bool,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// `--wait-for-target`: how long the setup retries a target that refuses connections.
    pub wait_for_target: Option<Duration>,
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
    /// `gen`, `copy`, …: names the mode in the summary and report.
    pub mode: &'static str,
    /// What the ledger records as the run's source, checked on `--resume`: the mode, and for copy
    /// which inputs it reads; the mode's name when `None`.
    pub source: Option<String>,
    pub config: &'a LoadConfig,
    /// The columns the mode writes.
    pub columns: Columns,
    /// The types of [`Columns::Sniffed`] were inferred from a sample of the input (copy's
    /// sniffer), not declared by it (a Parquet schema): a value the target refuses then
    /// disagreed with the sample.
    pub types_sniffed: bool,
    /// Builds the sources once the target is ready.
    pub sources: &'a mut dyn SourcePlan,
    /// `--run-id`: the run's name in the ledger (else a new one).
    pub run_id: Option<String>,
    /// `--resume`: skip the batches the ledger shows committed by `run_id`.
    pub resume: bool,
    /// What the load is to reach, when known (for the progress line's share and time left).
    pub goal: Option<Goal<'a>>,
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

/// What the engine run leaves for the report.
struct Ran {
    outcome: engine::Outcome,
    /// How rows were written, for PostgreSQL targets (the others have one way).
    method: Option<Method>,
    /// What the sources skipped as committed before (`--resume`).
    skipped: SourceSummary,
    /// The target's hosts when it has several, and what became of the batches moved between them.
    hosts: Vec<String>,
    settlement: Settlement,
    /// What the server's watch saw (PostgreSQL, ClickHouse, Elasticsearch and OpenSearch).
    server_time: Option<ServerFigures>,
    /// The setup failed for a reason the command line must fix: the one line to print.
    usage_error: Option<String>,
    /// The target server's version, when it tells it.
    server_version: Option<String>,
    /// The target's columns have the types copy mode sniffed from its sample (the load created
    /// the table from them, or the table already had them): a value the target refuses then
    /// disagreed with the sample.
    typed_by_sample: bool,
}

/// Runs the load and returns the process exit code.
pub(crate) fn run(load: Load<'_>, signal: &StopSignal) -> u8 {
    run_with_report(load, signal).0
}

/// Runs the load and returns the process exit code and its report (none when the load could
/// not start: a metrics port in use, a local cluster that did not start).
pub(crate) fn run_with_report(mut load: Load<'_>, signal: &StopSignal) -> (u8, Option<Report>) {
    let config = load.config;
    let run_id = load.run_id.clone().unwrap_or_else(new_run_id);
    // Before the local cluster starts: a port in use must not leave one behind.
    let counters = Arc::new(Counters::new(config.threads));
    let metrics = match start_metrics(config, &counters) {
        Ok(metrics) => metrics,
        Err(code) => return (code, None),
    };
    let (target, local) = match start_target(config) {
        Ok(started) => started,
        Err(code) => return (code, None),
    };
    let reject_path = config
        .reject_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("rejects-{run_id}.ndjson")));
    let rejects = RejectLog::new(reject_path, load.resume, config.max_rejects);
    let mut setup = Stats::default();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let ran = run_engine(
        &mut load, &target, &run_id, &counters, &rejects, signal, &mut setup,
    );
    if let Some(message) = &ran.usage_error {
        eprintln!("loader: error: {message}");
        return (
            EXIT_USAGE.max(tear_down(metrics, local, config, signal)),
            None,
        );
    }
    let settings = report_settings(&load, &target, &run_id, ran.method);
    let mut report = build_report(&load, ran, &setup, &rejects, signal, settings, &run_id);
    report.started_at = started_at;
    let exit_code = print_report(&report, config, &target);
    let exit_code = exit_code.max(tear_down(metrics, local, config, signal));
    (exit_code, Some(report))
}

/// Starts the Prometheus endpoint, if `--metrics-addr` asks for one; a failure is the exit code.
fn start_metrics(
    config: &LoadConfig,
    counters: &Arc<Counters>,
) -> Result<Option<MetricsServer>, u8> {
    match config.metrics_addr {
        Some(address) => match MetricsServer::start(address, Arc::clone(counters)) {
            Ok(server) => {
                if !config.quiet {
                    eprintln!("loader: metrics at http://{}/metrics", server.address());
                }
                Ok(Some(server))
            }
            Err(message) => {
                eprintln!("loader: error: {message}");
                Err(EXIT_USAGE)
            }
        },
        None => Ok(None),
    }
}

/// The target to load into: the local target starts its throwaway cluster (returned too, for
/// [`tear_down`]) and becomes that PostgreSQL. A failure to start is the exit code.
fn start_target(config: &LoadConfig) -> Result<(Target, Option<LocalPostgres>), u8> {
    match &config.target {
        Target::Local => match start_local(config.quiet) {
            Ok(cluster) => Ok((Target::Postgres(cluster.target()), Some(cluster))),
            Err(message) => {
                eprintln!("loader: error: {message}");
                Err(EXIT_FATAL)
            }
        },
        other => Ok((other.clone(), None)),
    }
}

/// Prepares the target, builds the mode's sources and runs the engine. A failure before the
/// workers start is the outcome's failure; the setup's errors and retries go into `setup`.
fn run_engine(
    load: &mut Load<'_>,
    target: &Target,
    run_id: &str,
    counters: &Arc<Counters>,
    rejects: &RejectLog,
    signal: &StopSignal,
    setup: &mut Stats,
) -> Ran {
    let config = load.config;
    let mut method = None;
    let mut skipped = SourceSummary::default();
    let mut hosts = Vec::new();
    let mut settlement = Settlement::default();
    let mut server_time = None;
    let mut typed_by_sample = false;
    let mut usage_error = None;
    let mut server_version = None;
    let no_workers = |failure: Option<String>| engine::Outcome {
        workers: Vec::new(),
        elapsed: Duration::ZERO,
        failure,
        peak_threads: 0,
        throughput: Throughput::default(),
    };
    // A signal before the load began (copy mode awaiting its first input): nothing to prepare,
    // and the load ends as interrupted.
    if signal.is_interrupted() {
        return Ran {
            outcome: no_workers(None),
            method,
            skipped,
            hosts,
            settlement,
            server_time,
            usage_error,
            server_version,
            typed_by_sample,
        };
    }
    let prepared = sink::prepare(target, &sink_setup(load, run_id), signal, setup);
    let outcome = match prepared {
        Ok(prepared) => {
            method = prepared.method;
            server_version = prepared.server_version;
            // Only PostgreSQL's prepared columns are the table's own types, read from its
            // catalog; the other sinks hand back the columns they were given.
            typed_by_sample = load.types_sniffed
                && matches!(target, Target::Postgres(_))
                && matches!(
                    &load.columns,
                    Columns::Sniffed(sniffed) if sniffed.same_types(&prepared.schema)
                );
            match load
                .sources
                .start(&prepared.schema, prepared.committed, config.threads)
            {
                Ok(sources) => {
                    let sampler = Mutex::new(None);
                    let since = SystemTime::now();
                    let start_sampler = || *sampler.lock() = watch_server(target, config, since);
                    let mut outcome = engine::run(&Job {
                        threads: config.threads,
                        pin: config.pin,
                        retry: config.retry,
                        wait_for_target: waiting_policy(config),
                        duration: load.duration,
                        progress: ProgressOptions {
                            every: config.progress_every,
                            quiet: config.quiet,
                            goal: load.goal,
                            stages: load.stages,
                        },
                        counters,
                        sources: sources.as_ref(),
                        sinks: prepared.sinks.as_ref(),
                        rejects,
                        signal,
                        on_start: &start_sampler,
                    });
                    server_time = sampler.into_inner().and_then(Sampler::finish);
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
        Err(err) if err.kind() == USAGE => {
            usage_error = Some(err.to_string());
            no_workers(None)
        }
        Err(err) => {
            setup.record_error(err.kind());
            // Giving up on setup because of Ctrl-C is an interruption, not a failure.
            no_workers((!signal.is_interrupted()).then(|| err.to_string()))
        }
    };
    Ran {
        outcome,
        method,
        skipped,
        hosts,
        settlement,
        server_time,
        usage_error,
        server_version,
        typed_by_sample,
    }
}

/// Starts the watch of the target's server, for the targets that have one; `since` is a moment
/// before the workers' first request.
fn watch_server(
    target: &Target,
    config: &LoadConfig,
    since: SystemTime,
) -> Option<Sampler<ServerFigures>> {
    match target {
        Target::Postgres(pg) => {
            let (pg, timeout) = (pg.clone(), config.connect_timeout);
            Some(Sampler::start(move |stop| {
                activity::watch(&pg, timeout, stop).map(ServerFigures::Postgres)
            }))
        }
        Target::Http(http) if http.protocol == HttpProtocol::ClickHouse => {
            let (http, options, table) = (http.clone(), config.http.clone(), config.table.clone());
            let workers = config.threads;
            Some(Sampler::start(move |stop| {
                let watched = clickhouse_time::Watched {
                    target: &http,
                    options: &options,
                    table: &table,
                    workers,
                    since,
                };
                clickhouse_time::watch(&watched, stop).map(ServerFigures::ClickHouse)
            }))
        }
        Target::Http(http)
            if matches!(
                http.protocol,
                HttpProtocol::Elasticsearch | HttpProtocol::OpenSearch
            ) =>
        {
            let (http, options) = (http.clone(), config.http.clone());
            Some(Sampler::start(move |stop| {
                elastic_time::watch(&http, &options, stop).map(ServerFigures::Elastic)
            }))
        }
        _ => None,
    }
}

/// With `--wait-for-target TIME`: retries of a target that does not answer yet, for TIME and as
/// often as the backoff allows.
fn waiting_policy(config: &LoadConfig) -> Option<RetryPolicy> {
    config.wait_for_target.map(|wait| RetryPolicy {
        max_retries: u32::MAX,
        max_elapsed: wait,
        ..config.retry
    })
}

/// What preparing the target needs of the load.
fn sink_setup<'a>(load: &'a Load<'_>, run_id: &'a str) -> sink::Setup<'a> {
    let config = load.config;
    sink::Setup {
        source: load.source.as_deref().unwrap_or(load.mode),
        table: &config.table,
        columns: &load.columns,
        // A throwaway cluster starts empty: the local target always creates the table.
        create: config.create || matches!(config.target, Target::Local),
        truncate: config.truncate,
        method: config.method,
        threads: config.threads,
        commit_every: config.commit_every,
        retry: waiting_policy(config).unwrap_or(config.retry),
        waits_for_target: config.wait_for_target.is_some(),
        connect_timeout: config.connect_timeout,
        http: &config.http,
        output_format: load.output_format,
        run_id,
        given_run_id: load.run_id.as_deref(),
        resume: load.resume,
        documents: load.documents,
        quiet: config.quiet,
    }
}

/// The report's `config`: the load's settings, then the mode's own.
fn report_settings(
    load: &Load<'_>,
    target: &Target,
    run_id: &str,
    method: Option<Method>,
) -> Map<String, Value> {
    let config = load.config;
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
    settings
}

/// The load's report: the outcome, the rows per host (a batch that may be on two hosts is
/// warned about), the mode's stages, the rejects.
fn build_report(
    load: &Load<'_>,
    ran: Ran,
    setup: &Stats,
    rejects: &RejectLog,
    signal: &StopSignal,
    settings: Map<String, Value>,
    run_id: &str,
) -> Report {
    let server_version = ran.server_version.clone();
    let mut report = Report::new(
        load.mode,
        &ran.outcome,
        setup,
        rejects,
        signal.is_interrupted(),
        load.resume.then_some(ran.skipped),
        settings,
    );
    report.server_version = server_version;
    if ran.typed_by_sample {
        report.count_disagreements_with_sample();
    }
    if !ran.hosts.is_empty() {
        for batch in &ran.settlement.unverified {
            eprintln!(
                "loader: warning: batch {} ({} rows) was in doubt on {host} when it failed and \
                 was loaded through another host; {host} was unreachable after the load, so if \
                 its {} has the row run_id = '{run_id}', batch_seq = {}, those rows are on two \
                 hosts",
                batch.batch,
                batch.rows,
                pg::ledger_table(&load.config.table),
                batch.batch,
                host = batch.host,
            );
        }
        report.add_hosts(&ran.hosts, &ran.outcome, ran.settlement);
    }
    if let Some(server) = ran.server_time {
        report.add_server(server);
    }
    if let Some(stages) = load.stages {
        let (figures, lines) = stages.report();
        report.stages = Some(figures);
        report.stage_lines = lines;
    }
    report
}

/// Prints the error and the summary (to stderr when the rows went to stdout), writes the report
/// file, and returns the exit code.
fn print_report(report: &Report, config: &LoadConfig, target: &Target) -> u8 {
    if let Some(error) = &report.error {
        eprintln!("loader: error: {error}");
    }
    if !config.quiet {
        let summary = human::summary(report);
        if matches!(target, Target::Stdout) {
            eprint!("{summary}");
        } else {
            human::print_stdout(&summary);
        }
    }
    let mut exit_code = report.exit_code;
    for path in &config.report {
        if let Err(err) = report.write_to(path) {
            eprintln!(
                "loader: error: cannot write the report to {}: {err}",
                path.display()
            );
            exit_code = exit_code.max(EXIT_FATAL);
        }
    }
    exit_code
}

/// Stops the metrics endpoint after `--metrics-linger`, and the local cluster unless `--keep`;
/// returns the exit code of the cluster's stop.
fn tear_down(
    metrics: Option<MetricsServer>,
    local: Option<LocalPostgres>,
    config: &LoadConfig,
    signal: &StopSignal,
) -> u8 {
    if let Some(server) = metrics {
        linger(config.metrics_linger, signal);
        server.stop();
    }
    match local {
        Some(cluster) => finish_local(cluster, config.keep, config.quiet),
        None => 0,
    }
}

/// Waits `--metrics-linger` (a Ctrl-C cuts it short), so that a last scrape sees the final figures.
fn linger(time: Duration, signal: &StopSignal) {
    let until = Instant::now() + time;
    while Instant::now() < until && !signal.is_interrupted() {
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
}

/// Starts the throwaway cluster of the `local` target and says where it is.
pub(crate) fn start_local(quiet: bool) -> Result<LocalPostgres, String> {
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
pub(crate) fn finish_local(cluster: LocalPostgres, keep: bool, quiet: bool) -> u8 {
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
