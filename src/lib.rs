//! `loader`: a thread-per-core, synchronous bulk loader and load probe.
//!
//! [`run`] parses the command line ([`cli`]), validates it into a config ([`config`]), installs the
//! Ctrl-C handler, and hands the mode's source to [`load::run`], which drives the [`engine`]'s
//! pinned workers against a [`sink`]; `loader probe` runs its own user threads ([`probe`]). See
//! docs/ARCHITECTURE.md for the threads and the data flow.

pub mod cli;
pub mod config;
pub mod copy;
pub mod encode;
pub mod engine;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gen;
pub mod http_agent;
pub mod ingest;
pub mod load;
pub mod metrics;
pub mod pem;
pub mod pg;
pub mod probe;
pub mod reject;
pub mod report;
pub mod rows;
pub mod sink;
pub mod stats;
pub mod target;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use clap::Parser;
use serde_json::{json, Map};

use cli::{Cli, Command, CopyArgs, GenArgs, IngestArgs};
use config::{CopyConfig, GenConfig};
use copy::{CopyPlan, Reader};
use engine::StopSignal;
use gen::{GenPlan, READINGS_SCHEMA};
use ingest::{DocumentList, IngestConfig, IngestCounters, IngestPlan, IngestStages};
use rows::Columns;

/// Runs `loader` with these arguments and returns its exit code.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                report::EXIT_USAGE
            } else {
                0
            });
        }
    };
    let signal = stop_signal();
    let code = match &cli.command {
        Some(Command::Gen(args)) => run_gen(args, &signal),
        Some(Command::Copy(args)) => run_copy(args, &signal),
        Some(Command::Ingest(args)) => run_ingest(args, &signal),
        Some(Command::Probe(args)) => probe::run(args, &signal),
        None => run_gen(&cli.gen, &signal),
    };
    ExitCode::from(code)
}

/// The process's stop signal, with the Ctrl-C/SIGTERM handler installed on first use: the first
/// signal lets workers finish the batch in hand, the second abandons retries (and the load then
/// ends normally: summary, report, the local cluster stopped), a third exits at once.
fn stop_signal() -> Arc<StopSignal> {
    static SIGNAL: OnceLock<Arc<StopSignal>> = OnceLock::new();
    SIGNAL
        .get_or_init(|| {
            let signal = Arc::new(StopSignal::default());
            let handler_signal = Arc::clone(&signal);
            let installed = ctrlc::set_handler(move || {
                if handler_signal.is_abandoning() {
                    eprintln!("loader: interrupted a third time, exiting now");
                    std::process::exit(report::EXIT_INTERRUPTED.into());
                }
                if handler_signal.interrupt() == 1 {
                    eprintln!(
                        "loader: interrupted, finishing the batches or requests in hand (Ctrl-C again abandons retries)"
                    );
                } else {
                    eprintln!(
                        "loader: interrupted again, abandoning retries (a third Ctrl-C exits at once)"
                    );
                }
            });
            if let Err(err) = installed {
                eprintln!("loader: warning: Ctrl-C will stop the process abruptly: {err}");
            }
            signal
        })
        .clone()
}

fn run_gen(args: &GenArgs, signal: &Arc<StopSignal>) -> u8 {
    let config = match GenConfig::from_args(args, &target::process_env) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("loader: error: {err}");
            return report::EXIT_USAGE;
        }
    };
    let rows = config.rows_in_shard();
    let mut sources = GenPlan {
        rows_in_shard: rows,
        batch: config.load.batch,
        shard: config.shard,
        seed: config.seed,
        rate: config.rate,
        duration: config.duration,
        signal: Arc::clone(signal),
    };
    let mut settings = Map::new();
    settings.insert("rows".into(), json!(config.rows));
    settings.insert("rows_in_shard".into(), json!(rows));
    settings.insert(
        "duration_s".into(),
        json!(config.duration.map(|d| d.as_secs_f64())),
    );
    settings.insert("rate".into(), json!(config.rate));
    settings.insert("seed".into(), json!(config.seed));
    settings.insert("shard".into(), json!(config.shard.to_string()));
    load::run(
        load::Load {
            mode: "gen",
            config: &config.load,
            columns: Columns::Fixed(READINGS_SCHEMA),
            sources: &mut sources,
            run_id: None,
            resume: false,
            total_rows: rows,
            duration: config.duration,
            output_format: config.output_format,
            settings,
            documents: load::Documents::NotRecorded,
            stages: None,
        },
        signal,
    )
}

