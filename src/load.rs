//! One load from start to end, for any mode: bring up the target (start the local cluster, prepare
//! the table), build the sink factory, run the engine, print and write the report, tear the target
//! down, and decide the exit code. The summary is printed on every path, failures included.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::cli::OutputFormat;
use crate::config::LoadConfig;
use crate::engine::{self, Job, ProgressOptions, SourceFactory, StopSignal};
use crate::pg::{self, local::LocalPostgres};
use crate::report::{human, Report, EXIT_FATAL};
use crate::rows::Schema;
use crate::sink::postgres::PgSinkFactory;
use crate::sink::stream::StreamSinkFactory;
use crate::sink::{NullSinkFactory, SinkError, SinkFactory};
use crate::stats::Stats;
use crate::target::Target;

/// What a mode hands to [`run`].
pub struct Load<'a> {
    /// `gen`, `copy`, …: names the mode in the summary and report.
    pub mode: &'static str,
    pub config: &'a LoadConfig,
    pub schema: &'a Schema,
    pub sources: &'a dyn SourceFactory,
    /// Rows expected in all, when known (for the progress bar).
    pub total_rows: Option<u64>,
    pub duration: Option<Duration>,
    /// Row format of the stream targets.
    pub output_format: OutputFormat,
    /// Mode-specific settings for the report's `config`.
    pub settings: Map<String, Value>,
}

/// Runs the load and returns the process exit code.
pub fn run(load: &Load<'_>, signal: &StopSignal) -> u8 {
    let config = load.config;
    let run_id = new_run_id();
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

    let mut setup = Stats::default();
    let outcome = match open_sinks(load, &target, &run_id, signal, &mut setup) {
        Ok(sinks) => engine::run(&Job {
            threads: config.threads,
            pin: config.pin,
            retry: config.retry,
            duration: load.duration,
            progress: ProgressOptions {
                every: config.progress_every,
                quiet: config.quiet,
                total: load.total_rows,
            },
            sources: load.sources,
            sinks: sinks.as_ref(),
            signal,
        }),
        Err(err) => {
            setup.record_error(err.kind());
            // Giving up on setup because of Ctrl-C is an interruption, not a failure.
            let failure = (!signal.is_interrupted()).then(|| err.to_string());
            engine::Outcome {
                workers: Vec::new(),
                elapsed: Duration::ZERO,
                failure,
                peak_threads: 0,
            }
        }
    };

    let mut settings = Map::new();
    settings.insert("target".into(), json!(target.to_string()));
    settings.insert("table".into(), json!(config.table.to_string()));
    settings.insert("method".into(), json!(config.method));
    settings.insert("threads".into(), json!(config.threads));
    settings.insert("batch".into(), json!(config.batch));
    settings.insert("pin".into(), json!(config.pin));
    settings.insert("run_id".into(), json!(run_id));
    settings.extend(load.settings.clone());
    let report = Report::new(
        load.mode,
        &outcome,
        &setup,
        signal.is_interrupted(),
        settings,
    );

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
    if let Some(cluster) = local {
        exit_code = exit_code.max(finish_local(cluster, config.keep, config.quiet));
    }
    exit_code
}

/// Builds the sink factory for the target, preparing a PostgreSQL table first.
fn open_sinks(
    load: &Load<'_>,
    target: &Target,
    run_id: &str,
    signal: &StopSignal,
    setup: &mut Stats,
) -> Result<Box<dyn SinkFactory>, SinkError> {
    let config = load.config;
    Ok(match target {
        Target::Null => Box::new(NullSinkFactory),
        Target::Stdout => Box::new(StreamSinkFactory::stdout(load.output_format, load.schema)?),
        Target::File(path) => Box::new(StreamSinkFactory::file(
            path,
            load.output_format,
            load.schema,
        )?),
        Target::Local => {
            return Err(SinkError::Permanent {
                kind: "internal",
                message: "the local target was not started".into(),
            })
        }
        Target::Postgres(pg_target) => {
            let resolved = pg::resolve(pg_target, config.connect_timeout)?;
            // A throwaway cluster starts empty: the local target always creates the table.
            let create = config.create || matches!(config.target, Target::Local);
            config.retry.run(
                Some(signal.stopping_flag()),
                || {
                    pg::prepare(
                        &resolved,
                        &config.table,
                        load.schema,
                        config.method,
                        create,
                        config.truncate,
                    )
                },
                |err, pause| {
                    setup.record_retry(err.kind());
                    if !config.quiet {
                        eprintln!("loader: {err}; retrying in {:.1}s", pause.as_secs_f64());
                    }
                },
            )?;
            Box::new(PgSinkFactory::new(
                resolved,
                config.table.clone(),
                load.schema,
                config.method,
                run_id.to_string(),
                load.mode.to_string(),
            ))
        }
    })
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
