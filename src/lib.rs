//! `loader`: a thread-per-core, synchronous bulk loader and load probe.
//!
//! [`run`] parses the command line ([`cli`]), validates it into a config ([`config`]), installs the
//! Ctrl-C handler, and hands the mode's source to [`load::run`], which drives the [`engine`]'s
//! pinned workers against a [`sink`]. See docs/ARCHITECTURE.md for the threads and the data flow.

pub mod cli;
pub mod config;
pub mod encode;
pub mod engine;
pub mod gen;
pub mod load;
pub mod pg;
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

use cli::{Cli, Command, GenArgs};
use config::GenConfig;
use engine::StopSignal;
use gen::{GenSourceFactory, IdPlan, READINGS_SCHEMA};

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
                        "loader: interrupted, finishing the batches in hand (Ctrl-C again abandons retries)"
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

fn run_gen(args: &GenArgs, signal: &StopSignal) -> u8 {
    let config = match GenConfig::from_args(args, &target::process_env) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("loader: error: {err}");
            return report::EXIT_USAGE;
        }
    };
    let rows = config.rows_in_shard();
    let plan = IdPlan::new(rows, config.load.batch as u64, config.shard);
    let sources = GenSourceFactory::new(plan, config.seed, config.load.batch);
    let mut settings = Map::new();
    settings.insert("rows".into(), json!(config.rows));
    settings.insert("rows_in_shard".into(), json!(rows));
    settings.insert(
        "duration_s".into(),
        json!(config.duration.map(|d| d.as_secs_f64())),
    );
    settings.insert("seed".into(), json!(config.seed));
    settings.insert("shard".into(), json!(config.shard.to_string()));
    load::run(
        &load::Load {
            mode: "gen",
            config: &config.load,
            schema: &READINGS_SCHEMA,
            sources: &sources,
            total_rows: rows,
            duration: config.duration,
            output_format: config.output_format,
            settings,
        },
        signal,
    )
}