fn run_copy(args: &CopyArgs, signal: &Arc<StopSignal>) -> u8 {
    let config = match CopyConfig::from_args(args, &target::process_env) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("loader: error: {err}");
            return report::EXIT_USAGE;
        }
    };
    let dialect = Arc::new(config.dialect.clone());
    let mut reader = Reader::new(
        config.inputs.clone(),
        Arc::clone(&dialect),
        config.header,
        config.skip_lines,
        config.limit,
        config.load.batch as u64,
    );
    let header = match reader.open_first() {
        Ok(header) => header,
        Err(message) => {
            eprintln!("loader: error: {message}");
            return report::EXIT_USAGE;
        }
    };
    let names = config.columns.clone().or(header);
    let columns = match &names {
        Some(names) => Columns::Named(names.clone()),
        None => Columns::Table,
    };
    let mut settings = Map::new();
    settings.insert("inputs".into(), json!(reader.names().to_vec()));
    settings.insert("format".into(), json!(config.dialect.format));
    settings.insert("header".into(), json!(config.header));
    settings.insert("columns".into(), json!(config.columns));
    settings.insert("skip_lines".into(), json!(config.skip_lines));
    settings.insert("limit".into(), json!(config.limit));
    settings.insert("resume".into(), json!(config.resume));
    let mut sources = CopyPlan::new(reader, dialect, names, Arc::clone(signal));
    load::run(
        load::Load {
            mode: "copy",
            config: &config.load,
            columns,
            sources: &mut sources,
            run_id: config.run_id.clone(),
            resume: config.resume,
            total_rows: config.limit,
            duration: None,
            output_format: cli::OutputFormat::Csv,
            settings,
            documents: load::Documents::NotRecorded,
            stages: None,
        },
        signal,
    )
}

fn run_ingest(args: &IngestArgs, signal: &Arc<StopSignal>) -> u8 {
    let config = match IngestConfig::from_args(args, &target::process_env) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("loader: error: {err}");
            return report::EXIT_USAGE;
        }
    };
    let mut settings = Map::new();
    settings.insert(
        "documents".into(),
        json!(match &config.list {
            DocumentList::Urls(input) => input.name(),
            DocumentList::Listing { url, .. } => target::redact(url),
        }),
    );
    settings.insert(
        "fields".into(),
        json!({
            "id": config.fields.id,
            "text": config.fields.text,
            "meta": config.fields.meta,
        }),
    );
    settings.insert("fetchers".into(), json!(config.fetchers));
    settings.insert("rate".into(), json!(config.rate));
    settings.insert(
        "chunking".into(),
        json!({
            "size": args.chunk_size,
            "overlap": args.overlap,
            "by": args.chunk_by,
            "threads": config.chunkers,
        }),
    );
    if let Some(embed) = &config.embed {
        settings.insert(
            "embedding".into(),
            json!({
                "url": target::redact(&embed.url),
                "model": embed.model,
                "batch": embed.batch,
                "threads": embed.threads,
            }),
        );
    }
    settings.insert("limit".into(), json!(config.limit));
    settings.insert(
        "resume".into(),
        json!(config.documents == load::Documents::Resume),
    );
    if let Some(path) = &config.state_file {
        settings.insert("state_file".into(), json!(path));
    }
    let load_config = config.load.clone();
    let documents = if config.records_documents() {
        config.documents
    } else {
        load::Documents::NotRecorded
    };
    let schema = ingest::schema(config.embed.is_some());
    let counters = Arc::new(IngestCounters::default());
    let stages = IngestStages::new(Arc::clone(&counters), config.rate);
    let mut plan = IngestPlan::new(config, Arc::clone(signal), counters);
    load::run(
        load::Load {
            mode: "ingest",
            config: &load_config,
            columns: Columns::Fixed(schema),
            sources: &mut plan,
            run_id: None,
            resume: false,
            total_rows: None,
            duration: None,
            output_format: cli::OutputFormat::Ndjson,
            settings,
            documents,
            stages: Some(&stages),
        },
        signal,
    )
}
